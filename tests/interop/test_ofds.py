"""OFDS in and out (docs/spec.md §3.8): the publication formats, the mapping of fields and
codes, bad input (exit 2, nothing written, or left out with --skip-invalid), the
reference validator on exports, and the round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from netgis.geodesy import WGS84, transform_geoms
from netgis.interop.ofds import read_ofds
from netgis.io import read_dataset
from tests.helpers import EXAMPLES_DIR
from tests.interop.helpers import OFDS_DATA, ROOT, netgis, ofds_report

SAMPLE = ROOT / "data" / "sample.gpkg"


def plain(values: pd.Series) -> dict[str, object]:
    """A column as a dict, None for every kind of missing value."""
    return {str(k): None if pd.isna(v) else v for k, v in values.items()}


@pytest.mark.parametrize("sources", [
    ["network.json"],
    ["nodes.geojson", "spans.geojson"],
    ["spans.geojson", "nodes.geojson"],
    ["spans_untyped.geojson", "nodes_untyped.geojson"],
], ids=["json-package", "geojson", "geojson-reversed", "geojson-by-geometry"])
def test_every_publication_format_maps_the_same(sources: list[str]) -> None:
    ds = read_ofds([OFDS_DATA / s for s in sources], cores=["A"]).dataset
    nodes = ds.nodes.set_index("node_id")
    spans = ds.spans.set_index("span_id")
    assert nodes["kind"].to_dict() == {"A": "core", "B": "other", "C": "other", "D": "other"}
    # operational, underConstruction (planned: not lit), decommissioned
    assert nodes["status"].to_dict() == {"A": "in_service", "B": "in_service",
                                         "C": "planned", "D": "retired"}
    assert plain(nodes["name"]) == {"A": "Exchange Mitte", "B": "Cabinet Nord",
                                       "C": "Cabinet Ost", "D": None}
    assert spans[["from_node", "to_node"]].to_dict("index") == {
        "S1": {"from_node": "A", "to_node": "B"}, "S2": {"from_node": "B", "to_node": "C"},
        "S3": {"from_node": "C", "to_node": "D"}, "S4": {"from_node": "D", "to_node": "A"}}
    assert spans["status"].to_dict() == {"S1": "in_service", "S2": "in_service",
                                         "S3": "planned", "S4": "retired"}
    assert plain(spans["fiber_count"]) == {"S1": 144, "S2": 48, "S3": None, "S4": 12}
    # belowGround, aboveGround, both, none
    assert plain(spans["placement"]) == {"S1": "underground", "S2": "aerial",
                                            "S3": "other", "S4": None}
    assert spans.loc["S2"].geometry.coords[1] == (8.7025, 50.101)
    assert ds.crs == WGS84
    assert not [w for w in ds.warnings if w.field == "kind"]


def test_cores_light_the_network_and_without_them_nothing_is(tmp_path: Path) -> None:
    run = netgis("import", "ofds", OFDS_DATA / "network.json", "--out", tmp_path / "n.gpkg")
    assert run.returncode == 0, run.stderr
    # said once, the OFDS way (naming --cores), not a second time by the validation
    assert run.stderr.count("nothing is lit") == 1 and "--cores" in run.stderr
    summary = json.loads(run.stdout)
    assert (summary["nodes"], summary["spans"], summary["skipped"]) == (4, 4, 0)
    assert "core" not in set(read_dataset(tmp_path / "n.gpkg").nodes["kind"])
    run = netgis("import", "ofds", OFDS_DATA / "nodes.geojson", OFDS_DATA / "spans.geojson",
                 "--cores", "A", "--out", tmp_path / "c.gpkg")
    assert run.returncode == 0, run.stderr
    assert "nothing is lit" not in run.stderr
    analyzed = netgis("analyze", tmp_path / "c.gpkg", "--out", tmp_path / "a")
    assert analyzed.returncode == 0, analyzed.stderr
    lit = pd.read_csv(tmp_path / "a" / "spans.csv").set_index("span_id")["lit"].to_dict()
    # S2 is in service but ends at C, which is under construction: only S1 is in G
    assert lit == {"S1": True, "S2": False, "S3": False, "S4": False}
    unknown = netgis("import", "ofds", OFDS_DATA / "network.json", "--cores", "A,Q",
                     "--out", tmp_path / "q.gpkg")
    assert unknown.returncode == 2 and "id=Q" in unknown.stderr
    assert not (tmp_path / "q.gpkg").exists()


def test_status_outside_the_codelist_is_in_service_with_a_warning() -> None:
    ds = read_ofds([OFDS_DATA / "unknown_status.json"], cores=["A"]).dataset
    assert ds.spans.set_index("span_id").at["S1", "status"] == "in_service"
    assert ds.nodes.set_index("node_id").at["B", "status"] == "in_service"
    warned = {(w.layer, w.id, w.field) for w in ds.warnings}
    assert {("spans", "S1", "status"), ("nodes", "B", "status")} <= warned


def test_missing_optional_fields_and_route() -> None:
    ds = read_ofds([OFDS_DATA / "missing_optional.json"], cores=["A"]).dataset
    spans = ds.spans.set_index("span_id")
    assert set(ds.nodes["status"]) == set(spans["status"]) == {"in_service"}
    assert spans["fiber_count"].isna().all() and spans["placement"].isna().all()
    # S2 has no route: a straight line between its nodes stands in, with a warning
    assert list(spans.at["S2", "geometry"].coords) == [(8.702, 50.1), (8.702, 50.102)]
    assert any(w.id == "S2" and w.field == "route" for w in ds.warnings)


def test_a_multilinestring_that_is_one_line_is_merged() -> None:
    ds = read_ofds([OFDS_DATA / "multilinestring_joined.json"], cores=["A"]).dataset
    line = ds.spans.set_index("span_id").at["S1", "geometry"]
    assert line.geom_type == "LineString"
    assert list(line.coords) == [(8.7, 50.1), (8.701, 50.1), (8.702, 50.1)]


BAD = [  # file, layer, OFDS id, what the message says
    ("self_loop.json", "spans", "S2", "self-loop"),
    ("duplicate_id.json", "nodes", "B", "duplicate id"),
    ("missing_node.json", "spans", "S3", "'Z'"),
    ("bad_geometry.json", "nodes", "D", "not a GeoJSON Point"),
    ("multilinestring.json", "spans", "S2", "do not join into one line"),
]


@pytest.mark.parametrize(("name", "layer", "fid", "says"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_exits_2_naming_the_ofds_id_and_writes_nothing(
        name: str, layer: str, fid: str, says: str, tmp_path: Path) -> None:
    out = tmp_path / "out.gpkg"
    run = netgis("import", "ofds", OFDS_DATA / name, "--cores", "A", "--out", out)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines()
             if f"{layer} id={fid} " in line and not line.startswith("warning:")]
    assert lines and says in lines[0], run.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("name", "layer", "fid", "says"), BAD, ids=[b[0] for b in BAD])
def test_skip_invalid_leaves_out_and_lists_the_bad_features(
        name: str, layer: str, fid: str, says: str) -> None:
    result = read_ofds([OFDS_DATA / name], cores=["A"], skip_invalid=True)
    assert any(p.layer == layer and p.id == fid and says in p.reason for p in result.skipped)
    ds = result.dataset
    kept = ds.nodes["node_id"] if layer == "nodes" else ds.spans["span_id"]
    assert fid not in set(kept)
    # the rest is there: every feature not listed
    left_out = {(p.layer, p.id) for p in result.skipped}
    assert len(ds.nodes) == 4 - sum(1 for lay, _ in left_out if lay == "nodes")
    assert len(ds.spans) == 4 - sum(1 for lay, _ in left_out if lay == "spans")


def test_skip_invalid_on_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "out.gpkg"
    run = netgis("import", "ofds", OFDS_DATA / "duplicate_id.json", "--cores", "A",
                 "--skip-invalid", "--out", out)
    assert run.returncode == 0, run.stderr
    skipped = sorted(line for line in run.stderr.splitlines() if line.startswith("skipped: "))
    # both nodes B are left out, and so are the spans that end at B
    assert [line.split(":")[1].strip() for line in skipped] == [
        "nodes id=B field=id", "spans id=S1 field=to_node", "spans id=S2 field=from_node"]
    ds = read_dataset(out)
    assert sorted(ds.nodes["node_id"]) == ["A", "C", "D"]
    assert sorted(ds.spans["span_id"]) == ["S3", "S4"]
    assert json.loads(run.stdout)["skipped"] == 3


def test_not_ofds_is_an_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"type": "Topology"}')
    (tmp_path / "y.json").write_text("{not json")
    for name in ("x.json", "y.json"):
        run = netgis("import", "ofds", tmp_path / name, "--out", tmp_path / "o.gpkg")
        assert run.returncode == 2 and name in run.stderr, run.stderr
    assert not (tmp_path / "o.gpkg").exists()


def _export(dataset: Path, out: Path) -> None:
    run = netgis("export", "ofds", dataset, "--out", out)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["nodes.geojson", "spans.geojson"]


@pytest.fixture(scope="module")
def sample_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ofds") / "sample"
    _export(SAMPLE, out)
    return out


def test_reference_validator_accepts_the_export(sample_export: Path) -> None:
    report = ofds_report(sample_export / "nodes.geojson", sample_export / "spans.geojson")
    ds = read_dataset(SAMPLE)
    network = report["data"]["networks"]
    assert len(network) == 1
    assert len(network[0]["nodes"]) == len(ds.nodes)
    assert len(network[0]["spans"]) == len(ds.spans)
    assert report["schema"] == []
    assert report["checks"] == []
    assert report["additional"] == {}
    assert report["inconsistent"] == []


def test_reference_validator_sees_what_breaks_ofds(tmp_path: Path) -> None:
    """The validator call above is not blind: a broken copy of an export fails it."""
    netgis("export", "ofds", EXAMPLES_DIR / "ring_spur" / "dataset.gpkg", "--out", tmp_path)
    clean = ofds_report(tmp_path / "nodes.geojson", tmp_path / "spans.geojson")
    assert (clean["schema"], clean["checks"]) == ([], [])
    spans = json.loads((tmp_path / "spans.geojson").read_text())
    spans["features"][0]["properties"]["status"] = "in_service"   # netgis's word, not OFDS's
    spans["features"][1]["properties"]["end"] = {"id": "nowhere"}
    spans["features"][2]["properties"]["id"] = spans["features"][3]["properties"]["id"]
    (tmp_path / "spans.geojson").write_text(json.dumps(spans))
    report = ofds_report(tmp_path / "nodes.geojson", tmp_path / "spans.geojson")
    assert any("in_service" in m for m in report["schema"])
    assert {"span_end_node_not_found", "duplicate_span_id"} <= {c["type"]
                                                                for c in report["checks"]}


def test_import_of_an_export_gives_back_the_same_nodes_and_spans(sample_export: Path,
                                                                 tmp_path: Path) -> None:
    # the spans file first: the order does not matter
    run = netgis("import", "ofds", sample_export / "spans.geojson",
                 sample_export / "nodes.geojson", "--out", tmp_path / "back.gpkg")
    assert run.returncode == 0, run.stderr
    before, after = read_dataset(SAMPLE), read_dataset(tmp_path / "back.gpkg")
    for layer, id_field, fields in (("nodes", "node_id", ["name", "status"]),
                                    ("spans", "span_id", ["from_node", "to_node", "status",
                                                          "fiber_count"])):
        a = getattr(before, layer).set_index(id_field).sort_index()
        b = getattr(after, layer).set_index(id_field).sort_index()
        assert list(a.index) == list(b.index)
        for name in fields:
            assert plain(a[name]) == plain(b[name]), name
        # geometry: the same vertices in WGS84 (OFDS coordinates are CRS84)
        xa = shapely.get_coordinates(transform_geoms(a.geometry.to_numpy(), a.crs, WGS84))
        xb = shapely.get_coordinates(transform_geoms(b.geometry.to_numpy(), b.crs, WGS84))
        assert xa.shape == xb.shape
        np.testing.assert_allclose(xa, xb, rtol=0, atol=1e-12)
    # and the statuses that OFDS spells differently did travel
    assert set(after.spans["status"]) == {"in_service", "planned", "retired"}


def test_export_replaces_its_two_files_and_keeps_others(tmp_path: Path) -> None:
    out = tmp_path / "ofds"
    out.mkdir()
    (out / "README.txt").write_text("mine")
    (out / "nodes.geojson").write_text("old")
    run = netgis("export", "ofds", EXAMPLES_DIR / "ring_spur" / "dataset.gpkg", "--out", out)
    assert run.returncode == 0, run.stderr
    assert (out / "README.txt").read_text() == "mine"
    assert json.loads((out / "nodes.geojson").read_text())["type"] == "FeatureCollection"
    bad = netgis("export", "ofds", tmp_path / "none.gpkg", "--out", tmp_path / "o2")
    assert bad.returncode == 2 and not (tmp_path / "o2").exists()


def test_a_deeply_nested_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text('{"networks": ' + "[" * 100_000 + "]" * 100_000 + "}")
    run = netgis("import", "ofds", deep, "--out", tmp_path / "o.gpkg")
    assert run.returncode == 2, run.stderr
    assert "deep.json" in run.stderr and "nested" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and "RecursionError" not in run.stderr
    assert not (tmp_path / "o.gpkg").exists()


def test_the_folder_an_export_wrote_imports_whole(sample_export: Path, tmp_path: Path) -> None:
    run = netgis("import", "ofds", sample_export, "--out", tmp_path / "back.gpkg")
    assert run.returncode == 0, run.stderr
    before, after = read_dataset(SAMPLE), read_dataset(tmp_path / "back.gpkg")
    assert sorted(after.nodes["node_id"]) == sorted(before.nodes["node_id"])
    a = before.spans.set_index("span_id").sort_index()
    b = after.spans.set_index("span_id").sort_index()
    assert list(a.index) == list(b.index)
    assert plain(a["from_node"]) == plain(b["from_node"])
    assert plain(a["to_node"]) == plain(b["to_node"])
    # a folder with a JSON network package in it reads the same
    folder = tmp_path / "package"
    folder.mkdir()
    (folder / "network.json").write_bytes((OFDS_DATA / "network.json").read_bytes())
    from_folder = read_ofds([folder]).dataset
    from_file = read_ofds([OFDS_DATA / "network.json"]).dataset
    assert sorted(from_folder.spans["span_id"]) == sorted(from_file.spans["span_id"])
    # a folder with nothing OFDS could be in is named
    (tmp_path / "empty").mkdir()
    run = netgis("import", "ofds", tmp_path / "empty", "--out", tmp_path / "e.gpkg")
    assert run.returncode == 2 and "empty" in run.stderr, run.stderr


@pytest.mark.parametrize("half", ["nodes", "spans"])
def test_one_half_of_the_geojson_publication_is_an_error(sample_export: Path, half: str,
                                                         tmp_path: Path) -> None:
    missing = "spans" if half == "nodes" else "nodes"
    run = netgis("import", "ofds", sample_export / f"{half}.geojson", "--out",
                 tmp_path / "o.gpkg")
    assert run.returncode == 2, run.stderr
    assert f"{missing}.geojson" in run.stderr and f"no {missing}" in run.stderr, run.stderr
    assert not (tmp_path / "o.gpkg").exists()
