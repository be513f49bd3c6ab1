"""Gap roll-ups, clusters, build estimates and the planned-route sketch.

The hand-made plant (EPSG:32632 near Frankfurt, drawn meters; the geodesic is
about 0.04 % longer there):

```
 y=2000          r1
 y=100      p1
 y=0   C ========s1======== A     q1 --- q2 --- q3        (x=1500, 1600, 1700)
      x=0                 x=1000
```
p1 is passed (100 m from s1). q1..q3 (units 1, 2, 3) are one cluster with
link 250 m; r1 is a cluster alone.
- cluster q: root q1 (500 m from A, the nearest point of s1). The spanning tree
  q1-q2-q3 is 200 m; q3 is a leaf 100 m from q2 (< 0.9 * 150) so it is left to
  a drop: 100 m of distribution. Route 600 m, 6 units, 85/m: cost 51,000,
  8,500 per unit, 10 units per km.
- cluster r: 2,000 m straight down to s1: cost 170,000 for 1 unit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely import LineString, Point, box

from netgis.dataset import Dataset, empty_layer
from netgis.engine.analysis import analyze
from netgis.errors import ValidationError
from netgis.io import write_dataset
from netgis.products.gaps import (
    GapParams,
    apply_plan,
    gap_analysis,
    h3_cells,
    plan_builds,
    rollup_h3,
    write_gaps,
)

X0, Y0 = 478000.0, 5551000.0
UTM = 32632
GEO = 1 / 0.99963  # geodesic meters per drawn meter here, roughly


def pt(x: float, y: float) -> Point:
    return Point(X0 + x, Y0 + y)


def hand_dataset(premises: list[tuple[str, float, float, int]] | None = None,
                 areas: bool = True) -> Dataset:
    nodes = gpd.GeoDataFrame({"node_id": ["C", "A"], "kind": ["core", "cabinet"],
                              "status": ["in_service"] * 2, "name": [None, None]},
                             geometry=[pt(0, 0), pt(1000, 0)], crs=UTM)
    spans = empty_layer("spans", UTM)
    spans = gpd.GeoDataFrame(
        {**{c: [None] for c in spans.columns if c != "geometry"},
         "span_id": ["s1"], "from_node": ["C"], "to_node": ["A"], "status": ["in_service"]},
        geometry=[LineString([pt(0, 0), pt(1000, 0)])], crs=UTM)
    rows = premises if premises is not None else [
        ("p1", 500, 100, 1), ("q1", 1500, 0, 1), ("q2", 1600, 0, 2), ("q3", 1700, 0, 3),
        ("r1", 500, 2000, 1)]
    prem = gpd.GeoDataFrame(
        {"premise_id": [r[0] for r in rows], "units": [r[3] for r in rows],
         "kind": ["residential"] * len(rows), "connected": [False] * len(rows),
         "address": [None] * len(rows), "location_id": [None] * len(rows)},
        geometry=[pt(r[1], r[2]) for r in rows], crs=UTM)
    area_layer = empty_layer("areas", UTM)
    if areas:
        area_layer = gpd.GeoDataFrame({"area_id": ["west"], "name": ["West"]},
                                      geometry=[box(X0 - 100, Y0 - 100, X0 + 1500, Y0 + 2100)],
                                      crs=UTM)
    return Dataset(nodes=nodes, spans=spans, premises=prem, areas=area_layer)


def test_ranked_build_list_by_hand() -> None:
    gaps = gap_analysis(analyze(hand_dataset()))
    c = gaps.plan.clusters.set_index("cluster_id")
    assert gaps.plan.clusters["cluster_id"].tolist() == ["gap-q1", "gap-r1"]
    assert gaps.plan.clusters["rank"].tolist() == [1, 2]
    q, r = c.loc["gap-q1"], c.loc["gap-r1"]
    assert (q["premises"], q["units"]) == (3, 6)
    assert q["join_span_id"] == "s1"
    assert q["join_m"] == pytest.approx(500 * GEO, rel=1e-3)
    assert q["distribution_m"] == pytest.approx(100 * GEO, rel=1e-3)
    assert q["route_m"] == pytest.approx(600 * GEO, rel=1e-3)
    assert q["cost"] == pytest.approx(51000 * GEO, rel=1e-3)
    assert q["cost_per_unit"] == pytest.approx(8500 * GEO, rel=1e-3)
    assert q["units_per_km"] == pytest.approx(10 / GEO, rel=1e-3)
    assert q["min_distance_m"] == pytest.approx(500 * GEO, rel=1e-3)
    assert q["median_distance_m"] == pytest.approx(600 * GEO, rel=1e-3)
    assert np.isnan(q["join_road_m"])
    assert r["route_m"] == pytest.approx(2000 * GEO, rel=1e-3)
    assert r["cost_per_unit"] == pytest.approx(170000 * GEO, rel=1e-3)
    cluster_of = dict(gaps.plan.premise_cluster.itertuples(index=False))
    assert cluster_of == {"q1": "gap-q1", "q2": "gap-q1", "q3": "gap-q1", "r1": "gap-r1"}


def test_sketch_shape_and_re_analysis_passes_everything() -> None:
    ds = hand_dataset()
    plan = gap_analysis(analyze(ds)).plan
    # q3 is left to a drop: nodes at q1, q2 and r1 only
    assert sorted(plan.nodes["node_id"]) == ["plan-n-q1", "plan-n-q2", "plan-n-r1"]
    spans = plan.spans.set_index("span_id")
    assert sorted(spans.index) == ["plan-s-q1", "plan-s-q2", "plan-s-r1"]
    assert (spans.loc["plan-s-q2", "from_node"], spans.loc["plan-s-q2", "to_node"]) == (
        "plan-n-q2", "plan-n-q1")
    assert spans.loc["plan-s-q1", "to_node"] == "A"   # joined at the span end nearest q1
    assert spans.loc["plan-s-r1", "to_node"] in ("C", "A")
    assert set(plan.spans["status"]) == {"planned"}
    assert set(plan.spans["placement"]) == {"underground"}
    before = analyze(ds)
    assert before.kpis["network"]["units_passed"] == 1
    # planned status lights nothing; in service it passes every gap premise
    assert analyze(apply_plan(ds, plan, status="planned")).kpis["network"]["units_passed"] == 1
    after = analyze(apply_plan(ds, plan))
    assert bool(after.premises["passed"].all())
    assert after.kpis["network"]["coverage_pct"] == 100.0


def test_h3_and_area_rollups_by_hand() -> None:
    gaps = gap_analysis(analyze(hand_dataset()), GapParams(h3_res=9))
    hexes = gaps.hexes
    assert int(hexes["premises"].sum()) == 4 and int(hexes["units"].sum()) == 7
    assert set(hexes["h3_cell"]) <= set(h3_cells(hand_dataset().premises.geometry, res=9))
    assert all(len(c) == 15 and c[1] == "9" for c in hexes["h3_cell"])  # resolution 9
    assert hexes.crs.to_epsg() == 4326
    assert (hexes.geometry.geom_type == "Polygon").all()
    a = gaps.areas.iloc[0]
    # west covers p1 (passed), q1 (on its boundary) and r1
    assert (a["area_id"], a["premises"], a["units"], a["premises_total"]) == ("west", 2, 2, 3)
    assert a["min_distance_m"] == pytest.approx(500 * GEO, rel=1e-3)
    assert a["median_distance_m"] == pytest.approx(1250 * GEO, rel=1e-3)


def test_resolution_is_checked() -> None:
    with pytest.raises(ValidationError, match="h3_res"):
        rollup_h3(analyze(hand_dataset()).premises, h3_res=16)


def test_road_join_follows_the_roads() -> None:
    ds = hand_dataset([("p1", 500, 100, 1), ("q1", 1500, 0, 1)], areas=False)
    roads = gpd.GeoDataFrame({"name": ["detour"]}, geometry=[LineString(
        [pt(1500, 0), pt(1500, -300), pt(1000, -300), pt(1000, 0)])], crs=UTM)
    result = analyze(ds)
    plan = plan_builds(result.premises, result.spans, result.nodes, roads=roads)
    row = plan.clusters.iloc[0]
    assert row["join_straight_m"] == pytest.approx(500 * GEO, rel=1e-3)
    assert row["join_road_m"] == pytest.approx(1100 * GEO, rel=1e-3)
    assert row["join_m"] == row["join_road_m"]
    line = plan.spans.set_index("span_id").loc["plan-s-q1", "geometry"]
    assert line.length == pytest.approx(1100, abs=0.01)  # drawn along the detour
    assert bool(analyze(apply_plan(ds, plan)).premises["passed"].all())


def test_nothing_lit_gives_unpriced_clusters_and_no_sketch() -> None:
    ds = hand_dataset()
    ds.nodes.loc[ds.nodes["node_id"] == "C", "kind"] = "cabinet"
    gaps = gap_analysis(analyze(ds))
    assert len(gaps.plan.clusters) == 3  # p1 is a gap too, 1,000 m from q1: its own cluster
    assert gaps.plan.clusters["cost"].isna().all()
    assert len(gaps.plan.spans) == 0 and len(gaps.plan.nodes) == 0
    assert gaps.hexes["min_distance_m"].isna().all()


def test_no_gaps() -> None:
    gaps = gap_analysis(analyze(hand_dataset([("p1", 500, 100, 1)])))
    assert len(gaps.hexes) == 0 and len(gaps.plan.clusters) == 0 and len(gaps.plan.spans) == 0


def test_bad_parameters() -> None:
    result = analyze(hand_dataset())
    with pytest.raises(ValidationError, match="link_m"):
        gap_analysis(result, GapParams(link_m=0))
    with pytest.raises(ValidationError, match="placement"):
        gap_analysis(result, GapParams(placement="teleport"))
    with pytest.raises(ValidationError, match="cost_per_m"):
        gap_analysis(result, GapParams(cost_per_m=(("aerial", -1),)))


@st.composite
def random_premises(draw: st.DrawFn) -> list[tuple[str, float, float, int]]:
    n = draw(st.integers(1, 25))
    xs = draw(st.lists(st.floats(-500, 2500), min_size=n, max_size=n))
    ys = draw(st.lists(st.floats(-1500, 1500), min_size=n, max_size=n))
    units = draw(st.lists(st.integers(1, 9), min_size=n, max_size=n))
    return [(f"p{i}", x, y, u) for i, (x, y, u) in enumerate(zip(xs, ys, units, strict=True))]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=random_premises(), link_m=st.sampled_from([50.0, 250.0, 800.0]))
def test_property_units_add_up_and_the_sketch_passes_every_gap(
        rows: list[tuple[str, float, float, int]], link_m: float) -> None:
    ds = hand_dataset(rows, areas=False)
    result = analyze(ds)
    gaps = gap_analysis(result, GapParams(link_m=link_m))
    total = int(ds.premises["units"].sum())
    passed_units = int(result.premises.loc[result.premises["passed"], "units"].sum())
    assert int(gaps.hexes["units"].sum()) + passed_units == total
    assert int(gaps.plan.clusters["units"].sum()) + passed_units == total
    assert int(gaps.plan.clusters["premises"].sum()) == int((~result.premises["passed"]).sum())
    assert sorted(gaps.plan.clusters["rank"]) == list(range(1, len(gaps.plan.clusters) + 1))
    after = analyze(apply_plan(ds, gaps.plan))
    assert bool(after.premises["passed"].all())


def test_write_and_cli(tmp_path: Path) -> None:
    gaps = gap_analysis(analyze(hand_dataset()))
    out = write_gaps(gaps, tmp_path / "w")
    ranked = pd.read_csv(out / "gaps_clusters.csv")
    assert ranked["cluster_id"].tolist() == ["gap-q1", "gap-r1"]
    gpkg = tmp_path / "ds.gpkg"
    write_dataset(hand_dataset(), gpkg)
    cli = [sys.executable, "-c", "from netgis.cli import main; main()"]
    run = subprocess.run([*cli, "gaps", str(gpkg), "--out", str(tmp_path / "o"), "--h3-res", "7",
                          "--after", str(tmp_path / "after.gpkg")],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    after = subprocess.run([*cli, "analyze", str(tmp_path / "after.gpkg"), "--out",
                            str(tmp_path / "a")], capture_output=True, text=True, check=False)
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["coverage_pct"] == 100.0
    summary = json.loads(run.stdout)
    assert (summary["premises_not_passed"], summary["units_not_passed"]) == (4, 7)
    assert summary["top"][0]["cluster_id"] == "gap-q1"
    hexes = json.loads((tmp_path / "o" / "gaps_h3.geojson").read_text())
    assert hexes["type"] == "FeatureCollection"
    plan = gpd.read_file(tmp_path / "o" / "gaps_plan.gpkg", layer="spans")
    assert sorted(plan["span_id"]) == ["plan-s-q1", "plan-s-q2", "plan-s-r1"]
    bad = subprocess.run([*cli, "gaps", str(gpkg), "--h3-res", "99", "--out",
                          str(tmp_path / "bad")], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "h3_res" in bad.stderr
    assert not (tmp_path / "bad" / "gaps_clusters.csv").exists()
    # cluster q (6 units) above --max-units 5: cut at one of its two 100 m edges
    split = subprocess.run([*cli, "gaps", str(gpkg), "--max-units", "5", "--max-extent-m", "900",
                            "--out", str(tmp_path / "s")], capture_output=True, text=True,
                           check=False)
    assert split.returncode == 0, split.stderr
    assert json.loads(split.stdout)["clusters"] == 3
