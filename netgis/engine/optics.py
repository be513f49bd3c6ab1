"""Optical reach: the loss from a core to every vertex and premise (docs/spec.md §2.10).

Light leaves a core and loses power in the fiber (``atten_db_per_km``), at
every splice node (``splice_db``) and every splitter (``splitter_db`` by its
split ratio), plus a fixed loss for the connectors at both ends. A passed
premise is serviceable when that loss stays within the PON class's budget.

``dist(v)``, the least loss from the super-core S to vertex ``v`` over the
analysis graph G (the node loss of ``v`` included), comes from one Dijkstra
over a directed copy of G whose arc ``u -> v`` weighs the fiber loss of the
span plus the node loss of ``v``. A premise then needs only the two ends of
its served span: :func:`premise_loss_db` is a handful of array operations.

Examples
--------
>>> budget = LossBudget.preset("gpon-c+")
>>> budget.budget_db, budget.node_loss_db("splitter", 32)
(32.0, 17.1)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from netgis.engine.graph import AnalysisGraph, built_from_nodes, id_index
from netgis.errors import Problem, ValidationError
from netgis.schema import SPLICE, SPLIT_RATIOS, SPLITTER

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Insertion loss of a 1:N splitter in dB (docs/spec.md §2.10; typical datasheet values).
SPLITTER_DB: Mapping[int, float] = {2: 3.7, 4: 7.3, 8: 10.5, 16: 13.7, 32: 17.1, 64: 20.5,
                                    128: 23.7}

#: Named optical budgets of the common PON classes, in dB.
#: GPON: ITU-T G.984.2 (Amendment 1) classes B+ (28 dB) and C+ (32 dB);
#: XGS-PON: ITU-T G.9807.1 classes N1 (29 dB) and N2 (31 dB).
PON_CLASSES: Mapping[str, float] = {"gpon-b+": 28.0, "gpon-c+": 32.0, "xgs-pon-n1": 29.0,
                                    "xgs-pon-n2": 31.0}


@dataclass(frozen=True)
class LossBudget:
    """Loss parameters of the optical reach of docs/spec.md §2.10, with its defaults.

    Parameters
    ----------
    atten_db_per_km
        Fiber attenuation (single-mode fiber at 1310 nm: 0.35).
    splice_db
        Loss per ``splice`` node traversed.
    splitter_db
        Loss of a splitter by its split ratio.
    fixed_db
        Connectors at both ends.
    budget_db
        The PON class's budget (GPON class B+: 28).
    """

    atten_db_per_km: float = 0.35
    splice_db: float = 0.1
    splitter_db: Mapping[int, float] = field(default_factory=lambda: dict(SPLITTER_DB))
    fixed_db: float = 1.0
    budget_db: float = PON_CLASSES["gpon-b+"]

    def __post_init__(self) -> None:
        problems = [Problem("parameters", None, name, f"must be a finite number >= 0, got {v}")
                    for name, v in (("atten_db_per_km", self.atten_db_per_km),
                                    ("splice_db", self.splice_db),
                                    ("fixed_db", self.fixed_db), ("budget_db", self.budget_db))
                    if not (isinstance(v, int | float) and np.isfinite(v) and v >= 0)]
        problems += [Problem("parameters", None, "splitter_db",
                             f"1:{ratio} must have a finite loss >= 0, got {loss}")
                     for ratio, loss in self.splitter_db.items()
                     if not (np.isfinite(loss) and loss >= 0)]
        if problems:
            raise ValidationError(problems)

    @classmethod
    def preset(cls, pon_class: str, **overrides: Any) -> LossBudget:
        """The defaults with the budget of a named PON class (:data:`PON_CLASSES`)."""
        if pon_class not in PON_CLASSES:
            raise ValidationError([Problem(
                "parameters", None, "pon_class",
                f"unknown PON class {pon_class!r}; one of {', '.join(PON_CLASSES)}")])
        return cls(**{"budget_db": PON_CLASSES[pon_class], **overrides})

    def with_(self, **changes: Any) -> LossBudget:
        """A copy with some parameters changed (``None`` values keep the current one)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def key(self) -> tuple[float, ...]:
        """A hashable identity of the parameters (for caches)."""
        return (self.atten_db_per_km, self.splice_db, self.fixed_db, self.budget_db,
                *(x for r in sorted(self.splitter_db) for x in (r, self.splitter_db[r])))

    def node_loss_db(self, kind: str, split_ratio: float | None) -> float:
        """Loss of passing one node of ``kind`` (a splitter without a ratio adds nothing)."""
        if kind == SPLICE:
            return self.splice_db
        if kind == SPLITTER and split_ratio is not None and not pd.isna(split_ratio):
            return float(self.splitter_db.get(int(split_ratio), 0.0))
        return 0.0


