"""Hand-drawn networks whose answers are worked out on paper (drawings in UTM 32N meters)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from shapely import Polygon, box
from shapely.affinity import translate

from netgis.engine.analysis import analyze, scenario, serviceability
from netgis.errors import ValidationError
from tests.netbuild import ORIGIN, dataset


def _by_id(frame: pd.DataFrame, key: str) -> dict[str, dict[str, object]]:
    return {str(k): v for k, v in frame.set_index(key).to_dict("index").items()}


def test_tree() -> None:
    # C(core) --s1-- A --s2-- B ; p1 on s1, p2 on s2
    ds = dataset([("C", 0, 0, "core"), ("A", 300, 0), ("B", 600, 0)],
                 [("s1", "C", "A"), ("s2", "A", "B")],
                 [("p1", 150, 20, 2), ("p2", 450, 30, 3)])
    r = analyze(ds)
    p = _by_id(r.premises, "premise_id")
    assert p["p1"]["served_span_id"] == "s1" and p["p2"]["served_span_id"] == "s2"
    assert not any(p[k][f] for k in p for f in ("span_protected", "node_protected",
                                                  "duct_protected"))
    s = _by_id(r.spans, "span_id")
    assert (s["s1"]["cut_premises"], s["s1"]["cut_units"]) == (2, 5)
    assert (s["s2"]["cut_premises"], s["s2"]["cut_units"]) == (1, 3)
    n = _by_id(r.nodes, "node_id")
    # A fails: p2 on A-B only reaches B, which is cut off; p1 still reaches C
    assert (n["A"]["failure_premises"], n["A"]["failure_units"]) == (1, 3)
    assert n["B"]["failure_premises"] == 0 and n["C"]["failure_premises"] == 0
    assert r.kpis["network"]["spof_spans"] == 2 and r.kpis["network"]["spof_nodes"] == 1


def test_two_cores_make_a_line_a_ring() -> None:
    # C1(core) --s1-- A --s2-- C2(core): cores merge, so every premise has two ways out
    ds = dataset([("C1", 0, 0, "core"), ("A", 300, 0), ("C2", 600, 0, "core")],
                 [("s1", "C1", "A"), ("s2", "A", "C2")], [("p", 100, 10)])
    r = analyze(ds)
    row = r.premises.iloc[0]
    assert row["span_protected"] and row["node_protected"] and row["duct_protected"]
    assert r.spans["cut_premises"].sum() == 0 and r.nodes["failure_premises"].sum() == 0
    # a failed core stops being a source: with C1 down, p still reaches C2
    assert scenario(r, nodes=["C1"]).premises == 0
    assert scenario(r, nodes=["C1", "C2"]).premises == 1


def test_span_between_two_cores_is_protected() -> None:
    ds = dataset([("C1", 0, 0, "core"), ("C2", 300, 0, "core")], [("s1", "C1", "C2")],
                 [("p", 150, 10)])
    row = analyze(ds).premises.iloc[0]
    assert row["span_protected"] and row["node_protected"] and row["duct_protected"]


def test_parallel_spans_count_separately() -> None:
    # C ==s1/s2== A --s3-- B
    ds = dataset([("C", 0, 0, "core"), ("A", 300, 0), ("B", 300, 300)],
                 [("s1", "C", "A"), ("s2", "C", "A"), ("s3", "A", "B")],
                 [("p1", 150, -10), ("p3", 310, 150)])
    r = analyze(ds)
    p = _by_id(r.premises, "premise_id")
    assert p["p1"]["served_span_id"] == "s1"  # s1 and s2 tie exactly; lowest id wins
    assert p["p1"]["span_protected"] and p["p1"]["node_protected"]
    assert not p["p3"]["span_protected"]
    s = _by_id(r.spans, "span_id")
    assert s["s1"]["cut_premises"] == 0 and s["s2"]["cut_premises"] == 0
    assert s["s3"]["cut_premises"] == 1
    assert _by_id(r.nodes, "node_id")["A"]["failure_premises"] == 1


def test_shared_duct_across_a_ring_and_scenarios() -> None:
    # ring C-A-B-D-C; s1 (C-A) and s4 (D-C) share duct d1
    ds = dataset([("C", 0, 0, "core"), ("A", 300, 0), ("B", 300, 300), ("D", 0, 300)],
                 [("s1", "C", "A", "in_service", "d1"), ("s2", "A", "B"),
                  ("s3", "B", "D"), ("s4", "D", "C", "in_service", "d1")],
                 [("p", 320, 150, 2)])
    r = analyze(ds)
    row = r.premises.iloc[0]
    assert row["span_protected"] and row["node_protected"] and not row["duct_protected"]
    lost = scenario(r, ducts=["d1"])
    assert (lost.premises, lost.units) == (1, 2)
    assert lost.failed_spans == ["s1", "s4"]
    assert scenario(r, spans=["s1"]).premises == 0
    # an area around A and B: both fail and every span touching them is cut
    around_ab = translate(box(250, -50, 350, 350), *ORIGIN)
    hit = scenario(r, area=around_ab, area_crs=32632)
    assert hit.failed_nodes == ["A", "B"] and hit.premises == 1
    with pytest.raises(ValidationError, match="no such span"):
        scenario(r, spans=["nope"])


def test_planned_span_that_would_close_a_ring_is_not_lit() -> None:
    ds = dataset([("C", 0, 0, "core"), ("A", 300, 0), ("B", 300, 300)],
                 [("s1", "C", "A"), ("s2", "A", "B"), ("s3", "B", "C", "planned")],
                 [("p", 310, 150)])
    r = analyze(ds)
    s = _by_id(r.spans, "span_id")
    assert not s["s3"]["lit"]
    assert s["s3"]["cut_premises"] == 0
    row = r.premises.iloc[0]
    assert row["served_span_id"] == "s2" and not row["span_protected"]
    assert r.kpis["network"]["cable_km"] < 0.61  # planned span is not cable in service


def test_retired_node_and_component_without_core() -> None:
    # ring C-A-B-C with B retired: s2 and s3 leave G; island X-Y has no core
    ds = dataset([("C", 0, 0, "core"), ("A", 300, 0), ("B", 150, 250, "cabinet", "retired"),
                  ("X", 2000, 0), ("Y", 2300, 0)],
                 [("s1", "C", "A"), ("s2", "A", "B"), ("s3", "B", "C"), ("s4", "X", "Y")],
                 [("near_b", 150, 240), ("island", 2150, 5)])
    r = analyze(ds)
    s = _by_id(r.spans, "span_id")
    assert s["s1"]["lit"] and not s["s2"]["lit"] and not s["s3"]["lit"] and not s["s4"]["lit"]
    p = _by_id(r.premises, "premise_id")
    assert p["near_b"]["served_span_id"] is None and not p["near_b"]["passed"]
    assert p["near_b"]["distance_m"] == pytest.approx(240 * 1.0004, rel=2e-3)
    assert not p["island"]["passed"]
    assert _by_id(r.nodes, "node_id")["B"]["failure_premises"] == 0


def test_no_core_lights_nothing_with_a_warning() -> None:
    ds = dataset([("A", 0, 0), ("B", 300, 0)], [("s1", "A", "B")], [("p", 100, 10)])
    r = analyze(ds)
    assert not r.spans["lit"].any()
    assert math.isnan(r.premises.iloc[0]["distance_m"])
    assert any("no in-service core" in w.reason for w in r.warnings)
    k = r.kpis["network"]
    assert k["coverage_pct"] == 0.0 and k["take_rate_pct"] is None
    assert k["span_protected_pct"] is None


def test_drop_boundary_is_inclusive() -> None:
    ds = dataset([("C", 0, 0, "core"), ("A", 300, 0)], [("s1", "C", "A")], [("p", 100, 150)])
    d = float(analyze(ds).premises.iloc[0]["distance_m"])
    assert d == pytest.approx(150 * 1.00039, rel=1e-3)
    assert analyze(ds, drop_m=d).premises.iloc[0]["passed"]
    assert not analyze(ds, drop_m=d - 1e-6).premises.iloc[0]["passed"]


def test_ties_go_to_the_lowest_span_id_in_code_point_order() -> None:
    ds = dataset([("C", 0, 0, "core"), ("A", 300, 0), ("D", 0, 40, "core"), ("B", 300, 40)],
                 [("s9", "C", "A"), ("s10", "D", "B")], [("p", 150, 20)])
    assert analyze(ds).premises.iloc[0]["served_span_id"] == "s10"


def test_attachment_beyond_the_end_measures_to_the_node() -> None:
    ds = dataset([("C", 0, 0, "core"), ("A", 300, 0)], [("s1", "C", "A")], [("p", 360, 0)])
    row = analyze(ds).premises.iloc[0]
    assert row["distance_m"] == pytest.approx(60.0236, rel=5e-4)


@pytest.mark.parametrize("crs", [32632, 4326, 3857])
def test_same_network_in_utm_wgs84_and_web_mercator(crs: int) -> None:
    nodes = [("C", 0, 0, "core"), ("A", 300, 0), ("B", 300, 300), ("D", 0, 300), ("E", 500, 300)]
    spans = [("s1", "C", "A"), ("s2", "A", "B"), ("s3", "B", "D"), ("s4", "D", "C"),
             ("s5", "B", "E")]
    prem = [("p1", 150, 100), ("p2", 400, 330, 3), ("p3", 900, 300)]
    area = [("all", Polygon([(-100, -100), (450, -100), (450, 400), (-100, 400)]))]
    ref = analyze(dataset(nodes, spans, prem, area))
    got = analyze(dataset(nodes, spans, prem, area, crs=crs))
    cols = ["premise_id", "passed", "served_span_id", "span_protected", "node_protected",
            "duct_protected"]
    pd.testing.assert_frame_equal(got.premises[cols], ref.premises[cols])
    assert got.premises["distance_m"].to_numpy() == pytest.approx(
        ref.premises["distance_m"].to_numpy(), rel=1e-6)
    pd.testing.assert_frame_equal(got.spans[["span_id", "lit", "cut_premises", "cut_units"]],
                                  ref.spans[["span_id", "lit", "cut_premises", "cut_units"]])
    for scope_got, scope_ref in [(got.kpis["network"], ref.kpis["network"]),
                                 (got.kpis["areas"][0], ref.kpis["areas"][0])]:
        for key, value in scope_ref.items():
            if isinstance(value, float):
                assert scope_got[key] == pytest.approx(value, rel=1e-6), key
            else:
                assert scope_got[key] == value, key
    # 1.9 km drawn near lat 50: geodesic is 0.04 % longer than the UTM drawing
    assert ref.kpis["network"]["cable_km"] == pytest.approx(1.4 * 1.00039, rel=1e-3)


def test_route_km_counts_shared_segments_once() -> None:
    ds = dataset([("C", 0, 0, "core"), ("A", 300, 0)], [("s1", "C", "A"), ("s2", "C", "A")])
    k = analyze(ds).kpis["network"]
    assert k["cable_km"] == pytest.approx(2 * k["route_km"], rel=1e-9)


def test_serviceability_of_an_address() -> None:
    ds = dataset([("C", 0, 0, "core"), ("A", 300, 0)], [("s1", "C", "A")])
    r = analyze(ds)
    lon, lat = r.dataset.nodes.to_crs(4326).geometry.iloc[1].coords[0]
    out = serviceability(r, lon, lat + 0.0005)  # about 56 m north of A
    assert out["passed"] and out["served_span_id"] == "s1"
    assert out["distance_m"] == pytest.approx(55.6, abs=0.5)
    far = serviceability(r, lon, lat + 0.01)
    assert not far["passed"] and far["served_span_id"] is None
    with pytest.raises(ValidationError):
        serviceability(r, 500.0, 0.0)
