"""``netgis qgis`` against a real server, the project opened by Debian's QGIS (PyQGIS).

A generated city in SpatiaLite is served twice over real ports: with open reads over a
raster MBTiles base map, and with closed reads over a vector one. ``netgis qgis`` (the real
command line) writes a project of each; ``tests/maps/qgis_check.py`` opens them with
``/usr/bin/python3`` (PyQGIS, headless) and reports what QGIS makes of every layer and
draws pictures of them. The server's loss parameters spread the premises over every
optical margin class.

Checked: every layer valid, the OGC layers' feature counts equal the data (the filtered
"not passed" layer too), the classes QGIS puts features in equal those the web maps'
rules give (the class expressions evaluated by QGIS itself), renderer colours and class
edges as the web maps', vector tile styles, labels, the layer tree, the CRS and first
view, and pictures showing features in the style colours over the base map.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from netgis.api.app import create_app
from netgis.engine.analysis import analyze
from netgis.engine.optics import LossBudget
from netgis.generate import generate_city
from netgis.io.basemap import write_mbtiles
from netgis.maps import _base as base
from netgis.maps.coverage import (
    CABINET_COLOR,
    CORE_COLOR,
    LIT_COLOR,
    NOT_PASSED_COLOR,
    OUT_OF_BUDGET_COLOR,
    PASSED_COLOR,
    TIGHT_COLOR,
    premise_classes,
    span_classes,
)
from netgis.maps.criticality import IMPACT_COLORS, SAFE_COLOR, impact_edges
from netgis.maps.gaps import GAP_COLORS
from netgis.maps.qgis import RANK_LABELS
from netgis.products.tiles import THIN_BELOW_ZOOM
from netgis.schema import DEFAULT_CRITICAL_TOP
from netgis.storage import Repository
from tests.api.helpers import API_KEY, LiveServer, make_settings
from tests.maps.test_basemap_browser import make_basemap, tile_range

#: One worker runs the module: its server and QGIS run are made once.
pytestmark = pytest.mark.xdist_group("qgis-project")

#: Debian's Python, the one PyQGIS is installed for (scripts/install-system.sh).
QGIS_PYTHON = "/usr/bin/python3"
CHECK = Path(__file__).with_name("qgis_check.py")
#: Fiber attenuation of the served analysis: path losses from about 1 to 22 dB.
ATTEN_DB_PER_KM = 6.0
#: The raster base map's one colour, used by no style.
BASEMAP_RGB = (232, 226, 250)
PLANT = ("nodes", "spans", "premises", "areas")
RESULTS = ("premise_results", "span_results", "node_results", "gap_clusters", "h3_gaps")
AUTHCFG = "netgis01"


@dataclass
class Served:
    open_url: str
    closed_url: str
    budget_db: float
    counts: dict[str, int]


def _solid_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (256, 256), BASEMAP_RGB).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("qgis")
    city = generate_city(premises=500, seed=11)
    # a budget through the middle of the losses: premises in every margin class
    losses = analyze(city, budget=LossBudget(atten_db_per_km=ATTEN_DB_PER_KM)).premises["loss_db"]
    budget_db = round(float(losses.median()) + 1.5, 2)
    url = f"sqlite:///{root / 'city.db'}"
    with Repository.from_url(url) as repo:
        repo.init()
        repo.load_dataset(city)
    west, south, east, north = city.premises.to_crs(4326).total_bounds
    bounds = (west - 0.01, south - 0.01, east + 0.01, north + 0.01)
    png = _solid_png()
    raster = write_mbtiles(root / "raster.mbtiles",
                           {(z, x, y): png for z in range(12, 17)
                            for x, y in tile_range(bounds, z)},
                           {"name": "test base map", "format": "png", "minzoom": "12",
                            "maxzoom": "16", "bounds": ",".join(f"{v:.6f}" for v in bounds)})
    vector = make_basemap(root / "vector.mbtiles", bounds, "pbf")
    common: dict[str, Any] = {"atten_db_per_km": ATTEN_DB_PER_KM, "budget_db": budget_db,
                              "max_limit": 1000, "default_limit": 100}
    open_app = create_app(make_settings(url, basemap=str(raster), **common))
    closed_app = create_app(make_settings(url, basemap=str(vector), open_reads=False, **common))
    with LiveServer(open_app) as open_srv, LiveServer(closed_app) as closed_srv:
        counts = {}
        with httpx.Client(timeout=120) as client:
            for name in (*PLANT, *RESULTS):
                page = client.get(f"{open_srv.url}/collections/{name}/items",
                                  params={"limit": 1}).json()
                counts[name] = page["numberMatched"]
        assert counts["premises"] == len(city.premises)
        yield Served(open_srv.url, closed_srv.url, budget_db, counts)


def _netgis(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from netgis.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def _features(url: str, name: str) -> pd.DataFrame:
    """Every feature's properties of a collection of the open server."""
    rows: list[dict[str, Any]] = []
    with httpx.Client(timeout=120) as client:
        next_url: str | None = f"{url}/collections/{name}/items?limit=1000"
        while next_url:
            page = client.get(next_url).json()
            rows += [f["properties"] for f in page["features"]]
            next_url = next((link["href"] for link in page["links"] if link["rel"] == "next"),
                            None)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def projects(served: Served, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both projects written by ``netgis qgis``, and QGIS's reports of them."""
    root = tmp_path_factory.mktemp("projects")
    open_qgz, closed_qgz = root / "open.qgz", root / "closed.qgz"
    made = _netgis("qgis", "--url", served.open_url, "--out", str(open_qgz))
    assert made.returncode == 0, made.stderr
    refused = _netgis("qgis", "--url", served.closed_url, "--out", str(closed_qgz))
    made_closed = _netgis("qgis", "--url", served.closed_url + "/", "--out", str(closed_qgz),
                          "--api-key-env", "NETGIS_QGIS_TEST_KEY", "--authcfg", AUTHCFG,
                          env={"NETGIS_QGIS_TEST_KEY": API_KEY})
    assert made_closed.returncode == 0, made_closed.stderr
    job = [{"project": str(open_qgz), "renders": [
               {"png": str(root / f"{name}.png"), "layers": layers, "size": [800, 800]}
               for name, layers in RENDERS.items()]},
           {"project": str(closed_qgz), "renders": [
               {"png": str(root / "vector_basemap.png"), "layers": ["netgis_basemap"],
                "size": [400, 400]}]}]
    (root / "job.json").write_text(json.dumps(job))
    checked = subprocess.run([QGIS_PYTHON, str(CHECK), str(root / "job.json")],
                             capture_output=True, text=True, timeout=300,
                             # a profile of its own: no user's QGIS settings change the run
                             env={**os.environ, "QT_QPA_PLATFORM": "offscreen",
                                  "XDG_RUNTIME_DIR": str(root),
                                  "QGIS_CUSTOM_CONFIG_PATH": str(root / "qgis-profile")})
    assert checked.returncode == 0, checked.stderr
    reports = json.loads(checked.stdout)
    return {"open": reports[0], "closed": reports[1], "made": json.loads(made.stdout),
            "refused": refused, "open_qgz": open_qgz, "closed_qgz": closed_qgz, "root": root}


#: The pictures drawn of the open server's project: its visible layers, then each web map.
RENDERS: dict[str, list[str] | None] = {
    "default": None,
    "coverage": ["netgis_premise_results"],
    "criticality": ["netgis_node_results", "netgis_span_results"],
    "gaps": ["netgis_gap_clusters", "netgis_h3_gaps"],
}


def test_the_command_writes_a_project_of_what_the_server_has(projects: dict[str, Any],
                                                             served: Served) -> None:
    made = projects["made"]
    assert made["basemap"] is True and made["url"] == served.open_url
    assert list(made["groups"]) == ["Coverage map (vector tiles)", "Results", "Plant",
                                    "Base map"]
    with zipfile.ZipFile(projects["open_qgz"]) as archive:
        assert archive.namelist() == ["open.qgs"]
    # reads closed: no project without a key, and the key never lands in the project
    refused = projects["refused"]
    assert refused.returncode == 2 and "--api-key-env" in refused.stderr
    assert "Traceback" not in refused.stderr
    closed = projects["closed_qgz"].read_bytes()
    with zipfile.ZipFile(projects["closed_qgz"]) as archive:
        text = archive.read("closed.qgs").decode()
    assert API_KEY.encode() not in closed and API_KEY not in text
    sources = {lid: layer["source"] for lid, layer in projects["closed"]["layers"].items()}
    assert all(AUTHCFG in source for lid, source in sources.items() if lid != "netgis_basemap")
    assert AUTHCFG not in sources["netgis_basemap"]  # the base map is public


def test_qgis_reads_every_layer_with_the_counts_of_the_data(projects: dict[str, Any],
                                                           served: Served) -> None:
    report = projects["open"]
    assert report["read"] is True and report["crs"] == "EPSG:3857"
    layers = report["layers"]
    invalid = [lid for lid, layer in layers.items() if not layer["valid"]]
    assert invalid == []
    for name in (*PLANT, *RESULTS):
        assert layers[f"netgis_{name}"]["provider"] == "OAPIF"
        # pages of the server's largest size (QGIS 3.22 would ask for its default, 100)
        assert "pageSize='1000'" in layers[f"netgis_{name}"]["source"]
        assert layers[f"netgis_{name}"]["count"] == served.counts[name], name
    premises = _features(served.open_url, "premise_results")
    not_passed = layers["netgis_premise_results_not_passed"]
    assert not_passed["count"] == int((~premises["passed"].astype(bool)).sum()) > 0
    assert not_passed["subset"] == 'NOT "passed"'
    tiles = {lid: layer for lid, layer in layers.items() if layer["kind"] == "vectortile"}
    assert sorted(tiles) == sorted(f"netgis_tiles_{name}" for name in PLANT)
    assert all(layer["zooms"] == [0, 22] for layer in tiles.values())
    assert layers["netgis_basemap"]["kind"] == "raster"
    assert layers["netgis_basemap"]["provider"] == "wms"
    # the first view: the plant's box, in Web Mercator
    xmin, ymin, xmax, ymax = report["extent"]
    assert 0 < xmax - xmin < 20_000 and 0 < ymax - ymin < 20_000
    tree = report["tree"]["children"]
    assert [g["group"] for g in tree] == ["Coverage map (vector tiles)", "Results", "Plant",
                                          "Base map"]
    shown = {c["layer"] for g in tree for c in g["children"] if c["checked"]}
    assert shown == {*tiles, "netgis_basemap"}


def _colors(renderer: dict[str, Any], key: str) -> list[str]:
    return [item["symbol"]["color"] for item in renderer[key]]


def test_qgis_classes_features_as_the_web_maps_do(projects: dict[str, Any],
                                                  served: Served) -> None:
    layers = projects["open"]["layers"]
    # coverage: QGIS's class of each premise is the web map's first matching class
    premises = _features(served.open_url, "premise_results")
    premises["margin_db"] = served.budget_db - premises["loss_db"].astype(float)
    classes = premise_classes(True)
    # the last class (not passed) takes every other premise: QGIS's default category, ""
    keys = [str(c.style["className"]) for c in classes[:-1]] + [""]
    expected = {key: int(mask.sum())
                for key, mask in zip(keys, base.class_masks(premises, classes), strict=True)}
    coverage = layers["netgis_premise_results"]["renderer"]
    assert coverage["type"] == "categorized" and coverage["expression_error"] is None
    assert coverage["counts"] == {k: v for k, v in expected.items() if v}
    assert all(expected.values()), expected  # every class has premises
    assert [c["label"] for c in coverage["categories"]] == [c.legend.label for c in classes]
    assert _colors(coverage, "categories") == [c.legend.color for c in classes]

    # criticality: the class edges of the web map, its colours, the same class per span
    for layer, column, label in (("span_results", "cut_units", "cut units"),
                                 ("node_results", "failure_units", "node failure units")):
        values = _features(served.open_url, layer)[column].astype(float)
        edges = impact_edges(values, DEFAULT_CRITICAL_TOP)
        n = len(edges) - 1
        renderer = layers[f"netgis_{layer}"]["renderer"]
        ranges = [r for r in renderer["ranges"] if r["label"].startswith(label)]
        assert [r["lower"] for r in ranges] == edges[:-1]
        assert [r["symbol"]["color"] for r in ranges] == [c.lower() for c in IMPACT_COLORS[-n:]]
        positive = values[values > 0]
        web = base.color_bins(positive, edges, IMPACT_COLORS[-n:]).value_counts()
        assert [r["count"] for r in ranges] == [int(web.get(c, 0)) for c in IMPACT_COLORS[-n:]]
    spans = layers["netgis_span_results"]["renderer"]["ranges"]
    assert spans[0]["label"] == "no impact" and spans[0]["symbol"]["color"] == SAFE_COLOR

    # gaps: H3 cells in the gaps map's unit classes, clusters labelled with their rank
    units = _features(served.open_url, "h3_gaps")["units"].astype(float)
    edges = base.nice_edges(units, len(GAP_COLORS))
    n = len(edges) - 1
    cells = layers["netgis_h3_gaps"]["renderer"]["ranges"]
    assert [r["lower"] for r in cells] == edges[:-1]
    web = base.color_bins(units, edges, GAP_COLORS[-n:]).value_counts()
    assert [r["count"] for r in cells] == [int(web.get(c, 0)) for c in GAP_COLORS[-n:]]
    clusters = layers["netgis_gap_clusters"]
    assert clusters["labels"] is True and clusters["label_background"] == "#1d1d1d"
    assert clusters["label_expression"] == f'CASE WHEN "rank" <= {RANK_LABELS} THEN "rank" END'


def test_vector_tile_layers_carry_the_coverage_maps_styles(projects: dict[str, Any]) -> None:
    layers = projects["open"]["layers"]
    premises = layers["netgis_tiles_premises"]["styles"]
    assert [s["symbol"]["color"] for s in premises] == [c.legend.color
                                                        for c in premise_classes(True)]
    assert {s["layer"] for s in premises} == {"premises"}
    assert {s["min_zoom"] for s in premises} == {THIN_BELOW_ZOOM}
    spans = layers["netgis_tiles_spans"]["styles"]
    assert [s["symbol"]["color"] for s in spans] == [c.legend.color for c in span_classes()]
    nodes = layers["netgis_tiles_nodes"]["styles"]
    assert [s["symbol"]["color"] for s in nodes] == [CORE_COLOR, CABINET_COLOR]


def _share(png: Path, rgb: tuple[int, int, int], opacity: float = 1.0) -> float:
    """Share of the picture's pixels in colour ``rgb`` (drawn at ``opacity`` over white)."""
    pixels = np.asarray(Image.open(png).convert("RGB"), dtype=float)
    target = opacity * np.asarray(rgb, dtype=float) + (1 - opacity) * 255.0
    near = np.abs(pixels - target).max(axis=2) <= 12
    return float(near.mean())


def _rgb(color: str) -> tuple[int, int, int]:
    text = color.lstrip("#")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def test_qgis_draws_the_styled_layers(projects: dict[str, Any]) -> None:
    renders = {Path(r["png"]).stem: r for r in projects["open"]["renders"]}
    assert all(r["saved"] and r["errors"] == [] for r in renders.values())
    root = projects["root"]
    # the project as it opens: the coverage map from tiles over the base map
    default = root / "default.png"
    assert _share(default, BASEMAP_RGB) > 0.3
    for color in (LIT_COLOR, CORE_COLOR, CABINET_COLOR, PASSED_COLOR, NOT_PASSED_COLOR):
        assert _share(default, _rgb(color), 0.85) + _share(default, _rgb(color)) > 0, color
    coverage = root / "coverage.png"
    for color in (PASSED_COLOR, TIGHT_COLOR, OUT_OF_BUDGET_COLOR, NOT_PASSED_COLOR):
        assert _share(coverage, _rgb(color), 0.85) > 0, color
    criticality = root / "criticality.png"
    assert _share(criticality, _rgb(SAFE_COLOR), 0.7) > 0
    assert sum(_share(criticality, _rgb(c), 0.95) > 0 for c in IMPACT_COLORS) >= 2
    gaps = root / "gaps.png"
    assert sum(_share(gaps, _rgb(c), 0.6) > 0 for c in GAP_COLORS) >= 2
    assert _share(gaps, _rgb("#1d1d1d")) > 0  # the rank labels' boxes


def test_a_vector_base_map_is_styled_by_layer_name(projects: dict[str, Any]) -> None:
    basemap = projects["closed"]["layers"]["netgis_basemap"]
    assert basemap["valid"] and basemap["kind"] == "vectortile"
    # the file lists water and transportation: styled as the web maps' base map draws them
    assert [(s["layer"], s["symbol"]["color"]) for s in basemap["styles"]] == [
        ("water", "#aacbe4"), ("transportation", "#ffffff")]
    picture = Path(projects["closed"]["renders"][0]["png"])
    assert _share(picture, _rgb("#aacbe4")) > 0.05