@dataclass(frozen=True)
class VertexNodes:
    """What each vertex of G adds: its node loss, whether it is a splice, its split ratio."""

    loss_db: FloatArray
    is_splice: npt.NDArray[np.bool_]
    split_ratio: FloatArray  #: NaN where the vertex is not a splitter with a ratio


def vertex_nodes(g: AnalysisGraph, nodes: pd.DataFrame, budget: LossBudget, *,
                 split_ratios: Mapping[str, int] | None = None) -> VertexNodes:
    """Node loss of every vertex of G (0 for the super-core S).

    ``split_ratios`` overrides the stored ratio of some splitter nodes (a
    what-if); naming a node that does not exist or is not a splitter, or a
    ratio not in :data:`SPLIT_RATIOS`, is an error naming it.
    """
    node_ids = nodes["node_id"].to_numpy(dtype=object)
    if not split_ratios and g.node_rows is not None and built_from_nodes(g, node_ids):
        # the graph was built from these nodes: their rows, not a lookup by id
        kinds = nodes["kind"].to_numpy(dtype=object)[g.node_rows]
        ratios = (nodes["split_ratio"].to_numpy(dtype=float, na_value=np.nan)[g.node_rows]
                  if "split_ratio" in nodes.columns else np.full(len(g.node_rows), np.nan))
        return _vertex_nodes(g, kinds, ratios, budget)
    kind = pd.Series(nodes["kind"].to_numpy(), index=id_index(node_ids))
    if "split_ratio" in nodes.columns:
        ratio = pd.Series(nodes["split_ratio"].to_numpy(dtype=float, na_value=np.nan),
                          index=nodes["node_id"].to_numpy())
    else:
        ratio = pd.Series(np.nan, index=kind.index)
    if split_ratios:
        unknown = sorted(set(split_ratios) - set(kind.index))
        # a ratio only means something at a splitter: re-splitting a splice or a pole
        # would silently change nothing, or invent plant that is not there
        not_splitter = sorted(n for n in set(split_ratios) - set(unknown)
                              if kind[n] != SPLITTER)
        bad = sorted(n for n, r in split_ratios.items() if r not in SPLIT_RATIOS)
        if unknown or not_splitter or bad:
            raise ValidationError(
                [Problem("nodes", n, "node_id", "no such node") for n in unknown]
                + [Problem("nodes", n, "kind", f"not a splitter (kind {kind[n]}): only a "
                           "splitter's split ratio can change") for n in not_splitter]
                + [Problem("nodes", n, "split_ratio",
                           f"must be one of {', '.join(map(str, SPLIT_RATIOS))}, got "
                           f"{split_ratios[n]}") for n in bad])
        ratio = ratio.copy()
        for node_id, r in split_ratios.items():
            ratio[node_id] = r
    kinds = kind.reindex(id_index(g.node_ids)).to_numpy()
    ratios = ratio.reindex(id_index(g.node_ids)).to_numpy(dtype=float)
    return _vertex_nodes(g, kinds, ratios, budget)


def _vertex_nodes(g: AnalysisGraph, kinds: npt.NDArray[Any], ratios: FloatArray,
                  budget: LossBudget) -> VertexNodes:
    """:class:`VertexNodes` from the kind and split ratio of each entry of ``g.node_ids``."""
    splice = kinds == SPLICE
    is_split = (kinds == SPLITTER) & ~np.isnan(ratios)
    table = np.zeros(max(SPLIT_RATIOS) + 1)
    for r, db in budget.splitter_db.items():
        table[int(r)] = db
    loss = np.zeros(len(g.node_ids))
    loss[splice] = budget.splice_db
    loss[is_split] = table[ratios[is_split].astype(np.int64)]
    per_vertex_loss = np.zeros(g.n_vertices)
    per_vertex_splice = np.zeros(g.n_vertices, dtype=bool)
    per_vertex_ratio = np.full(g.n_vertices, np.nan)
    non_core = ~g.is_core
    at = g.node_vertex[non_core]
    per_vertex_loss[at] = loss[non_core]
    per_vertex_splice[at] = splice[non_core]
    per_vertex_ratio[at] = np.where(is_split, ratios, np.nan)[non_core]
    return VertexNodes(per_vertex_loss, per_vertex_splice, per_vertex_ratio)


