"""`netgis validate` on hand-made bad datasets: one test per kind of problem.

Every dataset is a small plant near Frankfurt in WGS84 lon/lat::

    a (core) --s1-- b --s2-- c        p1, p2 near s1; area A1 covers everything

Each test breaks one rule, writes the files (GeoJSON written by hand so that
every cell type is under control, or GeoPackage / FlatGeobuf / GeoParquet
through pyogrio and geopandas) and runs the real command line entry point.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import pytest
import shapely
from shapely import LineString, MultiPoint, Point, Polygon

from netgis.cli import main
from netgis.errors import Problem
from netgis.io import read_dataset, read_raw, validate_path
from netgis.schema import LAYERS
from netgis.validate import validate_frames, validate_raw
from tests.helpers import EXAMPLES, EXAMPLES_DIR

Feature = tuple[dict[str, Any], Any]  # (properties, shapely geometry or None)
Layers = dict[str, list[Feature]]

LON, LAT = 8.68, 50.11
DLAT = 0.001  # ~111 m
DLON = 0.001  # ~71 m at this latitude


def pt(dx: float, dy: float) -> Point:
    return Point(LON + dx * DLON, LAT + dy * DLAT)


def base() -> Layers:
    """A valid dataset: every test breaks exactly one thing in a fresh copy."""
    a, b, c = pt(0, 0), pt(3, 0), pt(6, 0)
    return {
        "nodes": [
            ({"node_id": "a", "kind": "core", "status": "in_service", "name": "CO"}, a),
            ({"node_id": "b", "kind": "cabinet", "status": "in_service", "name": None}, b),
            ({"node_id": "c", "kind": "splice", "status": "planned", "name": None}, c),
        ],
        "spans": [
            ({"span_id": "s1", "from_node": "a", "to_node": "b", "fiber_count": 24,
              "fibers_used": 12, "placement": "underground", "duct_id": "d1"},
             LineString([a, b])),
            ({"span_id": "s2", "from_node": "b", "to_node": "c", "fiber_count": 12,
              "fibers_used": None, "placement": "aerial", "duct_id": None},
             LineString([b, c])),
        ],
        "premises": [
            ({"premise_id": "p1", "units": 1, "kind": "residential", "connected": True},
             pt(1, 0.5)),
            ({"premise_id": "p2", "units": 4, "kind": "business", "connected": False},
             pt(2, -0.5)),
        ],
        "areas": [
            ({"area_id": "A1", "name": "All"},
             Polygon([pt(-1, -2), pt(7, -2), pt(7, 2), pt(-1, 2)])),
        ],
    }


def write_geojson_dir(path: Path, layers: Layers) -> Path:
    """One hand-written RFC 7946 file per layer (no crs member: WGS84)."""
    path.mkdir(parents=True, exist_ok=True)
    for name, features in layers.items():
        fc = {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "properties": props,
                 "geometry": None if g is None else shapely.geometry.mapping(g)}
                for props, g in features
            ],
        }
        (path / f"{name}.geojson").write_text(json.dumps(fc))
    return path


def frames(layers: Layers, crs: Any = 4326) -> dict[str, gpd.GeoDataFrame]:
    return {
        name: gpd.GeoDataFrame([p for p, _ in feats], geometry=[g for _, g in feats], crs=crs)
        for name, feats in layers.items()
    }


def write_with_pyogrio(path: Path, layers: Layers, *, driver: str, crs: Any = 4326) -> Path:
    """A GeoPackage (path is the file) or a directory of FlatGeobuf files."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pyogrio warns when crs is None
        for name, frame in frames(layers, crs).items():
            if driver == "GPKG":
                pyogrio.write_dataframe(frame, path, layer=name, driver="GPKG")
            else:
                path.mkdir(parents=True, exist_ok=True)
                pyogrio.write_dataframe(frame, path / f"{name}.fgb", driver="FlatGeobuf")
    return path


