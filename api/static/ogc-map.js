// The map of an HTML items or item page: draws the page's GeoJSON (fetched from this
// server as f=json) with Leaflet, over the server's own base map when it has one
// (NETGIS_BASEMAP: data-basemap, drawn by /static/basemap/basemap.js); nothing is
// asked of any other server.
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || !window.L) { return; }
  var map = L.map(el, { attributionControl: false });
  var basemap = el.getAttribute("data-basemap");
  if (basemap && window.netgisBasemap) { window.netgisBasemap(map, JSON.parse(basemap)); }
  map.setView([0, 0], 1);
  fetch(el.getAttribute("data-geojson"), { headers: { Accept: "application/geo+json" } })
    .then(function (response) { return response.json(); })
    .then(function (data) {
      var layer = L.geoJSON(data, {
        pointToLayer: function (feature, latlng) {
          return L.circleMarker(latlng, { radius: 5, weight: 1, color: "#0b5cad", fillOpacity: 0.7 });
        },
        style: function () { return { color: "#0b5cad", weight: 2, fillOpacity: 0.15 }; },
        onEachFeature: function (feature, lyr) {
          // a text node: ids are data, never markup
          var label = document.createElement("span");
          label.textContent = String(feature.id);
          lyr.bindTooltip(label);
        }
      }).addTo(map);
      var bounds = layer.getBounds();
      if (bounds.isValid()) { map.fitBounds(bounds, { maxZoom: 17, padding: [12, 12] }); }
      el.setAttribute("data-features", String(layer.getLayers().length));
    });
})();