@dataclass(frozen=True)
class VertexLoss:
    """``dist`` (dB, ``inf`` where no core reaches) and the Dijkstra tree of every vertex."""

    dist_db: FloatArray
    predecessor: IntArray
    nodes: VertexNodes

    @cached_property
    def path_losses(self) -> tuple[FloatArray, FloatArray]:
        """:func:`path_node_losses` of this tree, made once: every single-premise answer
        (``/analysis/premises/{id}``) needs two entries of it, and it costs a pass over
        every vertex (~15 ms at 1 M premises)."""
        return path_node_losses(self)


def vertex_loss(g: AnalysisGraph, edge_length_m: FloatArray, nodes: VertexNodes,
                budget: LossBudget) -> VertexLoss:
    """``dist(v)`` of docs/spec.md §2.10 for every vertex of G by one Dijkstra from S.

    ``edge_length_m`` is the geodesic length of each edge of G. Arc ``u -> v``
    weighs ``atten * km + node_loss(v)``; parallel spans keep their least arc
    (explicit zero weights stay arcs in scipy's sparse graphs).
    """
    n = g.n_vertices
    if not g.has_core or n == 0:
        return VertexLoss(np.full(n, np.inf), np.full(n, -9999, dtype=np.int64), nodes)
    fiber = budget.atten_db_per_km * np.asarray(edge_length_m, dtype=float) / 1000.0
    keep = g.eu != g.ev
    u = np.concatenate([g.eu[keep], g.ev[keep]])
    v = np.concatenate([g.ev[keep], g.eu[keep]])
    w = np.concatenate([fiber[keep], fiber[keep]]) + nodes.loss_db[v]
    # parallel arcs keep the least weight; only they are grouped (a grouping of every arc
    # by its two ends took ~20 ms at 1 M premises, and few arcs are parallel)
    key = u.astype(np.int64) * n + v
    parallel = pd.Series(key).duplicated(keep=False).to_numpy()
    if parallel.any():
        at = np.flatnonzero(parallel)
        least = pd.Series(w[at]).groupby(key[at], sort=False).min()
        ends = least.index.to_numpy(dtype=np.int64)
        single = ~parallel
        u = np.concatenate([u[single], ends // n])
        v = np.concatenate([v[single], ends % n])
        w = np.concatenate([w[single], least.to_numpy(dtype=float)])
    graph = sp.csr_matrix((w, (u, v)), shape=(n, n))
    dist, pred = dijkstra(graph, directed=True, indices=0, return_predecessors=True)
    return VertexLoss(np.asarray(dist, dtype=float), np.asarray(pred, dtype=np.int64), nodes)


def path_node_losses(loss: VertexLoss) -> tuple[FloatArray, FloatArray]:
    """Splice and splitter dB summed along each vertex's least-loss path from S.

    Prefix sums over the Dijkstra tree by pointer jumping: log(depth) array
    passes, no loop per vertex.
    """
    nodes = loss.nodes
    splice = np.where(nodes.is_splice, nodes.loss_db, 0.0)
    split = np.where(np.isnan(nodes.split_ratio), 0.0, nodes.loss_db)
    parent = np.where(loss.predecessor >= 0, loss.predecessor, 0).astype(np.int64)
    if len(parent) == 0:  # an empty network
        return splice, split
    parent[0] = 0
    splice[0] = split[0] = 0.0
    while (parent != 0).any():
        splice = splice + np.where(parent != 0, splice[parent], 0.0)
        split = split + np.where(parent != 0, split[parent], 0.0)
        parent = parent[parent]
    return splice, split


def entry_end(loss: VertexLoss, g: AnalysisGraph, budget: LossBudget, *, edge: IntArray,
              frac_from: FloatArray, edge_length_m: FloatArray) -> tuple[IntArray, FloatArray]:
    """By which end vertex the light enters each ``edge`` of G to reach a point along it.

    ``frac_from`` is where the point lies, as a fraction of the edge from its
    ``from_node`` end. Returns that end vertex and the loss from S to the point
    (fiber along the edge included, drop and connectors not).
    """
    atten = budget.atten_db_per_km / 1000.0
    length_m = np.asarray(edge_length_m, dtype=float)[edge]
    along_m = length_m * np.nan_to_num(frac_from)
    via_from = loss.dist_db[g.eu[edge]] + atten * along_m
    via_to = loss.dist_db[g.ev[edge]] + atten * (length_m - along_m)
    end: IntArray = np.where(via_from <= via_to, g.eu[edge], g.ev[edge]).astype(np.int64)
    return end, np.minimum(via_from, via_to)


def on_paths(loss: VertexLoss, ends: IntArray) -> npt.NDArray[np.bool_]:
    """Per vertex of G: does it lie on the least-loss path from S to one of ``ends``?

    Walks the Dijkstra tree up from all ends at once, one level per pass.
    """
    marked = np.zeros(len(loss.predecessor), dtype=bool)
    frontier = np.unique(ends[ends > 0])
    while len(frontier):
        frontier = frontier[~marked[frontier]]
        marked[frontier] = True
        up = loss.predecessor[frontier]
        frontier = np.unique(up[up > 0])
    return marked


def premise_loss_db(loss: VertexLoss, g: AnalysisGraph, budget: LossBudget, *,
                    served_edge: IntArray, frac_from: FloatArray, distance_m: FloatArray,
                    edge_length_m: FloatArray) -> dict[str, FloatArray]:
    """``loss_db`` of each premise and its parts; NaN where it is not passed.

    ``frac_from`` is where the attachment point lies along the served span, as
    a fraction of its length from its ``from_node`` end. Besides ``loss_db``
    the result holds ``splitter_db``, ``splice_db`` and ``fiber_km`` of the
    least-loss path (drop included).
    """
    n = len(served_edge)
    out = {k: np.full(n, np.nan) for k in ("loss_db", "splitter_db", "splice_db", "fiber_km")}
    has = served_edge >= 0
    end, reach_db = entry_end(loss, g, budget, edge=served_edge[has], frac_from=frac_from[has],
                              edge_length_m=edge_length_m)
    atten = budget.atten_db_per_km / 1000.0
    out["loss_db"][has] = budget.fixed_db + atten * distance_m[has] + reach_db
    splice, split = loss.path_losses
    out["splice_db"][has] = splice[end]
    out["splitter_db"][has] = split[end]
    fiber_db = out["loss_db"][has] - budget.fixed_db - splice[end] - split[end]
    if budget.atten_db_per_km > 0:
        out["fiber_km"][has] = fiber_db / budget.atten_db_per_km
    return out


def loss_breakdown(loss: VertexLoss, g: AnalysisGraph, budget: LossBudget, *, edge: int,
                   frac_from: float, distance_m: float,
                   edge_length_m: FloatArray) -> dict[str, Any]:
    """Where the loss of one passed location goes: fiber, splices, splitters, fixed.

    Follows the Dijkstra tree back from the better end of the served span;
    the parts add up to its ``loss_db``.
    """
    length = float(edge_length_m[edge])
    atten = budget.atten_db_per_km / 1000.0
    ends = ((int(g.eu[edge]), length * frac_from), (int(g.ev[edge]), length * (1 - frac_from)))
    end, along_m = min(ends, key=lambda t: loss.dist_db[t[0]] + atten * t[1])
    path: list[int] = []
    v = end
    while v > 0:
        path.append(v)
        v = int(loss.predecessor[v])
    path.reverse()
    vertex_node = g.vertex_node  # made once per graph
    nodes = loss.nodes
    # the fiber part of dist(end) is what its node losses leave
    path_fiber_db = float(loss.dist_db[end] - nodes.loss_db[path].sum()) if path else 0.0
    splices = [p for p in path if nodes.is_splice[p]]
    split_at = [p for p in path if not np.isnan(nodes.split_ratio[p])]
    splitters = [{"node_id": str(vertex_node[p]), "ratio": int(nodes.split_ratio[p]),
                  "loss_db": float(nodes.loss_db[p])} for p in split_at]
    fiber_db = path_fiber_db + atten * (along_m + distance_m)
    splice_db = float(nodes.loss_db[splices].sum())
    splitter_db = float(nodes.loss_db[split_at].sum())
    return {
        "fiber_km": fiber_db / budget.atten_db_per_km if budget.atten_db_per_km else
        (along_m + distance_m) / 1000.0 + _path_km(g, path, edge_length_m),
        "fiber_db": fiber_db,
        "splices": len(splices),
        "splice_db": splice_db,
        "splitters": splitters,
        "splitter_db": splitter_db,
        "fixed_db": budget.fixed_db,
        "loss_db": budget.fixed_db + fiber_db + splice_db + splitter_db,
        "path": [str(vertex_node[p]) for p in path],
    }


def _path_km(g: AnalysisGraph, path: list[int], edge_length_m: FloatArray) -> float:
    """Length of the tree path S -> path[-1] when the fiber part carries no loss to divide."""
    total = 0.0
    prev = 0
    for v in path:
        between = ((g.eu == prev) & (g.ev == v)) | ((g.eu == v) & (g.ev == prev))
        total += float(np.asarray(edge_length_m)[between].min()) / 1000.0
        prev = v
    return total
