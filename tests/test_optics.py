"""Optical reach (docs/spec.md §2.10): hand-drawn cases worked out on paper and a brute force.

Drawings are in UTM 32N meters near Frankfurt: a drawn kilometre is about
1.0004 km geodesic, far inside the 0.02 dB agreement docs/spec.md §2.10 asks for.
"""

from __future__ import annotations

import itertools
import json
import shlex
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely import LineString, Point

from netgis.engine.analysis import (
    Analysis,
    analyze,
    budget_scenario,
    premise_optics,
    serviceability,
)
from netgis.engine.optics import PON_CLASSES, SPLITTER_DB, LossBudget
from netgis.errors import ValidationError
from netgis.geodesy import WGS84, transform_geoms
from netgis.io import write_dataset
from netgis.validate import validate_frames
from tests.helpers import EXAMPLES_DIR
from tests.netbuild import ORIGIN, UTM, dataset


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netgis.cli", *args], capture_output=True,
                          text=True, timeout=300)

TOL_DB = 0.02


def _loss(r: Analysis, premise_id: str) -> float:
    row = r.premises.set_index("premise_id").loc[premise_id]
    return float(row["loss_db"])


def test_splitter_cascade_with_a_splice() -> None:
    # C(core) --s1-- A(1:4) --s2-- S(splice) --s3-- B(1:8) --s4-- D ; p 30 m off s4, 500 m past B
    ds = dataset([("C", 0, 0, "core"), ("A", 1000, 0, "splitter", "in_service", 4),
                  ("S", 1500, 0, "splice"), ("B", 2000, 0, "splitter", "in_service", 8),
                  ("D", 3000, 0)],
                 [("s1", "C", "A"), ("s2", "A", "S"), ("s3", "S", "B"), ("s4", "B", "D")],
                 [("p", 2500, 30)])
    r = analyze(ds)
    want = 1.0 + 0.35 * (2.5 + 0.03) + 7.3 + 0.1 + 10.5
    assert _loss(r, "p") == pytest.approx(want, abs=TOL_DB)
    out = premise_optics(r, 0)
    parts = out["loss"]
    assert parts["splices"] == 1 and [s["ratio"] for s in parts["splitters"]] == [4, 8]
    assert parts["fiber_km"] == pytest.approx(2.53, rel=2e-3)
    assert parts["fixed_db"] + parts["fiber_db"] + parts["splice_db"] + parts["splitter_db"] \
        == pytest.approx(out["loss_db"], abs=1e-9)
    assert parts["path"] == ["A", "S", "B"]
    row = r.premises.iloc[0]
    assert row["loss_splitter_db"] == pytest.approx(7.3 + 10.5)
    assert row["loss_splice_db"] == pytest.approx(0.1)
    assert row["loss_fiber_km"] == pytest.approx(parts["fiber_km"], rel=1e-9)
    assert out["margin_db"] == pytest.approx(28.0 - want, abs=TOL_DB) and out["in_budget"]


def test_least_loss_path_is_the_longer_way_round() -> None:
    # short way C-A(1:32)-B is 2 km, long way C-E-B is 6.32 km with no splitter
    ds = dataset([("C", 0, 0, "core"), ("A", 1000, 0, "splitter", "in_service", 32),
                  ("B", 2000, 0), ("E", 1000, 3000), ("F", 2000, -1000)],
                 [("s1", "C", "A"), ("s2", "A", "B"), ("s3", "C", "E"), ("s4", "E", "B"),
                  ("s5", "B", "F")],
                 [("p", 2030, -500)])
    r = analyze(ds)
    long_way_km = 2 * (1000**2 + 3000**2) ** 0.5 / 1000
    want = 1.0 + 0.35 * (0.5 + 0.03) + 0.35 * long_way_km
    assert _loss(r, "p") == pytest.approx(want, abs=TOL_DB)
    assert premise_optics(r, 0)["loss"]["path"] == ["E", "B"]


def test_core_adjacent_premise() -> None:
    ds = dataset([("C", 0, 0, "core"), ("A", 1000, 0, "splitter", "in_service", 16)],
                 [("s1", "C", "A")], [("p", 10, 20)])
    r = analyze(ds)
    assert _loss(r, "p") == pytest.approx(1.0 + 0.35 * (0.01 + 0.02), abs=TOL_DB)
    assert premise_optics(r, 0)["loss"]["path"] == []