def run_validate(path: Path, monkeypatch: pytest.MonkeyPatch,
                 capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
    """Run ``netgis validate PATH`` through the real entry point."""
    monkeypatch.setattr(sys, "argv", ["netgis", "validate", str(path), *extra])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out = capsys.readouterr().out
    report = json.loads(out)
    assert set(report) == {"errors", "warnings"}
    for item in report["errors"] + report["warnings"]:
        assert set(item) == {"layer", "id", "field", "reason"}
        assert isinstance(item["reason"], str) and item["reason"]
    code = exit_info.value.code
    assert isinstance(code, int)
    return code, report


def find(items: list[dict[str, Any]], layer: str, id: str | None, field: str | None,
         reason: str) -> dict[str, Any]:
    """The one item naming ``layer``, ``id``, ``field`` whose reason contains ``reason``."""
    hits = [i for i in items if (i["layer"], i["id"], i["field"]) == (layer, id, field)
            and reason.lower() in i["reason"].lower()]
    assert len(hits) == 1, f"expected one {(layer, id, field, reason)} in {items}"
    return hits[0]


@pytest.fixture
def check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str]) -> Callable[..., dict[str, Any]]:
    """Write ``layers`` as GeoJSON files, validate, assert the exit code, return the report."""

    def run(layers: Layers, code: int) -> dict[str, Any]:
        path = write_geojson_dir(tmp_path / "ds", layers)
        rc, report = run_validate(path, monkeypatch, capsys)
        assert rc == code, report
        return report

    return run


def test_valid_base_has_no_problem(check: Callable[..., dict[str, Any]]) -> None:
    assert check(base(), 0) == {"errors": [], "warnings": []}


