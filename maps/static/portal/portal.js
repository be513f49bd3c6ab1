// The netgis residents' portal: an accessible type-ahead (ARIA 1.2 combobox with a listbox
// popup), a result card in plain words and a small Leaflet map. No framework, no CDN.
// Every text comes from the messages block the server rendered (portal-config); every
// value is put into the page as text (textContent), never as HTML.
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("portal-config").textContent);
  var messages = config.messages;
  var form = document.getElementById("portal-form");
  var input = document.getElementById("portal-address");
  var listbox = document.getElementById("portal-options");
  var status = document.getElementById("portal-status");
  var result = document.getElementById("portal-result");
  var resultHeading = document.getElementById("portal-result-heading");
  var resultText = document.getElementById("portal-result-text");
  var nearestList = document.getElementById("portal-nearest");
  var mapSection = document.getElementById("portal-map-section");
  var options = [];
  var active = -1;
  var timer = null;
  var asked = 0;
  var map = null;
  var layers = null;

  function say(key, values) {
    return messages[key].replace(/\{(\w+)\}/g, function (whole, name) {
      return values && Object.prototype.hasOwnProperty.call(values, name) ?
        String(values[name]) : whole;
    });
  }

  function fetchJson(path, params) {
    var query = new URLSearchParams(params).toString();
    return fetch(path + "?" + query, {headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      });
  }

  function lookup(text) {
    asked += 1;
    var mine = asked;
    return fetchJson("/portal/addresses", {q: text}).then(function (answer) {
      // a slower answer to an older text must not replace the newer one
      return mine === asked ? answer : null;
    });
  }

  // ------------------------------------------------------------------ the listbox

  function close() {
    listbox.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function highlight(index) {
    var items = listbox.querySelectorAll("[role=option]");
    for (var i = 0; i < items.length; i += 1) {
      items[i].setAttribute("aria-selected", i === index ? "true" : "false");
    }
    active = index;
    if (index >= 0) {
      input.setAttribute("aria-activedescendant", items[index].id);
      items[index].scrollIntoView({block: "nearest"});
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function fill(found) {
    options = found;
    listbox.textContent = "";
    found.forEach(function (item, i) {
      var li = document.createElement("li");
      li.id = "portal-option-" + i;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false");
      li.textContent = item.address;
      li.addEventListener("mousedown", function (event) {
        event.preventDefault();  // keep the focus in the box
        choose(i);
      });
      listbox.appendChild(li);
    });
    if (found.length) {
      listbox.hidden = false;
      input.setAttribute("aria-expanded", "true");
      status.textContent = say("options_count", {count: found.length});
    } else {
      close();
    }
    active = -1;
  }

  function suggest() {
    var text = input.value.trim();
    if (text.length < 2) { fill([]); status.textContent = ""; return; }
    lookup(text).then(function (answer) {
      if (answer === null) { return; }
      fill(answer.addresses);
      if (!answer.addresses.length) { noMatch(text, answer.suggestions); }
    }).catch(function () { status.textContent = say("error"); });
  }

  // ------------------------------------------------------------------- the answer

  function noMatch(text, suggestions) {
    var line = say("no_match", {query: text});
    if (suggestions && suggestions.length) {
      line += " " + say("did_you_mean") + " " + suggestions.join("; ");
    }
    status.textContent = line;
  }

  function protectionText(item) {
    if (item.protection.node) { return say("protection_node"); }
    if (item.protection.span) { return say("protection_span"); }
    return say("protection_none");
  }

  function card(item) {
    var values = {address: item.address, distance: item.distance_m};
    if (item.passed && item.in_budget) {
      values.protection = protectionText(item);
      return [say("available_heading"), say("available", values)];
    }
    if (item.passed) { return [say("weak_heading"), say("weak", values)]; }
    if (item.distance_m === null) { return [say("not_yet_heading"), say("no_network", values)]; }
    if (item.build) {
      values.rank = item.build.rank;
      values.total = item.build.total;
      return [say("not_yet_heading"), say("not_yet_ranked", values)];
    }
    return [say("not_yet_heading"), say("not_yet", values)];
  }

  function show(item) {
    var words = card(item);
    resultHeading.textContent = words[0];
    resultText.textContent = words[1];
    nearestList.textContent = "";
    nearestList.hidden = true;
    result.hidden = false;
    result.className = "portal-result " + (item.passed && item.in_budget ? "is-yes" : "is-no");
    status.textContent = "";
    drawMap(item);
  }

  // the street has no such house number: say so, and offer its nearest numbers (never the
  // answer for another number that merely begins with the one typed)
  function showMissing(missing) {
    var values = {number: missing.number, street: missing.street};
    var line = say("number_not_found", values);
    if (missing.nearest.length) { line += " " + say("number_nearest", values); }
    resultHeading.textContent = say("number_heading");
    resultText.textContent = line;
    nearestList.textContent = "";
    missing.nearest.forEach(function (item) {
      var li = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = item.address;
      button.addEventListener("click", function () {
        input.value = item.address;
        show(item);
      });
      li.appendChild(button);
      nearestList.appendChild(li);
    });
    nearestList.hidden = !missing.nearest.length;
    result.hidden = false;
    result.className = "portal-result is-no";
    mapSection.hidden = true;
    status.textContent = "";
  }

  function choose(index) {
    var item = options[index];
    if (!item) { return; }
    input.value = item.address;
    close();
    show(item);
  }

  function submit() {
    var text = input.value.trim();
    // the answer to this text replaces any type-ahead still waiting to ask
    if (timer !== null) { clearTimeout(timer); timer = null; }
    if (!text) { status.textContent = say("empty_query"); return; }
    if (active >= 0) { choose(active); return; }
    status.textContent = say("searching");
    lookup(text).then(function (answer) {
      if (answer === null) { return; }
      if (answer.number_not_found) {
        fill([]);
        showMissing(answer.number_not_found);
      } else if (answer.addresses.length) {
        options = answer.addresses;
        choose(0);
      } else {
        fill([]);
        result.hidden = true;
        mapSection.hidden = true;
        noMatch(text, answer.suggestions);
      }
    }).catch(function () { status.textContent = say("error"); });
  }

  // ---------------------------------------------------------------------- the map

  function drawMap(item) {
    if (typeof L === "undefined") { return; }
    mapSection.hidden = false;
    if (map === null) {
      map = L.map("portal-map", {keyboard: false, scrollWheelZoom: false});
      if (config.basemap && window.netgisBasemap) {
        window.netgisBasemap(map, config.basemap);  // the server's own (NETGIS_BASEMAP)
      } else if (config.tilesUrl) {
        L.tileLayer(config.tilesUrl, {maxZoom: 19}).addTo(map);
      }
      layers = L.layerGroup().addTo(map);
    }
    map.invalidateSize();
    layers.clearLayers();
    var here = [item.lat, item.lon];
    map.setView(here, 16);
    fetchJson("/portal/plant", {lon: item.lon, lat: item.lat}).then(function (plant) {
      L.geoJSON(plant, {style: {color: "#0b5394", weight: 3, className: "portal-fiber"}})
        .addTo(layers);
      L.circleMarker(here, {radius: 8, color: "#ffffff", weight: 2, fillColor: "#b3261e",
                            fillOpacity: 1, className: "portal-here"}).addTo(layers);
    }).catch(function () {
      L.circleMarker(here, {radius: 8, color: "#ffffff", weight: 2, fillColor: "#b3261e",
                            fillOpacity: 1, className: "portal-here"}).addTo(layers);
    });
  }

  // ------------------------------------------------------------------- keyboard

  input.addEventListener("input", function () {
    if (timer !== null) { clearTimeout(timer); }
    timer = setTimeout(suggest, 150);
  });

  input.addEventListener("keydown", function (event) {
    var open = !listbox.hidden && options.length > 0;
    if (event.key === "ArrowDown") {
      event.preventDefault();
      if (!open) { suggest(); return; }
      highlight(active + 1 >= options.length ? 0 : active + 1);
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      if (open) { highlight(active <= 0 ? options.length - 1 : active - 1); }
    } else if (event.key === "Escape") {
      if (open) { close(); } else { input.value = ""; }
    } else if (event.key === "Enter") {
      event.preventDefault();
      submit();
    }
  });

  input.addEventListener("blur", function () { setTimeout(close, 100); });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    submit();
  });
})();