def test_far_end_splitter_is_not_passed_through() -> None:
    # p hangs on A-D; D is a 1:32 splitter at the end of the line, the light comes from A
    ds = dataset([("C", 0, 0, "core"), ("A", 1000, 0), ("D", 2000, 0, "splitter",
                                                         "in_service", 32)],
                 [("s1", "C", "A"), ("s2", "A", "D")], [("p", 1500, 40)])
    r = analyze(ds)
    assert _loss(r, "p") == pytest.approx(1.0 + 0.35 * (1.5 + 0.04), abs=TOL_DB)


def test_span_drawn_backwards_measures_from_the_right_end() -> None:
    # s2 runs from D to A but is drawn A -> D: the fraction must still be from A
    ds = dataset([("C", 0, 0, "core"), ("A", 1000, 0), ("D", 5000, 0)],
                 [("s1", "C", "A")], [("p", 1500, 40)])
    spans = ds.spans
    extra = gpd.GeoDataFrame({"span_id": ["s2"], "from_node": ["D"], "to_node": ["A"],
                              "status": ["in_service"]},
                             geometry=[LineString([(1000 + ORIGIN[0], ORIGIN[1]),
                                                   (5000 + ORIGIN[0], ORIGIN[1])])], crs=UTM)
    frames = {"nodes": ds.nodes, "premises": ds.premises,
              "spans": gpd.GeoDataFrame(pd.concat([spans, extra], ignore_index=True), crs=UTM)}
    r = analyze(validate_frames(frames).dataset_or_raise())
    assert _loss(r, "p") == pytest.approx(1.0 + 0.35 * (1.5 + 0.04), abs=TOL_DB)


def test_unpassed_and_unlit_premises_have_no_loss() -> None:
    ds = dataset([("C", 0, 0, "core"), ("A", 1000, 0)], [("s1", "C", "A")],
                 [("near", 500, 30), ("far", 500, 900)])
    r = analyze(ds)
    far = r.premises.set_index("premise_id").loc["far"]
    assert np.isnan(far["loss_db"]) and not far["in_budget"] and np.isnan(far["margin_db"])
    assert r.kpis["network"]["units_in_budget"] == 1
    assert r.kpis["network"]["budget_coverage_pct"] == pytest.approx(50.0)


def test_budget_parameters_and_presets() -> None:
    ds = dataset([("C", 0, 0, "core"), ("A", 1000, 0, "splitter", "in_service", 64)],
                 [("s1", "C", "A")],
                 [("p", 990, 30)])
    loose = analyze(ds, budget=LossBudget.preset("gpon-c+"))
    assert loose.budget.budget_db == PON_CLASSES["gpon-c+"] == 32.0
    tight = analyze(ds, budget=LossBudget(budget_db=1.0))
    assert loose.premises["in_budget"].all() and not tight.premises["in_budget"].any()
    with pytest.raises(ValidationError, match="unknown PON class"):
        LossBudget.preset("gpon-z")
    with pytest.raises(ValidationError, match="budget_db"):
        LossBudget(budget_db=float("nan"))


def test_what_if_split_ratio_and_class() -> None:
    ds = dataset([("C", 0, 0, "core"), ("A", 1000, 0, "splitter", "in_service", 32),
                  ("B", 40000, 0)],
                 [("s1", "C", "A"), ("s2", "A", "B")],
                 [("near", 1500, 30), ("far", 30000, 30, 3)])
    r = analyze(ds)
    # far: 1 + 0.35 * 30.03 + 17.1 = 28.6 dB: out of a B+ budget, inside C+
    assert not r.premises.set_index("premise_id").loc["far", "in_budget"]
    cplus = budget_scenario(r, budget=LossBudget.preset("gpon-c+"))
    assert cplus.entering == ["far"] and cplus.leaving == [] and cplus.units_entering == 3
    # a 1:128 split at A costs 23.7 - 17.1 = 6.6 dB more: still fine near, and with C+ far leaves
    split = budget_scenario(r, budget=LossBudget.preset("gpon-c+"), split_ratios={"A": 128})
    assert split.entering == [] and split.leaving == []
    assert split.units_in_budget_after == split.units_in_budget_before == 1
    with pytest.raises(ValidationError, match="no such node"):
        budget_scenario(r, split_ratios={"nope": 4})
    with pytest.raises(ValidationError, match="must be one of"):
        budget_scenario(r, split_ratios={"A": 3})


