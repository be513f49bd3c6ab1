"""Diversity of two premises (docs/strands.md, "Diversity"): what their best paths share.
"""

from __future__ import annotations

from typing import Any

from netgis.engine.strands.trace import Best, Trace, TraceOptions, best_paths, path_losses
from netgis.errors import Problem, ValidationError
from netgis.strand_plant import StrandPlant


def path_elements(plant: StrandPlant, trace: Trace, path: int) -> tuple[set[str], set[str],
                                                                        set[str]]:
    """Spans, ducts (non-null) and nodes of one path: every node a piece visits, express
    ones included, and the nodes of its connections and splitters; the OLT port's node and
    the drop's node left out."""
    walker = trace.walker
    spans: set[str] = set()
    nodes: set[str] = set()
    v = trace.path_leaf[path]
    while v >= 0:
        kind = trace.hop_type[v]
        if kind == "piece":
            cab = plant.cables[trace.cable_id[v]]  # type: ignore[index]
            a, b = cab.pos[trace.node_from[v]], cab.pos[trace.node_to[v]]
            lo, hi = min(a, b), max(a, b)
            spans.update(cab.spans[lo:hi])
            nodes.update(cab.nodes[lo:hi + 1])
        elif kind in ("connection", "splitter"):
            nodes.add(trace.node_from[v])
        v = trace.parent[v]
    nodes.discard(plant.olt_node[trace.path_port[path]])
    d = trace.drop_row[path]
    if d >= 0:
        nodes.discard(walker.drop_node[d])
    ducts = {plant.span_duct[s] for s in spans if plant.span_duct.get(s) is not None}
    return spans, ducts, nodes  # type: ignore[return-value]


def best_path_of(plant: StrandPlant, trace: Trace, best: Best, who: str) -> int:
    """The best path of premise (or drop) ``who``; ValidationError when it has none."""
    if who in plant.premise_units:
        p = best.premise_path.get(who)
        if p is None:
            raise ValidationError([Problem("premises", who, None,
                                           "the premise is not connected (no path from an "
                                           "OLT port reaches it)")])
        return p
    walker = trace.walker
    if who in walker.drop_id:
        d = walker.drop_id.index(who)
        p = best.drop_path.get(d)
        if p is None:
            raise ValidationError([Problem("drops", who, None,
                                           "the drop is not connected (no path from an OLT "
                                           "port reaches it)")])
        return p
    raise ValidationError([Problem("premises", who, None, "no such premise or drop")])


def diversity(plant: StrandPlant, trace: Trace, a: str, b: str,
              options: TraceOptions, best: Best | None = None) -> dict[str, Any]:
    """The diversity of ``a`` and ``b`` (premises or drops) as JSON-ready fields."""
    if best is None:
        best = best_paths(trace, path_losses(trace, options))
    pa, pb = best_path_of(plant, trace, best, a), best_path_of(plant, trace, best, b)
    sa, da, na = path_elements(plant, trace, pa)
    sb, db, nb = path_elements(plant, trace, pb)
    shared_s, shared_d, shared_n = sorted(sa & sb), sorted(da & db), sorted(na & nb)
    losses = path_losses(trace, options)
    return {
        "a": a, "b": b,
        "path_a": trace.path_id(pa), "path_b": trace.path_id(pb),
        "loss_a_db": round(float(losses[pa]), 4), "loss_b_db": round(float(losses[pb]), 4),
        "diverse_span": not shared_s,
        "diverse_duct": not shared_s and not shared_d,
        "diverse_node": not shared_s and not shared_d and not shared_n,
        "shared_spans": shared_s,
        "shared_ducts": shared_d,
        "shared_nodes": shared_n,
    }


__all__ = ["best_path_of", "diversity", "path_elements"]
