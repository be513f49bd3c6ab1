// The map of an HTML items or item page: draws the page's GeoJSON (fetched from this
// server as f=json) with Leaflet, without a base map (the pages work offline).
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || !window.L) { return; }
  var map = L.map(el, { attributionControl: false });
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
