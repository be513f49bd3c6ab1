// The base map under a netgis map (NETGIS_BASEMAP, tiles from this server's /basemap):
// raster tiles as a Leaflet tile layer, vector tiles drawn by Leaflet.VectorGrid in a plain
// built-in style. Nothing here asks any other server.
//
// window.netgisBasemap(map, config) adds the layer to a Leaflet map and returns it; config is
// {url, vector, attribution (already HTML-escaped), minZoom, maxNativeZoom, bounds: [w, s, e, n]
// or null}, as netgis.maps.basemap.Basemap.config() writes it.
(function () {
  "use strict";

  // Vector tiles: one style per layer, chosen by the layer's name, so that the layers of the
  // common OpenStreetMap schemas (OpenMapTiles, Shortbread, Protomaps) are drawn without a
  // style file. Layers that match none (labels, places, POIs, house numbers) are not drawn.
  var STYLES = [
    [/water|ocean|lake|sea|river|dam/i,
     {fill: true, fillColor: "#aacbe4", fillOpacity: 1, color: "#9cc0de", weight: 1}],
    [/building/i,
     {fill: true, fillColor: "#dcd5cb", fillOpacity: 1, color: "#c9c0b3", weight: 0.5}],
    [/park|green|wood|forest|landcover|landuse|land|natural|earth|aeroway|pier/i,
     {fill: true, fillColor: "#e6eddc", fillOpacity: 1, stroke: false, weight: 0}],
    [/transport|road|street|highway|bridge|tunnel|rail|path/i,
     {color: "#ffffff", weight: 2, opacity: 1}],
    [/boundar|admin/i, {color: "#a09cb0", weight: 1, dashArray: "4 3", fill: false}]
  ];

  function styleOf(layerName) {
    for (var i = 0; i < STYLES.length; i++) {
      if (STYLES[i][0].test(layerName)) { return STYLES[i][1]; }
    }
    return [];  // VectorGrid draws nothing for an empty list
  }

  // every layer name a tile may carry, whether or not the file's metadata lists it
  var vectorStyles = new Proxy({}, {
    get: function (target, name) { return typeof name === "string" ? styleOf(name) : undefined; }
  });

  window.netgisBasemap = function (map, config) {
    var options = {
      attribution: config.attribution || "",
      minZoom: config.minZoom || 0,
      maxNativeZoom: config.maxNativeZoom,
      maxZoom: 22,
      pane: "tilePane"
    };
    if (config.bounds) {
      var b = config.bounds;
      options.bounds = L.latLngBounds([b[1], b[0]], [b[3], b[2]]);
    }
    var layer;
    if (config.vector && L.vectorGrid) {
      options.vectorTileLayerStyles = vectorStyles;
      options.rendererFactory = L.canvas.tile;
      options.interactive = false;
      layer = L.vectorGrid.protobuf(config.url, options);
    } else {
      layer = L.tileLayer(config.url, options);
    }
    layer.addTo(map);
    if (map.attributionControl === undefined || map.attributionControl === null) {
      L.control.attribution().addTo(map);  // a page made without one still credits the map
    }
    return layer;
  };
})();
