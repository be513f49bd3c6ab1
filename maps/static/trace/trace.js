/* "Trace to OLT" on the coverage map (netgis.maps.trace, docs/strands.md).
 *
 * A premise's popup gets a button that asks the server for the premise's paths up to an
 * OLT port (GET <traceUrl>?premise=ID&f=geojson) and draws the best one: each piece of
 * glass in its strand's TIA-598 colour over a dark casing, splices, connectors and
 * splitters as dots, the drop as a dashed line, each with its loss in a tooltip; a panel
 * gives the path's loss, the budget and the margin, and the premise's other paths. A
 * node's popup gets a link to its splice diagram. Every value from the server is put in
 * the page as text (textContent), never parsed as HTML. No framework, no other origin.
 */
(function () {
  "use strict";

  function el(tag, className, text, parent) {
    var e = document.createElement(tag);
    if (className) { e.className = className; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (parent) { parent.appendChild(e); }
    return e;
  }

  function num(value, digits) {
    return typeof value === "number" && isFinite(value) ? value.toFixed(digits) : "–";
  }

  function Tracer(map, config) {
    this.map = map;
    this.config = config;
    this.colours = config.colours || {};
    this.answer = null;
    this.shown = null;
    map.createPane("netgis-trace");
    map.getPane("netgis-trace").style.zIndex = 450;
    this.layer = L.featureGroup([], { pane: "netgis-trace" }).addTo(map);
    this.panel = null;
    map.on("popupopen", this.onPopup, this);
  }

  Tracer.prototype.onPopup = function (e) {
    var popup = e.popup;
    var source = popup._source;
    var props = (source && source.feature && source.feature.properties) ||
      popup.options.netgisProperties;
    var root = popup.getElement && popup.getElement();
    var content = root && root.querySelector(".leaflet-popup-content");
    if (!props || !content || content.querySelector(".netgis-trace-actions")) { return; }
    var self = this;
    var actions = null;
    if (props.premise_id !== undefined && props.premise_id !== null &&
        props.node_id === undefined) {
      actions = el("div", "netgis-trace-actions", null, content);
      var button = el("button", "netgis-trace-button", "Trace to OLT", actions);
      button.type = "button";
      var premise = String(props.premise_id);
      button.addEventListener("click", function () { self.trace(premise); });
    } else if (props.node_id !== undefined && props.node_id !== null && this.config.splicesUrl) {
      actions = el("div", "netgis-trace-actions", null, content);
      var link = el("a", "netgis-splices-link", "Splice diagram of node " + props.node_id,
                    actions);
      link.href = this.config.splicesUrl + encodeURIComponent(String(props.node_id));
    }
    if (actions && popup._updateLayout) {
      popup._updateLayout();
      popup._updatePosition();
    }
  };

  Tracer.prototype.ensurePanel = function () {
    if (this.panel) { return this.panel; }
    var self = this;
    var control = L.control({ position: "bottomleft" });
    control.onAdd = function () {
      var div = L.DomUtil.create("div", "netgis-trace-panel");
      div.setAttribute("role", "region");
      div.setAttribute("aria-label", "Trace to OLT");
      L.DomEvent.disableClickPropagation(div);
      L.DomEvent.disableScrollPropagation(div);
      return div;
    };
    control.addTo(this.map);
    this.panel = control.getContainer();
    this.panelControl = control;
    this.status = el("p", "netgis-trace-status", "", this.panel);
    this.status.setAttribute("role", "status");
    this.status.setAttribute("aria-live", "polite");
    this.body = el("div", "netgis-trace-body", null, this.panel);
    var close = el("button", "netgis-trace-clear", "Clear trace", this.panel);
    close.type = "button";
    close.addEventListener("click", function () { self.clear(); });
    return this.panel;
  };

  Tracer.prototype.clear = function () {
    this.layer.clearLayers();
    this.answer = null;
    this.shown = null;
    if (this.panelControl) {
      this.panelControl.remove();
      this.panel = null;
      this.panelControl = null;
    }
  };

  Tracer.prototype.say = function (text) {
    this.ensurePanel();
    this.status.textContent = text;
  };

  Tracer.prototype.trace = function (premise) {
    var self = this;
    this.map.closePopup();
    this.layer.clearLayers();
    this.ensurePanel();
    this.body.textContent = "";
    this.say("Tracing premise " + premise + " to its OLT port…");
    var url = this.config.traceUrl + "?premise=" + encodeURIComponent(premise) + "&f=geojson";
    fetch(url, { headers: { Accept: "application/geo+json" }, credentials: "same-origin" })
      .then(function (response) {
        return response.json().then(function (body) {
          return { ok: response.ok, body: body };
        });
      })
      .then(function (got) {
        if (!got.ok) {
          self.say("No trace of premise " + premise + ": " +
                   ((got.body && got.body.detail) || "the server refused"));
          return;
        }
        self.answer = got.body;
        self.show(got.body.paths.length ? got.body.paths[0].path_id : null);
      })
      .catch(function (err) {
        self.say("The trace of premise " + premise + " could not be loaded (" + err + ").");
      });
  };

  Tracer.prototype.tooltip = function (p) {
    var div = el("div", "netgis-trace-tip");
    var what;
    if (p.hop_type === "piece") {
      what = "Cable " + p.cable_id + ", strand " + p.strand + " (" + p.colour + "; tube " +
        p.tube + "), " + p.node_from + " to " + p.node_to + ", " + num(p.length_m, 1) + " m";
    } else if (p.hop_type === "drop") {
      what = "Drop " + p.ref_id + " from node " + p.node_from + " to the premise, " +
        num(p.length_m, 1) + " m";
    } else if (p.hop_type === "splitter") {
      what = "Splitter " + p.ref_id + " at node " + p.node_from;
    } else {
      what = "Connection " + p.ref_id + " at node " + p.node_from;
    }
    el("div", "netgis-trace-tip-what", (p.seq) + ". " + what, div);
    el("div", "netgis-trace-tip-loss", "loss " + num(p.loss_db, 3) + " dB, " +
       num(p.cum_loss_db, 3) + " dB so far", div);
    return div;
  };

  Tracer.prototype.draw = function (feature) {
    var p = feature.properties;
    var g = feature.geometry;
    var pane = "netgis-trace";
    var tip = this.tooltip(p);
    var layers = [];
    if (g.type === "LineString") {
      var latlngs = g.coordinates.map(function (c) { return [c[1], c[0]]; });
      if (p.hop_type === "piece") {
        layers.push(L.polyline(latlngs, { pane: pane, color: "#1a1a1a", weight: 9,
          opacity: 0.9, className: "netgis-trace-casing", interactive: false }));
        layers.push(L.polyline(latlngs, { pane: pane, weight: 5, opacity: 1,
          color: this.colours[p.colour] || "#1f5fbf", className: "netgis-trace-piece" }));
      } else {
        layers.push(L.polyline(latlngs, { pane: pane, color: "#1a1a1a", weight: 3,
          dashArray: "6 5", className: "netgis-trace-drop" }));
      }
    } else {
      var at = [g.coordinates[1], g.coordinates[0]];
      var splitter = p.hop_type === "splitter";
      layers.push(L.circleMarker(at, { pane: pane, radius: splitter ? 8 : 5, weight: 2,
        color: "#1a1a1a", fillColor: splitter ? "#ffb000" : "#ffffff", fillOpacity: 1,
        className: splitter ? "netgis-trace-splitter" : "netgis-trace-connection" }));
    }
    var group = this.layer;
    layers.forEach(function (layer) {
      if (layer.options.interactive !== false) { layer.bindTooltip(tip, { sticky: true }); }
      group.addLayer(layer);
    });
  };

  Tracer.prototype.show = function (pathId) {
    var answer = this.answer;
    var self = this;
    this.layer.clearLayers();
    this.body.textContent = "";
    this.shown = pathId;
    var premise = answer.premise_id;
    var path = null;
    answer.paths.forEach(function (p) { if (p.path_id === pathId) { path = p; } });
    if (!path) {
      var open = (answer.upstream || []).filter(function (u) { return u.status === "open"; });
      this.say((answer.upstream || []).length === 0 ?
        "Premise " + premise + " has no drop: no glass reaches it." :
        "No path from an OLT port reaches premise " + premise + ": the glass of its " +
        (open.length === 1 ? "drop ends" : "drops end") + " before an OLT port.");
      return;
    }
    answer.features.forEach(function (f) {
      if (f.properties.path_id === pathId) { self.draw(f); }
    });
    this.say("Trace of premise " + premise + ": path " + path.path_id + " from OLT port " +
             path.olt_port_id + ".");
    var loss = el("p", "netgis-trace-loss",
      "Loss " + num(path.loss_db, 3) + " dB of a " + num(answer.budget_db, 1) +
      " dB budget: margin " + num(path.margin_db, 3) + " dB (" +
      (path.in_budget ? "in budget" : "out of budget") + ").", this.body);
    loss.setAttribute("data-loss-db", String(path.loss_db));
    el("p", "netgis-trace-counts", path.n_splices + " splice(s), " + path.n_connectors +
       " connector(s), " + (path.splitter_ids.length ? "splitter(s) " +
       path.splitter_ids.join(", ") : "no splitter") + "; fibre " + num(path.fiber_m, 1) +
       " m, drop " + num(path.drop_m, 1) + " m.", this.body);
    if (answer.paths.length > 1) {
      el("p", "netgis-trace-others-label", "Its paths, best first:", this.body);
      var list = el("ul", "netgis-trace-others", null, this.body);
      answer.paths.forEach(function (p) {
        var item = el("li", null, null, list);
        var b = el("button", "netgis-trace-path", p.path_id + ": " + num(p.loss_db, 3) +
                   " dB", item);
        b.type = "button";
        if (p.path_id === pathId) { b.setAttribute("aria-pressed", "true"); }
        b.addEventListener("click", function () { self.show(p.path_id); });
      });
    }
    var bounds = this.layer.getBounds();
    if (bounds.isValid()) {
      // the path beside the panel (bottom left) and below the controls at the top right
      var corner = this.map.getContainer().querySelector(".leaflet-top.leaflet-right");
      var top = corner ? corner.offsetHeight : 0;
      this.map.fitBounds(bounds, { paddingTopLeft: [this.panel.offsetWidth + 30, top + 20],
                                   paddingBottomRight: [30, 30], maxZoom: 18 });
    }
  };

  window.netgisTrace = {
    attach: function (map, config) { return new Tracer(map, config); }
  };
})();
