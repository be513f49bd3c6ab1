"""The linear-time algorithms agree with brute-force failure enumeration (docs/spec.md §2.5-§2.6).

Random small multigraphs with parallel spans, several cores, ducts and
planned/retired elements; premises attached to random lit spans.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netgis.engine.graph import analysis_graph, network_from_gdfs
from netgis.engine.redundancy import impacts, protection, scenario_lost, structure
from tests import brute
from tests.netbuild import dataset

STATUS = st.sampled_from(["in_service"] * 6 + ["planned", "retired"])


@st.composite
def plants(draw: st.DrawFn) -> tuple[brute.Plant, dict[str, list[int]]]:
    n = draw(st.integers(2, 8))
    names = [f"n{i}" for i in range(n)]
    kind = {v: draw(st.sampled_from(["core", "cabinet", "cabinet", "splice"])) for v in names}
    status = {v: draw(STATUS) for v in names}
    m = draw(st.integers(1, 13))
    spans = []
    for j in range(m):
        a = draw(st.sampled_from(names))
        b = draw(st.sampled_from([v for v in names if v != a]))
        spans.append((f"s{j}", a, b, draw(STATUS),
                      draw(st.sampled_from([None, None, "d1", "d2", "d3"]))))
    plant = brute.Plant(kind, status, spans)
    # units of the premises attached to each span (only lit spans keep theirs)
    attached = {sid: draw(st.lists(st.integers(1, 4), max_size=2)) for sid, *_ in spans}
    return plant, attached


def _frames(plant: brute.Plant):  # type: ignore[no-untyped-def]
    names = sorted(plant.kind)
    nodes = [(v, 100.0 * i, 37.0 * (i % 3), plant.kind[v], plant.node_status[v])
             for i, v in enumerate(names)]
    spans = [(sid, a, b, s, d) for sid, a, b, s, d in plant.spans]
    return dataset(nodes, spans, [])


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plants())
def test_fast_algorithms_match_brute_force(case: tuple[brute.Plant, dict[str, list[int]]]) -> None:
    plant, attached = case
    ds = _frames(plant)
    g = analysis_graph(network_from_gdfs(ds.nodes, ds.spans))
    st_ = structure(g)
    edge_of = {s: i for i, s in enumerate(g.edge_span.tolist())}

    lit = {s for s, i in edge_of.items() if st_.lit[i]}
    assert lit == brute.lit_spans(plant)

    # premises: one entry per (span, units) on lit spans
    served: list[int] = []
    units: list[int] = []
    for sid in sorted(lit):
        for u in attached[sid]:
            served.append(edge_of[sid])
            units.append(u)
    served_a = np.asarray(served, dtype=np.int64)
    units_a = np.asarray(units, dtype=np.int64)

    prot = protection(g, st_)
    for sid in lit:
        e = edge_of[sid]
        expect = brute.protection(plant, sid)
        assert (bool(prot.span[e]), bool(prot.node[e]), bool(prot.duct[e])) == expect, sid
        # invariants: node/duct protection imply span protection
        assert not prot.node[e] or prot.span[e]
        assert not prot.duct[e] or prot.span[e]

    edge_p = np.bincount(served_a, minlength=g.n_edges).astype(np.int64)
    edge_u = np.bincount(served_a, weights=units_a, minlength=g.n_edges).astype(np.int64)
    imp = impacts(g, st_, edge_p, edge_u)
    prem_span = [g.edge_span[e] for e in served]

    for sid, e in edge_of.items():
        lost = [not brute.survives(plant, ps, cut={sid}) for ps in prem_span]
        assert imp.cut_premises[e] == sum(lost), sid
        assert imp.cut_units[e] == sum(u for u, x in zip(units, lost, strict=True) if x)
        # the scenario engine agrees with the cut impact
        lost_s = scenario_lost(g, served_a, cut_edges=[e])
        assert lost_s.tolist() == lost

    vertex = g.vertex_of()
    for node in plant.kind:
        if node not in vertex or plant.kind[node] == "core":
            continue
        v = vertex[node]
        lost = [not brute.survives(plant, ps, failed_nodes={node}) for ps in prem_span]
        assert imp.failure_premises[v] == sum(lost), node
        assert imp.failure_units[v] == sum(u for u, x in zip(units, lost, strict=True) if x)
        assert scenario_lost(g, served_a, failed_nodes=[node]).tolist() == lost


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plants(), st.data())
def test_scenarios_match_brute_force(case: tuple[brute.Plant, dict[str, list[int]]],
                                     data: st.DataObject) -> None:
    plant, _ = case
    ds = _frames(plant)
    g = analysis_graph(network_from_gdfs(ds.nodes, ds.spans))
    st_ = structure(g)
    lit_edges = [i for i in range(g.n_edges) if st_.lit[i]]
    served = np.asarray(lit_edges, dtype=np.int64)
    cut = data.draw(st.sets(st.sampled_from(range(g.n_edges)), max_size=3)) if g.n_edges else set()
    failed = data.draw(st.sets(st.sampled_from(sorted(plant.kind)), max_size=2))
    got = scenario_lost(g, served, cut_edges=sorted(cut), failed_nodes=failed)
    cut_ids = {g.edge_span[i] for i in cut}
    up_failed = {n for n in failed if plant.node_status[n] == "in_service"}
    expect = [not brute.survives(plant, g.edge_span[e], cut=cut_ids, failed_nodes=up_failed)
              for e in lit_edges]
    assert got.tolist() == expect
