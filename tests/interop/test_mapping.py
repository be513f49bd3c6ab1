"""Mapped import of GIS layers (netgis import SOURCE --mapping): the two example mappings
give back the plant their sources were made from, snapping finds and makes nodes, and
every problem names the source layer, the source feature and the source field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from netgis.errors import ValidationError
from netgis.interop.mapping import import_mapped, parse_mapping
from netgis.io import read_dataset
from tests.interop.helpers import MAPPINGS, ROOT, netgis

SOURCES = MAPPINGS / "sources"
SAMPLE = ROOT / "data" / "sample.gpkg"


def plain(values: pd.Series) -> list[object]:
    return [None if pd.isna(v) else v for v in values]


@pytest.fixture(scope="module")
def sample() -> dict[str, gpd.GeoDataFrame]:
    return {n: gpd.read_file(SAMPLE, layer=n) for n in ("nodes", "spans", "premises")}


def test_utility_shapefiles_map_back_to_the_plant_they_came_from(
        sample: dict[str, gpd.GeoDataFrame], tmp_path: Path) -> None:
    run = netgis("import", SOURCES / "utility", "--mapping",
                 MAPPINGS / "utility-shapefile.toml", "--out", tmp_path / "u.gpkg")
    assert run.returncode == 0, run.stderr
    assert "error" not in run.stderr
    ds = read_dataset(tmp_path / "u.gpkg")
    assert json.loads(run.stdout)["spans"] == len(ds.spans) > 100
    # STRUCT_ID is the sample's node_id in upper case
    nodes = ds.nodes.set_index("node_id").sort_index()
    orig = sample["nodes"].assign(node_id=sample["nodes"]["node_id"].str.upper())
    orig = orig.set_index("node_id").loc[nodes.index]
    for field in ("kind", "status", "name", "split_ratio"):
        assert plain(nodes[field]) == plain(orig[field]), field
    assert set(nodes["kind"]) >= {"core", "cabinet", "splitter", "splice", "handhole", "pole"}
    spans = ds.spans.set_index("span_id").sort_index()
    orig = sample["spans"].assign(span_id=sample["spans"]["span_id"].str.upper())
    orig = orig.set_index("span_id").loc[spans.index]
    assert plain(spans["from_node"]) == plain(orig["from_node"].str.upper())
    assert plain(spans["to_node"]) == plain(orig["to_node"].str.upper())
    for field in ("fiber_count", "status", "placement", "owner", "install_year"):
        assert plain(spans[field]) == plain(orig[field]), field
    assert spans.geometry.geom_equals_exact(orig.geometry, tolerance=1e-6).all()


def test_csv_routes_snap_to_sites_and_make_the_missing_handholes(
        sample: dict[str, gpd.GeoDataFrame], tmp_path: Path) -> None:
    run = netgis("import", SOURCES / "csv", "--mapping", MAPPINGS / "csv-wkt-lonlat.toml",
                 "--out", tmp_path / "c.gpkg")
    assert run.returncode == 0, run.stderr
    ds = read_dataset(tmp_path / "c.gpkg")
    sites = set(pd.read_csv(SOURCES / "csv" / "sites.csv")["site"])
    spans = ds.spans.set_index("span_id").sort_index()
    orig = sample["spans"].set_index("span_id").loc[spans.index]
    made: dict[str, str] = {}
    for end in ("from_node", "to_node"):
        for got, was in zip(spans[end], orig[end], strict=True):
            if was in sites:
                assert got == was
            else:
                # one new handhole per node the CSV left out, the same for every span there
                assert got.startswith("hh-")
                assert made.setdefault(was, got) == got
    assert len(set(made.values())) == len(made)
    nodes = ds.nodes.set_index("node_id")
    new = nodes.loc[sorted(set(made.values()))]
    assert set(new["kind"]) == {"handhole"}
    assert len(nodes) == len(sites) + len(made)
    # each new node lies where the node it stands for was
    where = sample["nodes"].set_index("node_id").geometry.to_crs(4326)
    was = gpd.GeoSeries([where[k] for k in made], crs=4326).to_crs(32632)
    got = gpd.GeoSeries([nodes.geometry[v] for v in made.values()], crs=4326).to_crs(32632)
    assert float(was.distance(got).max()) < 0.05
    assert plain(spans["status"]) == plain(orig["status"])
    assert set(spans["placement"]) == {"underground"}
    homes = pd.read_csv(SOURCES / "csv" / "homes.csv").set_index("home")
    premises = ds.premises.set_index("premise_id").loc[homes.index]
    assert list(premises["kind"] == "business") == list(homes["business"] == "Y")
    assert list(premises["units"]) == list(homes["units"])


def _csv_copy(tmp_path: Path) -> Path:
    src = tmp_path / "csv"
    shutil.copytree(SOURCES / "csv", src)
    return src


def _edit(path: Path, row_id: str, column: str, value: str) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[frame.iloc[:, 0] == row_id, column] = value
    frame.to_csv(path, index=False)


def test_errors_name_the_source_layer_feature_and_field(tmp_path: Path) -> None:
    src = _csv_copy(tmp_path)
    _edit(src / "routes.csv", "s230", "condition", "unknown")
    _edit(src / "routes.csv", "s231", "WKT", "LINESTRING (8.69 oops)")
    _edit(src / "sites.csv", "n259", "lon", "east")
    out = tmp_path / "out.gpkg"
    run = netgis("import", src, "--mapping", MAPPINGS / "csv-wkt-lonlat.toml", "--out", out)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.splitlines()
    for where, says in (("routes id=s230 field=condition", "'unknown' is not in the map"),
                        ("routes id=s231 field=WKT", "not WKT"),
                        ("sites id=n259 field=lon,lat", "not a number")):
        assert any(where in line and says in line for line in lines), run.stderr
    assert not out.exists()


def test_contract_errors_are_named_in_source_terms_too(tmp_path: Path) -> None:
    src = _csv_copy(tmp_path)
    _edit(src / "routes.csv", "s230", "fibres", "-12")
    _edit(src / "sites.csv", "n278", "site_type", "manhole")
    with pytest.raises(ValidationError) as caught:
        import_mapped([src], MAPPINGS / "csv-wkt-lonlat.toml")
    named = {(p.layer, p.id, p.field) for p in caught.value.problems}
    assert {("routes", "s230", "fibres"), ("sites", "n278", "site_type")} <= named


def test_mapping_file_mistakes_are_named() -> None:
    cases = {
        '[spans]\nlayer = "x"\ncolour = 1': "spans.colour",
        '[spans]\nlayer = "x"\nfields = { length = "LEN" }': "spans",
        '[spans]\nlayer = "x"\nfields = { owner = { field = "A", value = "B" } }':
            "spans.fields.owner",
        '[spans]\nlayer = "x"\nfields = { owner = { field = "A", regex = "(" } }':
            "spans.fields.owner",
        '[spans]\nlayer = "x"\ncrs = "EPSG:999999"': "spans",
        '[nodes]\nlayer = "x"': "spans",
        "[spans\n": None,
    }
    for text, field in cases.items():
        with pytest.raises(ValidationError) as caught:
            parse_mapping(text)
        fields = [p.field or "" for p in caught.value.problems]
        assert all(p.layer == "mapping" for p in caught.value.problems)
        if field is not None:
            assert any(f.startswith(field) for f in fields), (text, fields)


def test_missing_source_layer_or_field_is_named(tmp_path: Path) -> None:
    mapping = (MAPPINGS / "csv-wkt-lonlat.toml").read_text()
    (tmp_path / "a.toml").write_text(mapping.replace('layer = "routes"', 'layer = "lines"'))
    (tmp_path / "b.toml").write_text(mapping.replace('fiber_count = "fibres"',
                                                     'fiber_count = "FIBRES"'))
    run = netgis("import", SOURCES / "csv", "--mapping", tmp_path / "a.toml",
                 "--out", tmp_path / "a.gpkg")
    assert run.returncode == 2 and "lines" in run.stderr and "routes" in run.stderr
    run = netgis("import", SOURCES / "csv", "--mapping", tmp_path / "b.toml",
                 "--out", tmp_path / "b.gpkg")
    assert run.returncode == 2 and "routes field=FIBRES" in run.stderr, run.stderr
    assert not list(tmp_path.glob("*.gpkg"))


def test_templates_defaults_and_regex_on_a_geojson_source(tmp_path: Path) -> None:
    lines = gpd.GeoDataFrame(
        {"SIZE": ["144F", "48 F", None], "KIND": ["UG", "??", "AE"], "OP": ["x", "y", None]},
        geometry=gpd.GeoSeries.from_wkt(["LINESTRING (8.7 50.1, 8.701 50.1)",
                                         "LINESTRING (8.701 50.1, 8.701 50.101)",
                                         "LINESTRING (8.701 50.101, 8.7 50.1)"]), crs=4326)
    lines.to_file(tmp_path / "cables.geojson")
    (tmp_path / "m.toml").write_text('''
[spans]
layer = "cables"
[spans.fields]
span_id = { template = "C{fid}-{OP}" }
fiber_count = { field = "SIZE", regex = '^(\\d+)\\s*F$' }
placement = { field = "KIND", map = { ug = "underground", AE = "aerial" }, default = "other" }
owner = { value = "Stadtwerke" }
[spans.snap]
tolerance_m = 1
''')
    ds = import_mapped([tmp_path / "cables.geojson"], tmp_path / "m.toml")
    spans = ds.spans.set_index("span_id").sort_index()
    assert list(spans.index) == ["C0-x", "C1-y", "C2-"]  # a missing value leaves no text
    assert plain(spans["fiber_count"]) == [144, 48, None]
    assert list(spans["placement"]) == ["underground", "other", "aerial"]
    assert set(spans["owner"]) == {"Stadtwerke"}
    # three ends meet pairwise: a triangle of three new splices
    assert sorted(ds.nodes["node_id"]) == ["snap-1", "snap-2", "snap-3"]
    assert set(ds.nodes["kind"]) == {"splice"}
    assert np.all(spans["from_node"] != spans["to_node"])


@pytest.mark.parametrize(("name", "driver"), [("plant.kml", "KML"), ("plant.gpkg", "GPKG")])
def test_kml_and_geopackage_sources(name: str, driver: str, tmp_path: Path) -> None:
    lines = gpd.GeoDataFrame(
        {"Name": ["c1", "c2"], "SIZE": ["144F", "48F"]},
        geometry=gpd.GeoSeries.from_wkt(["LINESTRING (8.7 50.1, 8.701 50.1)",
                                         "LINESTRING (8.701 50.1, 8.701 50.101)"]), crs=4326)
    lines.to_file(tmp_path / name, layer="cables", driver=driver)
    mapping = parse_mapping('''
[spans]
layer = "cables"
fields = { span_id = "Name", fiber_count = { field = "SIZE", regex = '^(\\d+)F$' } }
snap = { tolerance_m = 1 }
''')
    ds = import_mapped([tmp_path / name], mapping)
    spans = ds.spans.set_index("span_id").sort_index()
    assert plain(spans["fiber_count"]) == [144, 48]
    # the two cables meet: three nodes, the middle one shared
    assert spans.at["c1", "to_node"] == spans.at["c2", "from_node"]
    assert len(ds.nodes) == 3


def _routes(tmp_path: Path, values: list[str]) -> Path:
    lines = gpd.GeoDataFrame(
        {"route": values},
        geometry=gpd.GeoSeries.from_wkt([f"LINESTRING (8.7 50.{i}, 8.701 50.{i})"
                                         for i in range(1, len(values) + 1)]), crs=4326)
    lines.to_file(tmp_path / "cables.geojson")
    return tmp_path / "cables.geojson"


@pytest.mark.timeout(120)  # a backtracking engine would hang here for minutes
def test_a_backtracking_pattern_runs_in_linear_time(tmp_path: Path) -> None:
    # (a|aa)+$ over 'a' * 45 + '!' takes minutes with a backtracking engine (and holds the
    # GIL all along); RE2 answers at once: the long text does not match, the short one does
    source = _routes(tmp_path, ["a" * 45 + "!", "aaaa"])
    mapping = parse_mapping('''
[spans]
layer = "cables"
fields = { span_id = { field = "route", regex = "(a|aa)+$", default = "none" } }
snap = { tolerance_m = 1 }
''')
    ds = import_mapped([source], mapping)
    assert sorted(ds.spans["span_id"]) == ["a", "none"]
    # without a default the text that does not match is an error naming the feature
    mapping = parse_mapping('''
[spans]
layer = "cables"
fields = { span_id = { field = "route", regex = "^(a|aa)+$" }, owner = "route" }
snap = { tolerance_m = 1 }
''')
    with pytest.raises(ValidationError) as err:
        import_mapped([source], mapping)
    assert [(p.layer, p.id, p.field) for p in err.value.problems] == [
        ("cables", "a" * 45 + "!", "route")]


@pytest.mark.parametrize(("pattern", "what"), [(r"(a)\1", "backreference"),
                                               ("a(?=b)", "lookaround"),
                                               ("(?<!x)a", "lookaround")])
def test_patterns_re2_cannot_run_are_refused_naming_the_field(pattern: str, what: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_mapping(f'''
[spans]
layer = "cables"
fields = {{ span_id = {{ field = "route", regex = '{pattern}' }} }}
''')
    (problem,) = err.value.problems
    assert problem.layer == "mapping"
    assert problem.field == "spans.fields.span_id.regex"
    assert "RE2" in problem.reason and what in problem.reason, problem.reason
