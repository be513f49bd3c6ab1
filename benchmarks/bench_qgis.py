"""``netgis qgis`` of a 200 k-premise server, and the project opened and drawn by QGIS.

A city of 200 k premises from ``netgis generate``, loaded into SpatiaLite and served by
``netgis serve`` in its own process. Measured:

- the server's first analysis (``GET /kpis`` waits for it), apart from what follows;
- ``netgis qgis --url URL --out city.qgz`` (the real command line: its start, the reads of
  the landing page, collections, TileJSON, criticality ranking, every ``h3_gaps`` cell and
  the budget, and the write), and the project's size;
- Debian's QGIS (PyQGIS, ``/usr/bin/python3``, headless): reading the project, drawing its
  first view as it opens (the coverage map from vector tiles, 1600 x 1200 pixels), and
  drawing the ``Coverage: premises by optical margin`` layer (OGC API - Features: QGIS
  downloads the premises in the view) at a street view, then over the whole first view.

``python -m benchmarks.bench_qgis`` (a few minutes; run it under the shared lock
``flock /tmp/netgis-heavy.lock`` when others measure too). ``NETGIS_BENCH_QGIS_PREMISES``
changes the size.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks._record import record
from benchmarks.bench_results_layers import _netgis, _server

N_PREMISES = int(os.environ.get("NETGIS_BENCH_QGIS_PREMISES", "200000"))

#: Run by /usr/bin/python3: read the project, draw its first view and one OGC layer.
QGIS_SCRIPT = """
import json, sys, time
from qgis.core import (QgsApplication, QgsCoordinateTransform, QgsFeatureRequest,
                       QgsMapRendererParallelJob, QgsMapSettings, QgsProject, QgsRectangle)
from qgis.PyQt.QtCore import QSize

app = QgsApplication([], False)
app.initQgis()
project = QgsProject.instance()
out = {}
t0 = time.perf_counter()
assert project.read(sys.argv[1])
out["read_s"] = time.perf_counter() - t0

def draw(layers, extent=None):
    settings = QgsMapSettings()
    settings.setLayers(layers)
    settings.setDestinationCrs(project.crs())
    settings.setOutputSize(QSize(1600, 1200))
    settings.setExtent(extent or project.viewSettings().defaultViewExtent())
    job = QgsMapRendererParallelJob(settings)
    t0 = time.perf_counter()
    job.start()
    job.waitForFinished()
    assert not job.errors(), [e.message for e in job.errors()]
    return time.perf_counter() - t0

root = project.layerTreeRoot()
out["first_view_s"] = draw([t.layer() for t in root.findLayers() if t.isVisible()])
coverage = project.mapLayer("netgis_premise_results")
# a street view first (800 m x 600 m at the centre: QGIS asks for its box only), then all
centre = project.viewSettings().defaultViewExtent().center()
street = QgsRectangle(centre.x() - 400, centre.y() - 300, centre.x() + 400, centre.y() + 300)
out["street_view_s"] = draw([coverage], street)
to_layer = QgsCoordinateTransform(project.crs(), coverage.crs(), project)
box = to_layer.transformBoundingBox(street)
out["street_view_premises"] = sum(1 for _ in coverage.getFeatures(
    QgsFeatureRequest().setFilterRect(box).setNoAttributes()))
out["coverage_layer_s"] = draw([coverage])
out["coverage_layer_again_s"] = draw([coverage])
sys.stdout.write(json.dumps(out))
project.clear()
app.exitQgis()
"""


def main() -> None:
    load_before = os.getloadavg()
    out: dict[str, float | int | str] = {}
    with tempfile.TemporaryDirectory(prefix="netgis-bench-qgis-") as tmp_name:
        tmp = Path(tmp_name)
        city = tmp / "city.gpkg"
        _netgis("generate", "--premises", str(N_PREMISES), "--seed", "31", "--out", city)
        url = f"sqlite:///{tmp / 'city.db'}"
        _netgis("db", "load", city, env={"NETGIS_DATABASE_URL": url})
        project = tmp / "city.qgz"
        with _server(url) as (base, _), httpx.Client(base_url=base, timeout=600) as client:
            t0 = time.perf_counter()
            client.get("/kpis").raise_for_status()
            out["first_analysis_s"] = time.perf_counter() - t0
            out["netgis_qgis_s"], _, _ = _netgis("qgis", "--url", base, "--out", project)
            out["project_kb"] = project.stat().st_size / 1e3
            done = subprocess.run(["/usr/bin/python3", "-c", QGIS_SCRIPT, str(project)],
                                  capture_output=True, text=True, check=False,
                                  env={**os.environ, "QT_QPA_PLATFORM": "offscreen",
                                       "XDG_RUNTIME_DIR": tmp_name,
                                       "QGIS_CUSTOM_CONFIG_PATH": tmp_name})
            if done.returncode != 0:
                raise RuntimeError(f"QGIS failed: {done.stderr[-2000:]}")
            out.update(json.loads(done.stdout))
    load_after = os.getloadavg()
    version = subprocess.run(["/usr/bin/python3", "-c",
                              "from qgis.core import Qgis; print(Qgis.version())"],
                             capture_output=True, text=True, check=False).stdout.strip()
    rows = [("server's first analysis (`GET /kpis`)", out["first_analysis_s"], "s"),
            ("`netgis qgis --url URL --out city.qgz` (whole command)", out["netgis_qgis_s"], "s"),
            ("project size", out["project_kb"], "kB"),
            ("QGIS: read the project", out["read_s"], "s"),
            ("QGIS: draw the first view (coverage map from vector tiles)",
             out["first_view_s"], "s"),
            ("QGIS: draw `Coverage: premises by optical margin` (OGC API) at a street view "
             f"(800 m x 600 m, {out['street_view_premises']:,} premises), first time",
             out["street_view_s"], "s"),
            ("QGIS: the same layer over the first view (every premise)",
             out["coverage_layer_s"], "s"),
            ("QGIS: the same again (QGIS's feature cache)", out["coverage_layer_again_s"], "s")]
    table = "\n".join(f"| {what} | {value:.2f} {unit} |" for what, value, unit in rows)
    record("qgis", f"""## qgis: `netgis qgis` of a {N_PREMISES:,}-premise server, opened by QGIS

`python -m benchmarks.bench_qgis`; SpatiaLite, `netgis serve` in its own process; QGIS
{version} headless, 1600 x 1200 pixels, the project's first view; load average
{load_before[0]:.1f} before, {load_after[0]:.1f} after (2 cores, shared).

| step | figure |
|---|---|
{table}
""")


if __name__ == "__main__":
    main()
