// Draws the charts of the netgis dashboard: Vega-Lite specifications (made on the server,
// embedded as a JSON data block) rendered as SVG by vega-embed. The views are kept on
// window.netgisDashboard for the tests; body[data-charts] says "ready" or "failed".
(function () {
  "use strict";
  var specs = JSON.parse(document.getElementById("netgis-charts").textContent);
  var state = { views: {} };
  window.netgisDashboard = state;
  var jobs = Object.keys(specs).map(function (name) {
    var target = document.getElementById("chart-" + name);
    return vegaEmbed(target, specs[name], { actions: false, renderer: "svg" })
      .then(function (result) { state.views[name] = result.view; });
  });
  Promise.all(jobs).then(
    function () { document.body.setAttribute("data-charts", "ready"); },
    function (err) {
      document.body.setAttribute("data-charts", "failed");
      console.error("netgis dashboard: a chart failed", err);
    });
})();
