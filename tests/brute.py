"""Brute-force reference for docs/spec.md §2.4 failures (tests only, exponential-free but slow).

Enumerates every single failure of each class on the graph with the served
span subdivided at the attachment point, exactly as docs/spec.md §2.5 words it, with real
cores (not merged) and networkx MultiGraph.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import networkx as nx

P = ("__premise__",)


@dataclass(frozen=True)
class Plant:
    kind: dict[str, str]            # node -> kind
    node_status: dict[str, str]
    spans: list[tuple[str, str, str, str, str | None]]  # (span_id, a, b, status, duct)


def analysis_edges(plant: Plant) -> list[tuple[str, str, str, str | None]]:
    up = {n for n, s in plant.node_status.items() if s == "in_service"}
    return [(sid, a, b, d) for sid, a, b, st, d in plant.spans
            if st == "in_service" and a in up and b in up]


def cores(plant: Plant) -> set[str]:
    return {n for n, k in plant.kind.items()
            if k == "core" and plant.node_status[n] == "in_service"}


def lit_spans(plant: Plant) -> set[str]:
    G = nx.MultiGraph()
    up = [n for n, s in plant.node_status.items() if s == "in_service"]
    G.add_nodes_from(up)
    edges = analysis_edges(plant)
    for sid, a, b, _ in edges:
        G.add_edge(a, b, key=sid)
    src = cores(plant)
    reach: set[str] = set()
    for c in src:
        reach |= nx.node_connected_component(G, c)
    return {sid for sid, a, _, _ in edges if a in reach}


def _reaches(edges: Iterable[tuple[str, str, str]], removed_nodes: set[str],
             src: set[str]) -> bool:
    G = nx.MultiGraph()
    G.add_node(P)
    for key, a, b in edges:
        if a in removed_nodes or b in removed_nodes:
            continue
        G.add_edge(a, b, key=key)
    if P not in G:
        return False
    comp = nx.node_connected_component(G, P)
    return any(c in comp for c in src if c not in removed_nodes)


def survives(plant: Plant, served: str, *, cut: set[str] = frozenset(),  # type: ignore[assignment]
             failed_nodes: set[str] = frozenset()) -> bool:  # type: ignore[assignment]
    """Worst case over cut positions: does the premise on ``served`` still reach a core?"""
    src = cores(plant)
    base: list[tuple[str, str, str]] = []
    sa = sb = None
    for sid, a, b, _ in analysis_edges(plant):
        if sid == served:
            sa, sb = a, b
            continue
        if sid not in cut:
            base.append((sid, a, b))
    assert sa is not None and sb is not None
    halves = [("half_a", sa, P), ("half_b", P, sb)]
    options = [[halves[1]], [halves[0]]] if served in cut else [halves]
    return all(_reaches(base + opt, set(failed_nodes), src) for opt in options)


def protection(plant: Plant, served: str) -> tuple[bool, bool, bool]:
    edges = analysis_edges(plant)
    span_ok = all(survives(plant, served, cut={sid}) for sid, _, _, _ in edges)
    non_core = [n for n in plant.node_status
                if plant.node_status[n] == "in_service" and plant.kind[n] != "core"]
    node_ok = span_ok and all(survives(plant, served, failed_nodes={n}) for n in non_core)
    ducts = {d for _, _, _, d in edges if d is not None}
    duct_ok = span_ok and all(
        survives(plant, served, cut={sid for sid, _, _, dd in edges if dd == d}) for d in ducts)
    return span_ok, node_ok, duct_ok
