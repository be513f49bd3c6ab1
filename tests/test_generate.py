"""The synthetic city generator: deterministic, valid in every format, realistic enough."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from netgis.dataset import Dataset
from netgis.engine.analysis import analyze
from netgis.errors import ValidationError
from netgis.generate import BLOCK, generate_city, write_city
from netgis.io import read_dataset, validate_path


@pytest.fixture(scope="module")
def city() -> Dataset:
    return generate_city(premises=12_000, seed=11)


def _assert_same(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(
        pd.DataFrame(a.drop(columns="geometry")).astype(str).reset_index(drop=True),
        pd.DataFrame(b.drop(columns="geometry")).astype(str).reset_index(drop=True),
    )
    assert a.crs == b.crs
    assert bool(np.all(shapely.equals_exact(a.geometry.to_numpy(), b.geometry.to_numpy(), 0.0)))


def test_same_seed_same_city_other_seed_other_city() -> None:
    a = generate_city(premises=3000, seed=4)
    b = generate_city(premises=3000, seed=4)
    for name in ("nodes", "spans", "premises", "areas"):
        _assert_same(a.layers()[name], b.layers()[name])
    c = generate_city(premises=3000, seed=5)
    assert not np.array_equal(shapely.get_coordinates(a.premises.geometry.to_numpy()),
                              shapely.get_coordinates(c.premises.geometry.to_numpy()))
    assert not np.array_equal(shapely.get_coordinates(a.nodes.geometry.to_numpy()),
                              shapely.get_coordinates(c.nodes.geometry.to_numpy()))


@pytest.mark.parametrize("suffix", [".gpkg", ".parquet", ".fgb", ".geojson"])
def test_written_city_validates_without_any_problem(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"city{suffix}"
    summary = write_city(out, premises=2500, seed=2)
    report = validate_path(str(out))
    assert report.errors == []
    assert report.warnings == []  # no snap, orphan node or outside-area warnings either
    assert report.dataset is not None
    assert len(report.dataset.premises) == summary["premises"] == 2500
    assert len(report.dataset.spans) == summary["spans"]
    assert int(report.dataset.premises["units"].sum()) == summary["units"]


@pytest.mark.parametrize(("premises", "spans"), [(800, None), (12_000, None), (3000, 900)])
def test_counts_are_near_the_request(premises: int, spans: int | None) -> None:
    ds = generate_city(premises=premises, spans=spans, seed=1)
    assert len(ds.premises) == premises
    wanted = spans if spans is not None else premises / 10
    assert 0.8 * wanted <= len(ds.spans) <= 1.2 * wanted


def test_plant_has_the_features_of_a_real_one(city: Dataset) -> None:
    nodes, spans, premises, areas = city.nodes, city.spans, city.premises, city.areas
    assert set(nodes["kind"]) >= {"core", "cabinet", "splice", "handhole", "pole"}
    for layer in (nodes, spans):
        assert set(layer["status"]) == {"in_service", "planned", "retired"}
    # a planned span would close a feeder ring: it ends at a core
    kind = nodes.set_index("node_id")["kind"]
    planned = spans[spans["status"] == "planned"]
    assert (kind.reindex(planned["to_node"]).to_numpy() == "core").any()
    # ducts shared by several spans
    assert (spans["duct_id"].value_counts() >= 2).any()
    # every node has a span; both ends of every span lie exactly on their nodes
    ends = pd.concat([spans["from_node"], spans["to_node"]])
    assert set(nodes["node_id"]) == set(ends)
    xy = nodes.set_index("node_id").geometry
    lines = spans.geometry.to_numpy()
    assert np.array_equal(shapely.get_coordinates(shapely.get_point(lines, 0)),
                          shapely.get_coordinates(xy.reindex(spans["from_node"]).to_numpy()))
    assert np.array_equal(shapely.get_coordinates(shapely.get_point(lines, -1)),
                          shapely.get_coordinates(xy.reindex(spans["to_node"]).to_numpy()))
    # attributes filled realistically
    assert (spans["fibers_used"] <= spans["fiber_count"]).all()
    assert spans["fiber_count"].isin([12, 24, 48, 72, 96, 144, 192, 288, 432]).all()
    assert set(spans["placement"]) >= {"aerial", "underground"}
    years = spans["install_year"].dropna()
    assert years.between(1980, 2025).all()
    assert spans.loc[spans["status"] == "planned", "install_year"].isna().all()
    assert spans["owner"].notna().all()
    # premises: mostly single units, some multi-dwelling, all kinds, ~30-40 % connected
    units = premises["units"].to_numpy()
    assert units.min() >= 1 and units.max() <= 40
    assert 0.8 < (units == 1).mean() < 0.97
    assert set(premises["kind"]) == {"residential", "business", "anchor"}
    assert 0.25 <= premises["connected"].mean() <= 0.45
    assert premises["premise_id"].is_unique and premises["address"].notna().all()
    # areas cover every premise
    assert len(areas) >= 2
    hit = areas.sindex.query(premises.geometry, predicate="covered_by")[0]
    assert len(np.unique(hit)) == len(premises)


def test_far_hamlets_lie_beyond_any_span_unless_a_rural_run_serves_them(city: Dataset) -> None:
    tree = shapely.STRtree(city.spans.geometry.to_numpy())
    pts = city.premises.geometry.to_numpy()
    _, dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
    assert 0.02 < (dist > 150).mean() < 0.2  # unserved far hamlets and the unfibered fringe
    road = city.premises["address"].str.extract(r"^(Weiler \d+) ", expand=False)
    far = road.notna().to_numpy()
    # a served hamlet's splitter is named after its road
    served_roads = set(city.nodes.loc[city.nodes["node_id"].str.startswith("nw")
                                      & (city.nodes["kind"] == "splitter"), "name"])
    served = road.isin(served_roads).to_numpy()
    assert served.sum() > 0 and (far & ~served).sum() > 0  # both kinds in this city
    assert (dist[far & ~served] > 150).all()
    assert not city.premises["connected"].to_numpy()[far & ~served].any()
    assert (dist[served] <= 150).all()
    assert city.premises["connected"].to_numpy()[served].any()
    # the run is long: at least 700 m from the plant to the hamlet
    feeders = city.spans[city.spans["span_id"].str.startswith("sw")
                         & ~city.spans["from_node"].str.startswith("nw")]
    assert len(feeders) == len(served_roads)
    assert (feeders.to_crs(feeders.estimate_utm_crs()).length > 600).all()


def test_analysis_of_a_generated_city_is_plausible(city: Dataset) -> None:
    kpis = analyze(city).kpis["network"]
    assert 75 <= kpis["coverage_pct"] < 100  # fringe and hamlets are gaps
    assert 25 <= kpis["take_rate_pct"] <= 50
    assert kpis["span_protected_pct"] > 0  # premises along closed feeder rings
    assert kpis["duct_protected_pct"] <= kpis["span_protected_pct"]
    assert kpis["spof_spans"] > 0
    assert 0 < kpis["utilization_pct"] < 100


def test_chunked_writing_gives_the_in_memory_city(tmp_path: Path) -> None:
    n = 2 * BLOCK + 700  # three random blocks, written one batch per block
    seen: list[int] = []
    out = tmp_path / "city.gpkg"
    write_city(out, premises=n, seed=9, chunk_size=1, progress=seen.append)
    assert seen == [BLOCK, 2 * BLOCK, n]
    memory = generate_city(premises=n, seed=9)
    written = read_dataset(out)
    for name in ("nodes", "spans", "premises", "areas"):
        _assert_same(written.layers()[name], memory.layers()[name])
    raw = pyogrio.read_dataframe(out, layer="premises")
    assert raw["premise_id"].is_unique


def test_other_output_crs_and_bad_arguments(tmp_path: Path) -> None:
    ds = generate_city(premises=400, seed=1, crs=4326)
    lon, lat = shapely.get_coordinates(ds.nodes.geometry.to_numpy()).mean(axis=0)
    assert abs(lon - 8.7) < 0.05 and abs(lat - 50.1) < 0.05
    with pytest.raises(ValidationError, match="premises"):
        generate_city(premises=0)
    with pytest.raises(ValidationError, match="spans"):
        generate_city(premises=100, spans=1)
    with pytest.raises(ValidationError, match="crs"):
        generate_city(premises=100, crs="EPSG:0")
    with pytest.raises(ValidationError, match="unknown format"):
        write_city(tmp_path / "x.gpkg", premises=10, fmt="shp")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netgis.cli", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_cli_generate_writes_and_summarizes(tmp_path: Path) -> None:
    out = tmp_path / "c.parquet"
    res = _cli("generate", "--premises", "1500", "--spans", "200", "--seed", "3",
               "--out", str(out))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["premises"] == 1500 and summary["format"] == "parquet"
    assert summary["spans"] == len(gpd.read_parquet(out / "spans.parquet"))
    assert summary["streets"] == len(gpd.read_parquet(out / "streets.parquet"))
    assert sorted(p.name for p in out.iterdir()) == [
        "areas.parquet", "nodes.parquet", "premises.parquet", "spans.parquet",
        "streets.parquet"]
    assert "Traceback" not in res.stderr and res.stderr == ""  # no progress bar off a TTY


def test_cli_generate_rejects_bad_input(tmp_path: Path) -> None:
    res = _cli("generate", "--premises", "0", "--out", str(tmp_path / "c.gpkg"))
    assert res.returncode == 2
    assert "premises" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "c.gpkg").exists()
    res = _cli("generate", "--out", str(tmp_path / "c.gpkg"))  # --premises missing
    assert res.returncode == 2
    assert not list(tmp_path.iterdir())


def test_committed_sample_is_what_its_readme_command_makes() -> None:
    # data/README.md: netgis generate --premises 4000 --seed 6 --strands --out data/sample.gpkg
    sample = Path(__file__).parents[1] / "data" / "sample.gpkg"
    committed = read_dataset(sample)
    assert committed.warnings == []
    fresh = generate_city(premises=4000, seed=6, strands=True)
    for name in ("nodes", "spans", "premises", "areas"):
        _assert_same(committed.layers()[name], fresh.layers()[name])
    assert committed.streets is not None and fresh.streets is not None
    _assert_same(committed.streets, fresh.streets)
    assert sorted(committed.strands) == sorted(fresh.strands)
    for name, frame in fresh.strands.items():
        got = committed.strands[name]
        assert len(got) == len(frame), name
        for col in frame.columns:
            assert [None if pd.isna(v) else v for v in got[col].tolist()] == \
                [None if pd.isna(v) else v for v in frame[col].tolist()], (name, col)
