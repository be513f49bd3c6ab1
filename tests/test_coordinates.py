"""Coordinates the analysis cannot use are refused by the validator (issue 19, defect 3).

docs/spec.md §1.8: a coordinate that is not finite, that lies outside +-180 / +-90
once in WGS84, or more than 5 degrees beyond the area of use of its CRS is an
error; one beyond the area of use by less is a warning. Every vertex counts,
not only points. Ids with NUL or line breaks are refused as well.

The datasets are the small plant of :mod:`tests.test_validate`, with one
feature broken, run through ``netgis validate``, ``netgis analyze`` and
``netgis db load`` (the real entry point, ``netgis.cli.main``).
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely import LineString, Point, Polygon

from netgis.cli import main
from netgis.errors import ValidationError
from netgis.validate import validate_frames
from tests.test_validate import (
    Layers,
    base,
    find,
    frames,
    pt,
    run_validate,
    write_geojson_dir,
    write_with_pyogrio,
)

BAD_POINTS = [(500.0, 95.0), (1e308, 1e308), (-181.0, 10.0), (10.0, -90.5)]


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
            *args: str) -> tuple[int, str, str]:
    """``netgis ARGS`` through the real entry point: exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["netgis", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out = capsys.readouterr()
    code = info.value.code
    assert isinstance(code, int)
    return code, out.out, out.err


def errors_of(layers: Layers, crs: Any = 4326) -> list[tuple[str, str | None, str | None, str]]:
    report = validate_frames(frames(layers, crs))
    return [(p.layer, p.id, p.field, p.reason) for p in report.errors]


def one_error(layers: Layers, layer: str, id: str | None, reason: str, crs: Any = 4326) -> str:
    hits = [r for (lay, i, f, r) in errors_of(layers, crs)
            if (lay, i, f) == (layer, id, "geometry") and reason.lower() in r.lower()]
    assert len(hits) == 1, errors_of(layers, crs)
    return hits[0]


# ------------------------------------------------------------- WGS84 range, every entry


@pytest.mark.parametrize("xy", BAD_POINTS)
def test_premise_outside_wgs84_is_an_error_in_validate(
        xy: tuple[float, float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    layers = base()
    layers["premises"][1] = (layers["premises"][1][0], Point(*xy))
    path = write_geojson_dir(tmp_path / "ds", layers)
    code, report = run_validate(path, monkeypatch, capsys)
    assert code == 2
    find(report["errors"], "premises", "p2", "geometry", "outside")


def test_analyze_refuses_it_with_exit_2_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    layers = base()
    layers["premises"][1] = (layers["premises"][1][0], Point(500, 95))
    path = write_geojson_dir(tmp_path / "ds", layers)
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(monkeypatch, capsys, "analyze", str(path), "--out", str(out))
    assert code == 2, stderr
    assert stdout == ""
    assert "premises id=p2 field=geometry" in stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    assert not out.exists()


def test_db_load_refuses_it_and_stores_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    layers = base()
    layers["spans"][0] = (layers["spans"][0][0],
                          LineString([pt(0, 0), (8.681, 95.0), pt(3, 0)]))
    path = write_geojson_dir(tmp_path / "ds", layers)
    db = tmp_path / "n.db"
    code, _, stderr = run_cli(monkeypatch, capsys, "db", "load", str(path),
                              "--database-url", f"sqlite:///{db}")
    assert code == 2, stderr
    assert "spans id=s1 field=geometry" in stderr
    if db.exists():
        with sqlite3.connect(db) as con:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
            if "premises" in tables:
                assert con.execute("SELECT count(*) FROM premises").fetchone() == (0,)


# ------------------------------------------------------------------- every vertex counts


def test_a_span_vertex_out_of_range_is_an_error() -> None:
    layers = base()
    layers["spans"][1] = (layers["spans"][1][0],
                          LineString([pt(3, 0), (200.0, 50.11), pt(6, 0)]))
    one_error(layers, "spans", "s2", "outside")


def test_an_area_vertex_out_of_range_is_an_error() -> None:
    layers = base()
    ring = [pt(-1, -2), pt(7, -2), (8.69, 91.0), pt(7, 2), pt(-1, 2)]
    layers["areas"][0] = (layers["areas"][0][0], Polygon(ring))
    one_error(layers, "areas", "A1", "outside")


@pytest.mark.parametrize("layer", ["nodes", "spans", "premises", "areas"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_coordinates_are_an_error(layer: str, value: float) -> None:
    layers = base()
    props, geom = layers[layer][0]
    coords = shapely.get_coordinates(geom)
    coords[1 if len(coords) > 1 else 0, 0] = value
    layers[layer][0] = (props, shapely.set_coordinates(geom, coords))
    ident = props[{"nodes": "node_id", "spans": "span_id", "premises": "premise_id",
                   "areas": "area_id"}[layer]]
    one_error(layers, layer, ident, "not finite")


def test_non_finite_coordinates_from_a_geopackage(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    layers = base()
    layers["premises"][0] = (layers["premises"][0][0], Point(np.inf, 50.0))
    path = write_with_pyogrio(tmp_path / "ds.gpkg", layers, driver="GPKG")
    code, report = run_validate(path, monkeypatch, capsys)
    assert code == 2
    find(report["errors"], "premises", "p1", "geometry", "not finite")


# ------------------------------------------------------- area of use of the layer's CRS


def utm(layers: Layers) -> dict[str, gpd.GeoDataFrame]:
    return {name: frame.to_crs(32632) for name, frame in frames(layers).items()}


def shifted(dlon: float) -> Layers:
    """The base plant with premise p2 moved ``dlon`` degrees east (UTM 32N covers 6-12 E)."""
    layers = base()
    p = layers["premises"][1][1]
    layers["premises"][1] = (layers["premises"][1][0], Point(p.x + dlon, p.y))
    return layers


def test_beyond_the_area_of_use_by_less_than_5_degrees_is_a_warning() -> None:
    report = validate_frames(utm(shifted(12.0 - 8.68 + 2.0)))  # 14 E: 2 degrees beyond
    assert report.errors == []
    hits = [w for w in report.warnings if (w.layer, w.field) == ("premises", "geometry")
            and "area of use" in w.reason]
    assert len(hits) == 1, report.warnings
    assert "p2" in hits[0].reason or hits[0].id == "p2"


def test_beyond_the_area_of_use_by_more_than_5_degrees_is_an_error() -> None:
    report = validate_frames(utm(shifted(12.0 - 8.68 + 7.0)))  # 19 E: 7 degrees beyond
    hits = [p for p in report.errors if (p.layer, p.id, p.field) == ("premises", "p2", "geometry")]
    assert len(hits) == 1, report.errors
    assert "area of use" in hits[0].reason and "EPSG:32632" in hits[0].reason


def test_outside_the_world_of_web_mercator_is_an_error() -> None:
    layers = utm(base())
    merc = {name: frame.to_crs(3857) for name, frame in layers.items()}
    geoms = merc["premises"].geometry.to_numpy().copy()
    geoms[0] = Point(3.0e7, 6.4e6)  # beyond x = +-20037508 m: no longitude maps there
    merc["premises"] = merc["premises"].set_geometry(gpd.GeoSeries(geoms, crs=3857))
    report = validate_frames(merc)
    assert [p.id for p in report.errors if p.layer == "premises"] == ["p1"], report.errors


def test_lon_lat_declared_as_utm_names_the_likely_cause(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = write_with_pyogrio(tmp_path / "ds.gpkg", base(), driver="GPKG", crs=32632)
    code, report = run_validate(path, monkeypatch, capsys)
    assert code == 2
    for layer in ("nodes", "spans", "premises", "areas"):
        item = find(report["errors"], layer, None, "geometry", "longitude/latitude")
        assert "EPSG:32632" in item["reason"] and "EPSG:4326" in item["reason"]


def test_valid_utm_data_has_no_coordinate_problem() -> None:
    report = validate_frames(utm(base()))
    assert report.errors == [] and report.warnings == []


def test_a_layer_reprojected_far_outside_the_dataset_crs_is_an_error() -> None:
    """premises in WGS84 on another continent than nodes in UTM 32N: no usable CRS for both."""
    layers = utm(base())
    far = frames(base())["premises"]
    far.geometry = far.geometry.translate(-120.0, 0.0)  # the Pacific coast of America
    layers["premises"] = far
    report = validate_frames(layers)
    assert {p.id for p in report.errors if p.layer == "premises"} == {"p1", "p2"}, report.errors


# ------------------------------------------------------------------ ids: NUL, CR, LF


@pytest.mark.parametrize("bad", ["p\x001", "p\r\n1", "p\n1", "p\r1", "p\t1"])
def test_ids_with_control_characters_are_an_error(bad: str) -> None:
    layers = base()
    layers["premises"][0][0]["premise_id"] = bad
    hits = [p for p in validate_frames(frames(layers)).errors
            if (p.layer, p.field) == ("premises", "premise_id")]
    assert len(hits) == 1 and "control character" in hits[0].reason, hits


def test_nul_in_any_text_field_is_an_error() -> None:
    layers = base()
    layers["nodes"][0][0]["name"] = "central\x00office"
    hits = [p for p in validate_frames(frames(layers)).errors
            if (p.layer, p.id, p.field) == ("nodes", "a", "name")]
    assert len(hits) == 1 and "NUL" in hits[0].reason, hits


def test_read_dataset_raises_for_bad_coordinates(tmp_path: Path) -> None:
    from netgis.io import read_dataset

    layers = base()
    layers["nodes"][2] = (layers["nodes"][2][0], Point(8.7, 1e308))
    with pytest.raises(ValidationError) as info:
        read_dataset(write_geojson_dir(tmp_path / "ds", layers))
    assert any((p.layer, p.id, p.field) == ("nodes", "c", "geometry")
               for p in info.value.problems)


def test_problems_print_control_characters_escaped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """An id with CR or an ANSI escape would rewrite the user's terminal line: escaped."""
    from netgis.errors import Problem

    assert str(Problem("premises", "p1", "units", "x")) == "premises id=p1 field=units: x"
    assert (str(Problem("premises", "p\r\n1", "premise_id", "x"))
            == "premises id='p\\r\\n1' field=premise_id: x")
    layers = base()
    layers["premises"][0][0]["premise_id"] = "p\x1b[2Kx"
    path = write_geojson_dir(tmp_path / "ds", layers)
    code, _, stderr = run_cli(monkeypatch, capsys, "analyze", str(path), "--out",
                              str(tmp_path / "out"))
    assert code == 2
    assert "\x1b" not in stderr and "id='p\\x1b[2Kx'" in stderr


def test_problems_are_always_encodable() -> None:
    """A lone surrogate (from a JSON escape) in a problem must not break its report."""
    import json

    from netgis.errors import Problem

    p = Problem("premises", "p\ud8001", "address", "bad \udcff text")
    json.dumps(p.as_dict(), ensure_ascii=False).encode("utf-8")
    str(p).encode("utf-8")
    assert p.id == "p\\ud8001"


def test_text_that_is_not_unicode_is_an_error_not_a_crash() -> None:
    import pandas as pd

    layers = frames(base())
    premises = layers["premises"]
    # object dtype: pandas' own string dtype would refuse the value before netgis sees it
    premises["address"] = pd.Series(["ok", "x\ud800y"], index=premises.index, dtype=object)
    report = validate_frames(layers)
    assert [(p.layer, p.id, p.field) for p in report.errors] == [("premises", "p2", "address")]