def test_serviceability_matches_the_premise_answer() -> None:
    ds = dataset([("C", 0, 0, "core"), ("A", 1000, 0, "splitter", "in_service", 8),
                  ("B", 3000, 0)], [("s1", "C", "A"), ("s2", "A", "B")], [("p", 2000, 35)])
    r = analyze(ds)
    lon, lat = transform_geoms(r.premises.geometry.to_numpy(), r.premises.crs, WGS84)[0].coords[0]
    out = serviceability(r, lon, lat)
    assert out["loss_db"] == pytest.approx(_loss(r, "p"), abs=1e-6)
    assert out["in_budget"] and out["loss"]["splitters"][0]["ratio"] == 8


def test_split_ratio_validation() -> None:
    base = [("C", 0, 0, "core"), ("A", 100, 0, "splitter", "in_service", 4)]
    with pytest.raises(ValidationError, match="only splitter nodes"):
        dataset([*base, ("B", 200, 0, "cabinet", "in_service", 8)], [("s1", "C", "A")])
    with pytest.raises(ValidationError, match="must be one of"):
        dataset([*base, ("B", 200, 0, "splitter", "in_service", 3)], [("s1", "C", "A")])
    ds = dataset([*base, ("B", 200, 0, "splitter")], [("s1", "C", "A")])
    assert ds.nodes.set_index("node_id").loc["A", "split_ratio"] == 4


# --------------------------------------------------------------------------- brute force

KINDS = ("cabinet", "splice", "splitter")


@st.composite
def networks(draw: st.DrawFn) -> dict[str, object]:
    n = draw(st.integers(3, 7))
    xy = draw(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), min_size=n,
                       max_size=n, unique=True))
    kinds = ["core"] + [draw(st.sampled_from(KINDS)) for _ in range(n - 1)]
    if n > 4 and draw(st.booleans()):
        kinds[-1] = "core"
    ratios = [draw(st.sampled_from(sorted(SPLITTER_DB))) if k == "splitter" else None
              for k in kinds]
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1))
                          .filter(lambda p: p[0] != p[1]), min_size=n - 1, max_size=2 * n))
    bends = [draw(st.integers(-8, 8)) for _ in pairs]
    return {"xy": xy, "kinds": kinds, "ratios": ratios, "pairs": pairs, "bends": bends}


def _frames(net: dict[str, object]) -> dict[str, gpd.GeoDataFrame]:
    ox, oy = ORIGIN
    xy = [(ox + 400.0 * x, oy + 400.0 * y) for x, y in net["xy"]]  # type: ignore[attr-defined]
    ids = [f"n{i}" for i in range(len(xy))]
    nodes = gpd.GeoDataFrame({"node_id": ids, "kind": net["kinds"],
                              "split_ratio": net["ratios"]},
                             geometry=[Point(p) for p in xy], crs=UTM)
    lines, spans = [], []
    for k, ((a, b), bend) in enumerate(zip(net["pairs"], net["bends"], strict=True)):  # type: ignore[call-overload]
        (xa, ya), (xb, yb) = xy[a], xy[b]
        # a bend makes parallel spans differ in length
        mid = ((xa + xb) / 2 + 97.0 * bend, (ya + yb) / 2 - 61.0 * bend)
        lines.append(LineString([xy[a], mid, xy[b]]))
        spans.append((f"s{k:02d}", ids[a], ids[b]))
    span_frame = gpd.GeoDataFrame({"span_id": [s[0] for s in spans],
                                   "from_node": [s[1] for s in spans],
                                   "to_node": [s[2] for s in spans]}, geometry=lines, crs=UTM)
    # one premise beside the middle of every span
    prem = [Point(line.interpolate(0.37, normalized=True).x + 3.0,
                  line.interpolate(0.37, normalized=True).y + 4.0) for line in lines]
    premises = gpd.GeoDataFrame({"premise_id": [f"p{k:02d}" for k in range(len(prem))]},
                                geometry=prem, crs=UTM)
    return {"nodes": nodes, "spans": span_frame, "premises": premises}