@pytest.mark.parametrize("example", EXAMPLES)
@pytest.mark.parametrize("copy", ["dataset.gpkg", "dataset"])
def test_shipped_examples_are_clean(example: str, copy: str, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = EXAMPLES_DIR / example / copy
    assert run_validate(path, monkeypatch, capsys) == (0, {"errors": [], "warnings": []})


# ---------------------------------------------------------------- errors (exit 2)


@pytest.mark.parametrize("layer", ["nodes", "spans", "premises"])
def test_missing_required_layer(layer: str, check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    del layers[layer]
    report = check(layers, 2)
    find(report["errors"], layer, None, None, "required layer is missing")


def test_missing_areas_layer_is_fine(check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    del layers["areas"]
    assert check(layers, 0)["errors"] == []


@pytest.mark.parametrize(("layer", "field"), [
    ("nodes", "node_id"), ("spans", "span_id"), ("spans", "from_node"), ("spans", "to_node"),
    ("premises", "premise_id"), ("areas", "area_id"),
])
def test_missing_required_field(layer: str, field: str,
                                check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    for props, _ in layers[layer]:
        del props[field]
    report = check(layers, 2)
    find(report["errors"], layer, None, field, "required field is missing")


def test_missing_id_value(check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    layers["premises"][1][0]["premise_id"] = "  "
    report = check(layers, 2)
    find(report["errors"], "premises", None, "premise_id", "required value is missing (row 1)")


@pytest.mark.parametrize(("layer", "index", "id"), [
    ("nodes", 1, "a"), ("spans", 1, "s1"), ("premises", 1, "p1"),
])
def test_duplicate_id(layer: str, index: int, id: str,
                      check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    layers[layer][index][0][LAYERS[layer].id_field] = id
    report = check(layers, 2)
    find(report["errors"], layer, id, LAYERS[layer].id_field, "duplicate id")


def test_duplicate_area_id(check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    layers["areas"].append(({"area_id": "A1", "name": "again"}, layers["areas"][0][1]))
    find(check(layers, 2)["errors"], "areas", "A1", "area_id", "duplicate id")


@pytest.mark.parametrize("end", ["from_node", "to_node"])
def test_dangling_node_reference(end: str, check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    layers["spans"][1][0][end] = "zz"
    report = check(layers, 2)
    item = find(report["errors"], "spans", "s2", end, "names no existing node")
    assert "zz" in item["reason"]


def test_missing_node_reference_value(check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    layers["spans"][1][0]["to_node"] = None
    find(check(layers, 2)["errors"], "spans", "s2", "to_node", "required value is missing")


def test_self_loop_span(check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    props, _ = layers["spans"][1]
    props["from_node"] = props["to_node"] = "c"
    layers["spans"][1] = (props, LineString([pt(6, 0), pt(6, 1), pt(7, 1), pt(6, 0.01)]))
    find(check(layers, 2)["errors"], "spans", "s2", "to_node", "self-loop")


@pytest.mark.parametrize(("layer", "index", "id", "geom"), [
    ("nodes", 1, "b", Point()),
    ("nodes", 1, "b", None),
    ("spans", 0, "s1", LineString()),
    ("spans", 0, "s1", None),
    ("premises", 0, "p1", Point()),
    ("premises", 0, "p1", None),
    ("areas", 0, "A1", Polygon()),
])
def test_empty_or_missing_geometry(layer: str, index: int, id: str, geom: Any,
                                   check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    layers[layer][index] = (layers[layer][index][0], geom)
    find(check(layers, 2)["errors"], layer, id, "geometry", "missing or empty")


def test_self_intersecting_area_is_invalid(check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    bowtie = Polygon([pt(-1, -2), pt(7, 2), pt(7, -2), pt(-1, 2)])
    layers["areas"][0] = (layers["areas"][0][0], bowtie)
    item = find(check(layers, 2)["errors"], "areas", "A1", "geometry", "invalid geometry")
    assert "self-intersection" in item["reason"].lower()


def test_degenerate_span_is_invalid(check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    layers["spans"][0] = (layers["spans"][0][0], LineString([pt(0, 0), pt(0, 0)]))
    find(check(layers, 2)["errors"], "spans", "s1", "geometry", "invalid geometry")


@pytest.mark.parametrize(("layer", "index", "id", "geom", "got"), [
    ("nodes", 0, "a", LineString([pt(0, 0), pt(1, 1)]), "LineString"),
    ("spans", 0, "s1", Point(LON, LAT), "Point"),
    ("premises", 0, "p1", Polygon([pt(0, 0), pt(1, 0), pt(1, 1)]), "Polygon"),
    ("areas", 0, "A1", pt(0, 0), "Point"),
    ("premises", 0, "p1", MultiPoint([pt(1, 0.5), pt(1, 0.6)]), "MultiPoint"),
])
def test_wrong_geometry_type(layer: str, index: int, id: str, geom: Any, got: str,
                             check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    layers[layer][index] = (layers[layer][index][0], geom)
    item = find(check(layers, 2)["errors"], layer, id, "geometry", "wrong geometry type")
    assert got in item["reason"]


@pytest.mark.parametrize("srs_id", [0, -1])
def test_geopackage_with_undefined_srs(srs_id: int, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = write_with_pyogrio(tmp_path / "ds.gpkg", base(), driver="GPKG")
    with sqlite3.connect(path) as con:
        con.execute("UPDATE gpkg_geometry_columns SET srs_id = ? WHERE table_name = 'premises'",
                    (srs_id,))
        con.execute("UPDATE gpkg_contents SET srs_id = ? WHERE table_name = 'premises'",
                    (srs_id,))
    con.close()
    rc, report = run_validate(path, monkeypatch, capsys)
    assert rc == 2
    item = find(report["errors"], "premises", None, "geometry", "no CRS")
    assert "gpkg" in item["reason"]
    assert [e["layer"] for e in report["errors"]] == ["premises"]


def test_geopackage_without_crs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    path = write_with_pyogrio(tmp_path / "ds.gpkg", base(), driver="GPKG", crs=None)
    rc, report = run_validate(path, monkeypatch, capsys)
    assert rc == 2
    assert {e["layer"] for e in report["errors"]} == set(LAYERS)
    for name in LAYERS:
        find(report["errors"], name, None, "geometry", "no CRS")


def test_flatgeobuf_without_crs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    path = write_with_pyogrio(tmp_path / "ds", base(), driver="FlatGeobuf", crs=None)
    rc, report = run_validate(path, monkeypatch, capsys)
    assert rc == 2
    item = find(report["errors"], "nodes", None, "geometry", "no CRS")
    assert "fgb" in item["reason"]


def test_flatgeobuf_with_crs_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = write_with_pyogrio(tmp_path / "ds", base(), driver="FlatGeobuf")
    assert run_validate(path, monkeypatch, capsys) == (0, {"errors": [], "warnings": []})


def test_in_memory_frames_without_crs() -> None:
    raw = frames(base(), crs=None)
    strict = validate_frames(raw)
    assert {p.layer for p in strict.errors} == set(LAYERS)
    lenient = validate_frames(raw, crs_required=False)
    assert lenient.errors == []
    assert lenient.dataset is not None and lenient.dataset.crs.to_epsg() == 4326


@pytest.mark.parametrize(("layer", "index", "id", "field", "value"), [
    ("nodes", 1, "b", "kind", "tower"),
    ("nodes", 1, "b", "status", "broken"),
    ("spans", 0, "s1", "status", "active"),
    ("spans", 0, "s1", "placement", "space"),
    ("premises", 0, "p1", "kind", "castle"),
])
def test_unknown_enum_value(layer: str, index: int, id: str, field: str, value: str,
                            check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    layers[layer][index][0][field] = value
    item = find(check(layers, 2)["errors"], layer, id, field, "unknown value")
    assert repr(value) in item["reason"]
    for allowed in LAYERS[layer].field(field).enum or ():
        assert allowed in item["reason"]


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("fiber_count", -1, "must be >= 0"),
    ("fibers_used", -3, "must be >= 0"),
    ("fiber_count", 2.5, "not an integer"),
    ("fiber_count", "many", "not an integer"),
    ("install_year", "soon", "not an integer"),
])
def test_bad_span_counts(field: str, value: Any, reason: str,
                         check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    layers["spans"][1][0][field] = value
    find(check(layers, 2)["errors"], "spans", "s2", field, reason)


def test_fibers_used_over_fiber_count(check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    layers["spans"][0][0]["fibers_used"] = 25
    item = find(check(layers, 2)["errors"], "spans", "s1", "fibers_used", "exceeds fiber_count")
    assert "25" in item["reason"] and "24" in item["reason"]


def test_fibers_used_without_fiber_count_is_allowed(
        check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    layers["spans"][0][0]["fiber_count"] = None
    assert check(layers, 0)["errors"] == []


@pytest.mark.parametrize(("value", "reason"), [
    (0, "must be >= 1"), (-2, "must be >= 1"), ("two", "not an integer"),
])
def test_bad_units(value: Any, reason: str, check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    layers["premises"][1][0]["units"] = value
    find(check(layers, 2)["errors"], "premises", "p2", "units", reason)


def test_not_a_boolean(check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    layers["premises"][0][0]["connected"] = "maybe"
    item = find(check(layers, 2)["errors"], "premises", "p1", "connected", "not a boolean")
    assert "maybe" in item["reason"]


def test_every_problem_is_reported_not_only_the_first(
        check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    layers["nodes"][2][0]["kind"] = "tower"
    layers["spans"][1][0]["fiber_count"] = -1
    layers["premises"][0][0]["units"] = 0
    layers["premises"][1][0]["premise_id"] = "p1"
    report = check(layers, 2)
    assert len(report["errors"]) == 4


def test_stderr_is_clean_and_stdout_is_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    layers = base()
    layers["premises"][0][0]["units"] = 0
    path = write_geojson_dir(tmp_path / "ds", layers)
    monkeypatch.setattr(sys, "argv", ["netgis", "validate", str(path)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    assert exit_info.value.code == 2
    assert "Traceback" not in captured.err
    assert json.loads(captured.out)["errors"][0]["field"] == "units"


# ---------------------------------------------------------------- warnings (exit 0)


def test_span_end_beyond_snap_tolerance(check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    # 0.0002 degrees of latitude is ~22 m
    layers["spans"][0] = (layers["spans"][0][0], LineString([pt(0, 0), pt(3, 0.2)]))
    report = check(layers, 0)
    item = find(report["warnings"], "spans", "s1", "geometry", "to_node end lies")
    assert "22." in item["reason"] and "node b" in item["reason"]
    assert [w["id"] for w in report["warnings"]] == ["s1"]


def test_span_end_within_snap_tolerance(check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    # ~3.3 m off: inside the default 5 m
    layers["spans"][0] = (layers["spans"][0][0], LineString([pt(0, 0.03), pt(3, 0)]))
    assert check(layers, 0)["warnings"] == []


def test_snap_tolerance_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    layers = base()
    layers["spans"][0] = (layers["spans"][0][0], LineString([pt(0, 0.03), pt(3, 0)]))
    path = write_geojson_dir(tmp_path / "ds", layers)
    rc, report = run_validate(path, monkeypatch, capsys, "--snap-tolerance-m", "1")
    assert rc == 0
    find(report["warnings"], "spans", "s1", "geometry", "from_node end lies 3.3 m")


def test_node_without_spans(check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    layers["nodes"].append(({"node_id": "d", "kind": "pole"}, pt(9, 0)))
    report = check(layers, 0)
    find(report["warnings"], "nodes", "d", None, "node has no spans")
    assert len(report["warnings"]) == 1


def test_premise_outside_every_area(check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    layers["premises"].append(({"premise_id": "p3"}, pt(20, 0)))
    # a premise on an area boundary is inside (containment includes the boundary)
    layers["premises"].append(({"premise_id": "p4"}, pt(7, 0)))
    report = check(layers, 0)
    find(report["warnings"], "premises", "p3", "geometry", "outside every area")
    assert len(report["warnings"]) == 1


def test_no_area_warning_without_areas(check: Callable[..., dict[str, Any]]) -> None:
    layers = base()
    del layers["areas"]
    layers["premises"].append(({"premise_id": "p3"}, pt(20, 0)))
    assert check(layers, 0)["warnings"] == []


def test_field_outside_contract_is_ignored_with_warning(tmp_path: Path) -> None:
    layers = base()
    for props, _ in layers["premises"]:
        props["color"] = "red"
    report = validate_path(str(write_geojson_dir(tmp_path / "ds", layers)))
    assert report.errors == []
    assert report.warnings == [Problem("premises", None, "color",
                                       "field is not in the contract; ignored")]
    assert report.dataset is not None and "color" not in report.dataset.premises.columns


# ---------------------------------------------------------------- forgiving rules


def test_numeric_ids_become_text(tmp_path: Path) -> None:
    layers = base()
    renumber = {"a": 1, "b": 2, "c": 3}
    for props, _ in layers["nodes"]:
        props["node_id"] = renumber[props["node_id"]]
    for i, (props, _) in enumerate(layers["spans"]):
        props["span_id"] = 10 + i
        props["from_node"] = renumber[props["from_node"]]
        # a float that is a whole number is the same id as the integer
        props["to_node"] = float(renumber[props["to_node"]])
    ds = read_dataset(write_geojson_dir(tmp_path / "ds", layers))
    assert ds.nodes["node_id"].tolist() == ["1", "2", "3"]
    assert ds.spans["span_id"].tolist() == ["10", "11"]
    assert ds.spans["to_node"].tolist() == ["2", "3"]
    assert all(isinstance(v, str) for v in ds.spans["from_node"])


def test_ids_are_stripped_and_unicode_is_kept(tmp_path: Path) -> None:
    layers = base()
    layers["premises"][0][0]["premise_id"] = "  Straße 1 "
    layers["premises"][1][0]["premise_id"] = "東京-2"
    ds = read_dataset(write_geojson_dir(tmp_path / "ds", layers))
    assert ds.premises["premise_id"].tolist() == ["Straße 1", "東京-2"]


def test_booleans_accept_true_false_1_0(tmp_path: Path) -> None:
    layers = base()
    values = [True, False, "true", "FALSE", 1, 0, "1", "0", None, ""]
    layers["premises"] = [
        ({"premise_id": f"p{i}", "connected": v}, pt(1, 0.1 * i)) for i, v in enumerate(values)
    ]
    ds = read_dataset(write_geojson_dir(tmp_path / "ds", layers))
    assert ds.premises["connected"].tolist() == [
        True, False, True, False, True, False, True, False, False, False]
    assert ds.premises["connected"].dtype == bool


def test_empty_enum_cell_takes_default(tmp_path: Path) -> None:
    layers = base()
    layers["nodes"][1][0].update(kind="", status=None)
    layers["premises"][0][0].update(kind=None, units=None, connected=None)
    del layers["spans"][0][0]["placement"]
    ds = read_dataset(write_geojson_dir(tmp_path / "ds", layers))
    node_b = ds.nodes.set_index("node_id").loc["b"]
    assert (node_b["kind"], node_b["status"]) == ("other", "in_service")
    p1 = ds.premises.set_index("premise_id").loc["p1"]
    assert (p1["kind"], p1["units"], p1["connected"]) == ("residential", 1, False)
    # placement has no default: it stays empty
    assert ds.spans["placement"].tolist() == [None, "aerial"]


def test_enum_values_are_case_folded(tmp_path: Path) -> None:
    layers = base()
    layers["nodes"][0][0]["kind"] = " CORE "
    layers["spans"][0][0]["status"] = "In_Service"
    ds = read_dataset(write_geojson_dir(tmp_path / "ds", layers))
    assert ds.nodes["kind"].iat[0] == "core"
    assert ds.spans["status"].iat[0] == "in_service"


def test_single_part_multi_geometry_is_its_part(tmp_path: Path) -> None:
    layers = base()
    layers["premises"][0] = (layers["premises"][0][0], MultiPoint([pt(1, 0.5)]))
    line = layers["spans"][0][1]
    layers["spans"][0] = (layers["spans"][0][0], shapely.MultiLineString([line]))
    report = validate_path(str(write_geojson_dir(tmp_path / "ds", layers)))
    assert report.errors == [] and report.warnings == []
    assert report.dataset is not None
    assert report.dataset.premises.geometry.iat[0].equals(pt(1, 0.5))
    assert report.dataset.spans.geometry.iat[0].geom_type == "LineString"


def test_z_values_are_dropped_with_a_warning(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    layers = base()
    layers["nodes"] = [(props, Point(g.x, g.y, 110.0)) for props, g in layers["nodes"]]
    rc, report = run_validate(write_geojson_dir(tmp_path / "ds", layers), monkeypatch, capsys)
    assert rc == 0
    item = find(report["warnings"], "nodes", "a", "geometry", "Z/M values dropped")
    assert "3 geometries" in item["reason"]
    ds = read_dataset(tmp_path / "ds")
    assert not shapely.has_z(ds.nodes.geometry.to_numpy()).any()


def test_geoparquet_without_crs_is_wgs84(tmp_path: Path) -> None:
    path = tmp_path / "ds"
    path.mkdir()
    for name, frame in frames(base(), crs=None).items():
        frame.to_parquet(path / f"{name}.parquet")
    raw = read_raw(path)
    assert {r.fmt for r in raw.values()} == {"parquet"}
    ds = validate_raw(raw).dataset_or_raise()
    assert ds.crs.to_epsg() == 4326
    assert ds.nodes.geometry.iat[0].equals(pt(0, 0))


def test_geojson_without_crs_is_wgs84(tmp_path: Path) -> None:
    ds = read_dataset(write_geojson_dir(tmp_path / "ds", base()))
    assert ds.crs.to_epsg() == 4326


def test_column_names_differing_in_case_are_matched(tmp_path: Path) -> None:
    layers = base()
    layers["nodes"] = [({k.upper(): v for k, v in props.items()}, g)
                       for props, g in layers["nodes"]]
    report = validate_path(str(write_geojson_dir(tmp_path / "ds", layers)))
    assert report.errors == [] and report.warnings == []


@pytest.mark.parametrize("second", ["nodes.fgb", "nodes.json", "Nodes.parquet"])
def test_two_files_for_one_layer(second: str, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = write_geojson_dir(tmp_path / "ds", base())
    (path / second).write_bytes((path / "nodes.geojson").read_bytes())
    rc, report = run_validate(path, monkeypatch, capsys)
    assert rc == 2
    item = find(report["errors"], "nodes", None, None, "two files for one layer")
    assert second in item["reason"] and "nodes.geojson" in item["reason"]


def test_empty_layers_are_valid(tmp_path: Path) -> None:
    layers = base()
    layers["premises"] = []
    layers["areas"] = []
    report = validate_path(str(write_geojson_dir(tmp_path / "ds", layers)))
    assert report.errors == []
    assert report.dataset is not None and len(report.dataset.premises) == 0
    assert list(report.dataset.premises.columns) == [*LAYERS["premises"].field_names, "geometry"]


def test_local_engineering_crs_is_an_error() -> None:
    local = 'LOCAL_CS["site grid",UNIT["metre",1],AXIS["Easting",EAST],AXIS["Northing",NORTH]]'
    layers = frames(base())
    layers["spans"] = layers["spans"].set_crs(local, allow_override=True)
    report = validate_frames(layers)
    assert [(p.layer, p.id, p.field) for p in report.errors] == [("spans", None, "geometry")]
    assert "cannot be related to the earth" in report.errors[0].reason
    assert report.dataset is None


def test_other_boolean_spellings(tmp_path: Path) -> None:
    layers = base()
    values = ["T", "f", "Yes", "no", 1.0, 0.0]
    layers["premises"] = [
        ({"premise_id": f"p{i}", "connected": v}, pt(1, 0.1 * i)) for i, v in enumerate(values)
    ]
    ds = read_dataset(write_geojson_dir(tmp_path / "ds", layers))
    assert ds.premises["connected"].tolist() == [True, False, True, False, True, False]


def test_report_dataset_or_raise() -> None:
    layers = frames(base())
    layers["premises"].loc[0, "units"] = 0
    report = validate_frames(layers)
    assert not report.ok
    with pytest.raises(ValueError, match="units"):  # ValidationError is a ValueError
        report.dataset_or_raise()
