"""File I/O: round trips through every format keep every field and geometry; writes are atomic.

The writer API (:func:`netgis.io.atomic_file`, :func:`netgis.io.atomic_dir`) is tested here
in-process; tests/test_output_modes.py checks the modes of every command's outputs.

Comparisons are made on validated datasets (:func:`netgis.io.read_dataset`),
whose column types come from the contract, so "keeps every field" means the
same values with the same pandas dtypes after a trip through the files.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely import LineString, MultiPolygon, Point, Polygon

from netgis.dataset import Dataset, empty_layer
from netgis.errors import DatasetFormatError, ValidationError
from netgis.io import (
    TEMP_PREFIX,
    atomic_dir,
    atomic_file,
    detect_format,
    read_dataset,
    read_frame,
    read_raw,
    write_dataset,
)
from netgis.schema import LAYERS
from netgis.validate import validate_frames
from tests.helpers import EXAMPLES, EXAMPLES_DIR

UTM32 = 32632
X0, Y0 = 477_000.0, 5_550_000.0  # near Frankfurt in UTM 32N


def rich_dataset() -> Dataset:
    """Every optional field filled somewhere, nulls elsewhere, unicode ids and text."""
    a, b, c, d = (Point(X0 + dx, Y0) for dx in (0.0, 250.5, 500.25, 750.125))
    nodes = gpd.GeoDataFrame({
        "node_id": ["zentrale-Ä", "東京", "n 3", "n4"],
        "kind": ["core", "cabinet", "splice", "pole"],
        "status": ["in_service", "planned", "retired", "in_service"],
        "name": ["Central office «Nord»", None, "Ümlaut splice", ""],
    }, geometry=[a, b, c, d], crs=UTM32)
    spans = gpd.GeoDataFrame({
        "span_id": ["s-1", "s-2", "s-3", "s-4"],
        "from_node": ["zentrale-Ä", "東京", "n 3", "zentrale-Ä"],
        "to_node": ["東京", "n 3", "n4", "東京"],
        "status": ["in_service", "planned", "retired", "in_service"],
        "fiber_count": pd.array([144, None, 0, 2**40], dtype="Int64"),
        "fibers_used": pd.array([96, 3, 0, None], dtype="Int64"),
        "placement": ["underground", None, "aerial", "submarine"],
        "duct_id": ["duct/1", None, "duct/1", "d2"],
        "owner": ["Städtische Werke", None, "x", None],
        "install_year": pd.array([1999, None, 2024, -5], dtype="Int64"),
    }, geometry=[
        LineString([a.coords[0], (X0 + 100.333, Y0 + 7.1), b.coords[0]]),
        LineString([b, c]),
        LineString([c, d]),
        LineString([a.coords[0], (X0 + 120.0, Y0 - 30.0), b.coords[0]]),
    ], crs=UTM32)
    premises = gpd.GeoDataFrame({
        "premise_id": ["p-ü", "p-漢", "12345", "p;4"],
        "units": [1, 250, 3, 1],
        "kind": ["residential", "business", "anchor", "other"],
        "connected": [True, False, True, False],
        "address": ["Hauptstraße 1, 60311 Frankfurt", None, "Rue de l'Église 2", None],
        "location_id": ["1234567890", None, None, "9"],
    }, geometry=[Point(X0 + 50.5, Y0 + 20.25), Point(X0 + 300, Y0 - 40),
                 Point(X0 + 510, Y0 + 5), Point(X0 + 5_000, Y0 + 5_000)], crs=UTM32)
    areas = gpd.GeoDataFrame({
        "area_id": ["west", "öst"],
        "name": ["West district", None],
    }, geometry=[
        Polygon([(X0 - 100, Y0 - 100), (X0 + 400, Y0 - 100), (X0 + 400, Y0 + 100),
                 (X0 - 100, Y0 + 100)]),
        MultiPolygon([
            Polygon([(X0 + 300, Y0 - 100), (X0 + 900, Y0 - 100), (X0 + 900, Y0 + 100),
                     (X0 + 300, Y0 + 100)]),
            Polygon([(X0 + 4_000, Y0 + 4_000), (X0 + 6_000, Y0 + 4_000),
                     (X0 + 6_000, Y0 + 6_000), (X0 + 4_000, Y0 + 6_000)],
                    holes=[[(X0 + 4_500, Y0 + 4_500), (X0 + 4_600, Y0 + 4_500),
                            (X0 + 4_600, Y0 + 4_600)]]),
        ]),
    ], crs=UTM32)
    report = validate_frames(
        {"nodes": nodes, "spans": spans, "premises": premises, "areas": areas})
    assert report.warnings == []
    return report.dataset_or_raise()


def assert_same_dataset(got: Dataset, want: Dataset, *, tolerance: float = 1e-6) -> None:
    """Same CRS, same rows (any order), same values and dtypes, same geometries."""
    assert got.crs == want.crs
    for name in LAYERS:
        g, w = got.layers()[name], want.layers()[name]
        id_field = LAYERS[name].id_field
        assert list(g.columns) == list(w.columns), name
        g = g.sort_values(id_field).reset_index(drop=True)
        w = w.sort_values(id_field).reset_index(drop=True)
        pd.testing.assert_frame_equal(
            pd.DataFrame(g.drop(columns="geometry")), pd.DataFrame(w.drop(columns="geometry")),
            check_dtype=True, obj=name)
        same = shapely.equals_exact(g.geometry.to_numpy(), w.geometry.to_numpy(), tolerance)
        assert same.all(), (name, g.geometry[~same].to_wkt().tolist())
        types = g.geometry.geom_type.tolist()
        assert types == w.geometry.geom_type.tolist(), name


@pytest.fixture(params=["ring_spur", "rich"])
def dataset(request: pytest.FixtureRequest) -> Dataset:
    if request.param == "rich":
        return rich_dataset()
    return read_dataset(EXAMPLES_DIR / str(request.param) / "dataset.gpkg")


def test_rich_dataset_is_what_it_claims() -> None:
    ds = rich_dataset()
    assert ds.spans["fiber_count"].dtype == "Int64"
    assert ds.spans["fiber_count"].isna().sum() == 1
    assert ds.nodes["name"].isna().sum() == 2  # the empty string is missing too
    assert ds.premises["connected"].dtype == bool
    assert ds.areas.geometry.geom_type.tolist() == ["Polygon", "MultiPolygon"]


def test_round_trip_gpkg_parquet_geojson_gpkg(dataset: Dataset, tmp_path: Path) -> None:
    first = write_dataset(dataset, tmp_path / "a.gpkg")
    start = read_dataset(first)
    assert_same_dataset(start, dataset)
    parquet = write_dataset(start, tmp_path / "b.parquet")
    assert parquet.is_dir()
    assert sorted(p.name for p in parquet.iterdir()) == sorted(
        f"{n}.parquet" for n in LAYERS if n != "areas" or len(dataset.areas))
    geojson = write_dataset(read_dataset(parquet), tmp_path / "c", fmt="geojson")
    assert {p.suffix for p in geojson.iterdir()} == {".geojson"}
    last = write_dataset(read_dataset(geojson), tmp_path / "d.gpkg")
    assert_same_dataset(read_dataset(last), dataset)


@pytest.mark.parametrize("fmt", ["fgb", "geojson", "parquet", "gpkg"])
def test_round_trip_each_format(fmt: str, dataset: Dataset, tmp_path: Path) -> None:
    out = write_dataset(dataset, tmp_path / "out", fmt=fmt)
    assert_same_dataset(read_dataset(out), dataset)


def test_format_from_suffix(tmp_path: Path) -> None:
    ds = rich_dataset()
    for name, suffix in [("x.fgb", ".fgb"), ("x.parquet", ".parquet"),
                         ("x.geojson", ".geojson"), ("plain", ".geojson")]:
        out = write_dataset(ds, tmp_path / name)
        assert out.is_dir()
        assert {p.suffix for p in out.iterdir()} == {suffix}, name
    assert write_dataset(ds, tmp_path / "x.gpkg").is_file()
    with pytest.raises(DatasetFormatError):
        write_dataset(ds, tmp_path / "y", fmt="shapefile")


def test_empty_areas_layer_round_trips_as_empty(tmp_path: Path) -> None:
    ds = read_dataset(EXAMPLES_DIR / "duct_ring" / "dataset.gpkg")
    assert len(ds.areas) == 0
    for fmt in ("geojson", "gpkg"):
        back = read_dataset(write_dataset(ds, tmp_path / fmt, fmt=fmt))
        assert len(back.areas) == 0
        assert list(back.areas.columns) == ["area_id", "name", "geometry"]


def test_examples_agree_across_copies() -> None:
    """The shipped GeoPackage (UTM) and GeoJSON (WGS84) copies hold the same features."""
    for example in EXAMPLES:
        gpkg = read_dataset(EXAMPLES_DIR / example / "dataset.gpkg")
        geojson = read_dataset(EXAMPLES_DIR / example / "dataset")
        assert geojson.crs.to_epsg() == 4326 and gpkg.crs.to_epsg() == UTM32
        moved = Dataset(**{n: f.to_crs(UTM32) for n, f in geojson.layers().items()})
        # GeoJSON keeps about 1e-7 degrees: ~1 cm
        assert_same_dataset(moved, gpkg, tolerance=0.05)


def test_layers_in_different_crs_are_reprojected_to_the_nodes_crs(tmp_path: Path) -> None:
    ds = rich_dataset()
    out = tmp_path / "mixed"
    out.mkdir()
    ds.nodes.to_parquet(out / "nodes.parquet")
    ds.spans.to_crs(4326).to_parquet(out / "spans.parquet")
    ds.premises.to_crs(3857).to_parquet(out / "premises.parquet")
    ds.areas.to_crs(31467).to_parquet(out / "areas.parquet")  # Gauss-Krueger zone 3
    raw = read_raw(out)
    assert {r.frame.crs.to_epsg() for r in raw.values()} == {UTM32, 4326, 3857, 31467}
    back = read_dataset(out)
    assert all(f.crs.to_epsg() == UTM32 for f in back.layers().values())
    assert_same_dataset(back, ds, tolerance=1e-3)


def test_write_replaces_an_existing_target(tmp_path: Path) -> None:
    ds = rich_dataset()
    for fmt, name in (("geojson", "t"), ("gpkg", "t.gpkg")):
        target = tmp_path / name
        write_dataset(read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"), target, fmt=fmt)
        write_dataset(ds, target, fmt=fmt)
        assert_same_dataset(read_dataset(target), ds)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t", "t.gpkg"]


def _unwritable(ds: Dataset) -> Dataset:
    """The dataset plus a column no format can store, in its last layer."""
    areas = ds.areas.copy()
    areas["bad"] = [complex(1, 2)] * len(areas)
    return Dataset(nodes=ds.nodes, spans=ds.spans, premises=ds.premises, areas=areas)


def _snapshot(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


@pytest.mark.parametrize(("fmt", "name"), [
    ("gpkg", "t.gpkg"), ("geojson", "t"), ("fgb", "t.fgb"), ("parquet", "t.parquet"),
])
def test_failed_write_leaves_target_untouched(fmt: str, name: str, tmp_path: Path) -> None:
    target = write_dataset(read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"),
                           tmp_path / name, fmt=fmt)
    before = _snapshot(target)
    with pytest.raises(Exception, match=r"(?i)complex|not implemented|unsupported"):
        write_dataset(_unwritable(rich_dataset()), target, fmt=fmt)
    assert _snapshot(target) == before
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary left behind


def test_failed_write_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"(?i)complex|not implemented|unsupported"):
        write_dataset(_unwritable(rich_dataset()), tmp_path / "new.gpkg")
    assert list(tmp_path.iterdir()) == []


def test_read_dataset_raises_with_every_problem(tmp_path: Path) -> None:
    ds = rich_dataset()
    premises = ds.premises.copy()
    premises.loc[0, "units"] = 0
    premises.loc[1, "kind"] = "castle"
    bad = Dataset(nodes=ds.nodes, spans=ds.spans, premises=premises, areas=ds.areas)
    path = write_dataset(bad, tmp_path / "bad.gpkg")
    with pytest.raises(ValidationError) as info:
        read_dataset(path)
    assert {(p.layer, p.id, p.field) for p in info.value.problems} == {
        ("premises", "p-ü", "units"), ("premises", "p-漢", "kind")}


@pytest.mark.parametrize("content", [b"", b"not a geopackage at all" * 100])
def test_unreadable_geopackage(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "broken.gpkg"
    path.write_bytes(content)
    with pytest.raises(DatasetFormatError) as info:
        read_raw(path)
    assert "broken.gpkg" in str(info.value)


def test_unreadable_layer_file(tmp_path: Path) -> None:
    path = tmp_path / "ds"
    write_dataset(rich_dataset(), path, fmt="parquet")
    (path / "spans.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(DatasetFormatError) as info:
        read_raw(path)
    problem = info.value.problems[0]
    assert (problem.layer, problem.id) == ("spans", None)
    assert "spans.parquet" in problem.reason


def test_path_that_is_neither_gpkg_nor_directory(tmp_path: Path) -> None:
    with pytest.raises(DatasetFormatError, match="does not exist"):
        read_raw(tmp_path / "missing.gpkg.zip")
    (tmp_path / "nodes.csv").write_text("node_id\n")
    with pytest.raises(DatasetFormatError, match="neither"):
        read_raw(tmp_path / "nodes.csv")


def test_files_of_other_layers_are_ignored(tmp_path: Path) -> None:
    path = write_dataset(rich_dataset(), tmp_path / "ds", fmt="geojson")
    (path / "roads.geojson").write_bytes((path / "spans.geojson").read_bytes())
    (path / "README.md").write_text("notes")
    assert sorted(read_raw(path)) == sorted(LAYERS)


def test_empty_layer_has_the_contract_columns() -> None:
    frame = empty_layer("spans", UTM32)
    assert list(frame.columns) == [*LAYERS["spans"].field_names, "geometry"]
    assert frame["fiber_count"].dtype == "Int64"
    assert frame.crs.to_epsg() == UTM32
    assert len(frame) == 0
    assert empty_layer("premises")["connected"].dtype == bool


def test_dataset_crs_and_layers() -> None:
    ds = rich_dataset()
    assert ds.crs.to_epsg() == UTM32
    assert list(ds.layers()) == ["nodes", "spans", "premises", "areas"]
    assert np.array_equal(ds.layers()["nodes"]["node_id"], ds.nodes["node_id"])


@pytest.mark.parametrize(("name", "fmt", "expected"), [
    ("x.gpkg", None, "gpkg"), ("X.GPKG", None, "gpkg"), ("x.geojson", None, "geojson"),
    ("x.json", None, "geojson"), ("x.fgb", None, "fgb"), ("x.parquet", None, "parquet"),
    ("x.geoparquet", None, "parquet"), ("plain", None, "geojson"), ("x.shp", None, "geojson"),
    ("x.gpkg", "fgb", "fgb"),
])
def test_detect_format(name: str, fmt: str | None, expected: str) -> None:
    assert detect_format(name, fmt) == expected


def test_detect_format_refuses_an_unknown_format() -> None:
    with pytest.raises(DatasetFormatError, match="unknown format 'shapefile'"):
        detect_format("x", "shapefile")


def test_read_frame_names_the_file_in_one_error_form(tmp_path: Path) -> None:
    for name in ("a.fgb", "a.parquet", "a.gpkg"):
        (tmp_path / name).write_bytes(b"garbage" * 10)
        with pytest.raises(DatasetFormatError) as info:
            read_frame(tmp_path / name, subject="roads", shown=f"the {name}")
        (problem,) = info.value.problems
        assert problem.layer == "roads" and problem.reason.startswith(f"cannot read the {name}")
    frame = read_frame(EXAMPLES_DIR / "ring_spur" / "dataset" / "nodes.geojson")
    assert frame.geometry.name == "geometry" and len(frame) > 0


def _listing(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def test_atomic_file_replaces_only_when_the_block_succeeds(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "page.html"
    with atomic_file(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".html" and not tmp.exists()
        tmp.write_text("first")
    assert target.read_text() == "first"
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        tmp.write_text("half")
        (tmp.parent / f"{tmp.name}-journal").write_text("sidecar")  # as SQLite leaves one
        raise RuntimeError("writer failed")
    assert target.read_text() == "first"
    assert _listing(target.parent) == ["page.html"]


def test_atomic_file_leaves_nothing_when_the_rename_fails(tmp_path: Path) -> None:
    (tmp_path / "out.csv").mkdir()
    with pytest.raises(IsADirectoryError), atomic_file(tmp_path / "out.csv") as tmp:
        tmp.write_text("x")
    assert _listing(tmp_path) == ["out.csv"]


def test_atomic_dir_replaces_a_directory_whole(tmp_path: Path) -> None:
    target = tmp_path / "ds.geojson"
    with atomic_dir(target) as tmp:
        (tmp / "old.geojson").write_text("{}")
    with atomic_dir(target) as tmp:
        (tmp / "new.geojson").write_text("{}")
    assert _listing(target) == ["new.geojson"]
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "half.geojson").write_text("{")
        raise RuntimeError("writer failed")
    assert _listing(target) == ["new.geojson"]
    assert _listing(tmp_path) == ["ds.geojson"]


def test_atomic_dir_merge_keeps_other_files_and_is_all_or_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with atomic_dir(out, merge=True) as tmp:
        (tmp / "a.csv").write_text("1")
    with atomic_dir(out, merge=True) as tmp:
        (tmp / "b.csv").write_text("2")
    assert _listing(out) == ["a.csv", "b.csv"]
    (out / "c.csv").mkdir()
    with pytest.raises(IsADirectoryError), atomic_dir(out, merge=True) as tmp:
        (tmp / "a.csv").write_text("changed")
        (tmp / "c.csv").write_text("blocked")
    assert (out / "a.csv").read_text() == "1"  # checked before the first rename
    assert _listing(out) == ["a.csv", "b.csv", "c.csv"]
    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError), atomic_dir(fresh, merge=True) as tmp:
        raise RuntimeError("writer failed")
    assert not fresh.exists()  # the directory this write created goes again


def test_writers_use_the_umask_without_changing_it(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    old = os.umask(0o027)
    try:
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "f.txt").write_text("x")
            os.chmod(tmp / "f.txt", 0o600)  # as a writer that stages through mkstemp would
        # where /proc is missing, a probe file tells the umask
        monkeypatch.setattr("netgis.io.write._PROC_STATUS", str(tmp_path / "no-proc"))
        with atomic_file(tmp_path / "g.txt") as tmp:
            tmp.write_text("y")
        assert os.umask(0o027) == 0o027
    finally:
        os.umask(old)
    mode = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.rglob("*")}
    assert mode == {"d": 0o750, "f.txt": 0o640, "g.txt": 0o640}
    assert not [p for p in tmp_path.rglob(f"{TEMP_PREFIX}*")]