def _brute_dist(r: Analysis, budget: LossBudget) -> dict[str, float]:
    """Least loss from any core to every node over all simple paths (cores merged)."""
    nodes = r.dataset.nodes.set_index("node_id")
    G = nx.MultiGraph()
    length = dict(zip(r.spans["span_id"], r.spans["length_m"], strict=True))
    for row in r.dataset.spans.itertuples():
        a = "S" if nodes.loc[row.from_node, "kind"] == "core" else row.from_node
        b = "S" if nodes.loc[row.to_node, "kind"] == "core" else row.to_node
        if a != b:
            G.add_edge(a, b, key=row.span_id, length_m=length[row.span_id])

    def node_loss(v: str) -> float:
        return budget.node_loss_db(str(nodes.loc[v, "kind"]), nodes.loc[v, "split_ratio"])

    best = {n: np.inf for n in nodes.index}
    for n in nodes.index:
        if nodes.loc[n, "kind"] == "core":
            best[n] = 0.0
            continue
        if n not in G or "S" not in G:
            continue
        for path in nx.all_simple_edge_paths(G, "S", n):
            km = sum(G.edges[u, v, k]["length_m"] for u, v, k in path) / 1000
            loss = budget.atten_db_per_km * km + sum(node_loss(v) for _, v, _ in path)
            best[n] = min(best[n], loss)
    return best


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_loss_equals_brute_force_over_all_simple_paths(net: dict[str, object]) -> None:
    report = validate_frames(_frames(net))
    r = analyze(report.dataset_or_raise())
    budget = r.budget
    best = _brute_dist(r, budget)
    spans = r.dataset.spans.set_index("span_id")
    length = dict(zip(r.spans["span_id"], r.spans["length_m"], strict=True))
    for row in r.premises.itertuples():
        if not row.passed:
            assert np.isnan(row.loss_db) and not row.in_budget
            continue
        span = spans.loc[row.served_span_id]
        frac = span.geometry.project(row.geometry, normalized=True)
        km = length[row.served_span_id] / 1000
        want = budget.fixed_db + budget.atten_db_per_km * row.distance_m / 1000 + min(
            best[span.from_node] + budget.atten_db_per_km * km * frac,
            best[span.to_node] + budget.atten_db_per_km * km * (1 - frac))
        if not np.isfinite(want):
            assert not row.in_budget
            continue
        assert row.loss_db == pytest.approx(want, abs=1e-6), row.premise_id
        assert row.in_budget == (row.loss_db <= budget.budget_db)
        assert row.margin_db == pytest.approx(budget.budget_db - row.loss_db)
        assert budget.fixed_db + budget.atten_db_per_km * row.loss_fiber_km \
            + row.loss_splitter_db + row.loss_splice_db == pytest.approx(row.loss_db)


def test_brute_force_sees_parallel_spans() -> None:
    # the network strategy can draw parallel spans of different lengths: check one by hand
    net = {"xy": [(0, 0), (5, 0), (10, 0)], "kinds": ["core", "splitter", "cabinet"],
           "ratios": [None, 4, None], "pairs": [(0, 1), (0, 1), (1, 2)], "bends": [0, 6, 0]}
    r = analyze(validate_frames(_frames(net)).dataset_or_raise())
    best = _brute_dist(r, r.budget)
    assert best["n1"] == pytest.approx(0.35 * 2.0008 + 7.3, abs=TOL_DB)
    assert list(itertools.islice(best, 1)) == ["n0"]


def test_cli_budget_flags_and_what_if() -> None:
    gpkg = str(EXAMPLES_DIR / "optical_ring" / "dataset.gpkg")
    proc = run_cli("analyze", gpkg, "--pon-class", "gpon-c+", "--out", "/dev/null/x")
    assert proc.returncode != 0  # cannot write there: nothing half-written, an error
    proc = run_cli("scenario", gpkg, "--pon-class", "gpon-c+", "--split", "D=64")
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr
    optics = json.loads(proc.stdout)["optics"]
    # D from 1:16 (13.7 dB) to 1:64 (20.5 dB): p_tight (27.88 dB) and p_too_far (28.58 dB)
    # gain 6.8 dB, out even of C+ (32); p_behind_1x16 (17.23 dB) stays in
    assert optics["leaving"] == ["p_tight"] and optics["entering"] == []
    assert (optics["units_in_budget_before"], optics["units_in_budget_after"]) == (5, 4)
    bad = run_cli("scenario", gpkg, "--split", "D=3")
    assert bad.returncode == 2 and "split_ratio" in bad.stderr and "D" in bad.stderr


@pytest.mark.parametrize(("split", "named", "reason"), [
    ("G=4", "G", "not a splitter (kind cabinet)"),   # a cabinet cannot be re-split
    ("B=64", "B", "not a splitter (kind splice)"),
    ("nope=4", "nope", "no such node"),
])
def test_cli_split_of_a_node_that_is_no_splitter_is_an_error(split: str, named: str,
                                                             reason: str) -> None:
    gpkg = str(EXAMPLES_DIR / "optical_ring" / "dataset.gpkg")
    proc = run_cli("scenario", gpkg, "--pon-class", "gpon-c+", "--split", split)
    assert proc.returncode == 2, proc.stderr
    assert f"nodes id={named} " in proc.stderr and reason in proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr


def test_cli_split_of_a_splitter_serving_nobody_warns(tmp_path: Path) -> None:
    # p hangs on s4 behind splitter A; X (1:8) is on a branch of its own with no premise
    # behind it, and P is planned; q, on s1 between C and A, gets its light before A
    ds = dataset([("C", 0, 0, "core"), ("A", 1000, 0, "splitter", "in_service", 4),
                  ("B", 2000, 0), ("X", 0, 1000, "splitter", "in_service", 8),
                  ("P", 0, 2000, "splitter", "planned", 8)],
                 [("s1", "C", "A"), ("s4", "A", "B"), ("s2", "C", "X"),
                  ("s3", "X", "P", "planned")],
                 [("p", 1500, 30), ("q", 500, 30)])
    gpkg = write_dataset(ds, tmp_path / "idle.gpkg")
    proc = run_cli("scenario", str(gpkg), "--split", "X=64,P=64,A=8")
    assert proc.returncode == 0, proc.stderr
    warned = [line for line in proc.stderr.splitlines() if "serves no passed premise" in line]
    assert [line.split()[2] for line in warned] == ["id=P", "id=X"]
    optics = json.loads(proc.stdout)["optics"]
    assert optics["split_ratios"] == {"X": 64, "P": 64, "A": 8}


def test_cli_budget_db_changes_the_answer(tmp_path: Path) -> None:
    gpkg = str(EXAMPLES_DIR / "optical_ring" / "dataset.gpkg")
    proc = run_cli("analyze", gpkg, "--budget-db", "29", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    kpis = json.loads(proc.stdout)
    assert kpis["units_in_budget"] == 6 and kpis["budget_coverage_pct"] == pytest.approx(100.0)


def test_an_empty_network_has_no_loss_and_no_crash() -> None:
    import geopandas as gpd

    empty = {layer: gpd.GeoDataFrame(geometry=[], crs=UTM)
             for layer in ("nodes", "spans", "premises")}
    r = analyze(validate_frames(empty).dataset_or_raise())
    assert r.kpis["network"]["units_in_budget"] == 0
    assert r.kpis["network"]["budget_coverage_pct"] is None


def test_readme_split_example_changes_the_budget() -> None:
    """The README's `netgis scenario ... --split` line, run as written, shows an effect."""
    root = Path(__file__).resolve().parent.parent
    lines = [ln for ln in (root / "README.md").read_text().splitlines()
             if ln.startswith("$N scenario ") and "--split" in ln]
    assert len(lines) == 1, lines
    args = shlex.split(lines[0].split("#")[0])[1:]
    proc = subprocess.run([sys.executable, "-m", "netgis.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr
    optics = json.loads(proc.stdout)["optics"]
    assert optics["units_entering"] + optics["units_leaving"] > 0
    # and the split itself moves premises: without it the same class gives another answer
    at = args.index("--split")
    plain = subprocess.run([sys.executable, "-m", "netgis.cli", *args[:at], *args[at + 2:]],
                           capture_output=True, text=True, timeout=300, cwd=root)
    assert plain.returncode == 0, plain.stderr
    without = json.loads(plain.stdout)["optics"]
    assert optics["units_in_budget_after"] != without["units_in_budget_after"]
    assert optics["leaving"] != without["leaving"] or optics["entering"] != without["entering"]
