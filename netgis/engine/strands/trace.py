"""Tracing the glass (docs/strands.md, "Operations"): every path from every OLT port, the
best path of each drop and premise, and what a cut changes.

:func:`trace_network` walks down from each OLT port once. The walks form a tree per port
(a path branches only at a splitter, into its outputs in port order), so each hop is
stored once, as a vertex with its parent, and a path is its last vertex: the hops of
every path are only expanded into rows when written (:func:`hop_rows`), with numpy.
A walk never loops: validation refuses rings of glass and paths that re-enter a splitter.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from netgis.engine.optics import LossBudget
from netgis.geodesy import geodesic_distance_m
from netgis.schema import DEFAULT_CONNECTOR_DB, IN_SERVICE, TIA598_COLOURS
from netgis.strand_plant import StrandPlant, Terminal, terminal_text

PLANNED = "planned"
#: A change of a premise's best loss beyond this many dB is a reroute.
REROUTE_DB = 0.02
#: Decimals of losses and lengths in the files.
DECIMALS = 4


@dataclass(frozen=True)
class TraceOptions:
    """Loss parameters (analyze's, plus ``connector_db``) and whether planned plant counts."""

    budget: LossBudget = field(default_factory=LossBudget)
    connector_db: float = DEFAULT_CONNECTOR_DB
    include_planned: bool = False


@dataclass(frozen=True)
class CutSet:
    """Spans cut, strands cut (``(cable, strand, span or None)``), nodes and ducts failed."""

    spans: frozenset[str] = frozenset()
    strands: frozenset[tuple[str, int, str | None]] = frozenset()
    nodes: frozenset[str] = frozenset()
    ducts: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.spans or self.strands or self.nodes or self.ducts)


@dataclass
class Trace:
    """The downstream walks of a network: hop vertices (a tree per OLT port) and paths."""

    # hop vertices
    parent: list[int] = field(default_factory=list)
    depth: list[int] = field(default_factory=list)
    hop_type: list[str] = field(default_factory=list)
    ref_id: list[str] = field(default_factory=list)
    cable_id: list[str | None] = field(default_factory=list)
    strand: list[int | None] = field(default_factory=list)
    node_from: list[str] = field(default_factory=list)
    node_to: list[str] = field(default_factory=list)
    span_ids: list[str | None] = field(default_factory=list)
    length_m: list[float | None] = field(default_factory=list)
    loss_db: list[float] = field(default_factory=list)
    cum_db: list[float] = field(default_factory=list)
    # paths
    path_port: list[str] = field(default_factory=list)
    path_pos: list[int] = field(default_factory=list)
    path_leaf: list[int] = field(default_factory=list)
    end_type: list[str] = field(default_factory=list)
    end_id: list[str] = field(default_factory=list)
    drop_row: list[int] = field(default_factory=list)
    # per path sums
    n_splices: list[int] = field(default_factory=list)
    n_connectors: list[int] = field(default_factory=list)
    splitters: list[tuple[str, ...]] = field(default_factory=list)
    fiber_m: list[float] = field(default_factory=list)
    #: the pieces and splitter inputs some path passes: (cable, strand, i0, i1) -> True
    lit_pieces: set[tuple[str, int, int, int]] = field(default_factory=set)
    #: splitter -> least loss (without fixed_db) at any of its inputs
    input_loss: dict[str, float] = field(default_factory=dict)
    #: the walk that made this trace: the plant, the options' losses, the drops' columns
    walker: Any = None

    def path_id(self, p: int) -> str:
        """``olt_port_id/position`` of path ``p``."""
        return f"{self.path_port[p]}/{self.path_pos[p]}"

    def __len__(self) -> int:
        return len(self.path_port)


class _Walker:
    """One trace of a plant under options and a cut."""

    def __init__(self, plant: StrandPlant, options: TraceOptions, cut: CutSet) -> None:
        self.plant, self.options, self.cut = plant, options, cut
        ok_status = {IN_SERVICE, PLANNED} if options.include_planned else {IN_SERVICE}
        self.ok_status = ok_status
        cut_spans = set(cut.spans) | {s for s, d in plant.span_duct.items()
                                      if d is not None and d in cut.ducts}
        self.node_ok = {n: st in ok_status and n not in cut.nodes
                        for n, st in plant.node_status.items()}
        # per cable: prefix counts of bad spans and bad nodes along its path
        # (a short list each: accumulate beats numpy's per-call cost on ten numbers)
        self.bad_span: dict[str, list[int]] = {}
        self.bad_node: dict[str, list[int]] = {}
        self.cable_ok: dict[str, bool] = {}
        span_status, node_ok = plant.span_status, self.node_ok
        for c, cab in plant.cables.items():
            self.cable_ok[c] = cab.status in ok_status
            self.bad_span[c] = list(itertools.accumulate(
                (span_status[s] not in ok_status or s in cut_spans for s in cab.spans),
                initial=0))
            self.bad_node[c] = list(itertools.accumulate(
                (not node_ok[n] for n in cab.nodes), initial=0))
        self.strand_cut: dict[tuple[str, int], set[str] | None] = {}
        for c, k, s in cut.strands:
            if s is None:
                self.strand_cut[(c, k)] = None
            else:
                got = self.strand_cut.setdefault((c, k), set())
                if got is not None:
                    got.add(s)
        conns = plant.tables["connections"]
        self.conn_id = conns["connection_id"].tolist()
        self.conn_node = conns["node_id"].tolist()
        budget = options.budget
        self.conn_loss = [
            (float(loss) if loss is not None else
             budget.splice_db if kind == "splice" else options.connector_db)
            for kind, loss in zip(conns["kind"].tolist(), conns["loss_db"].tolist(), strict=True)]
        self.conn_kind = conns["kind"].tolist()
        drops = plant.tables["drops"]
        self.drop_id = drops["drop_id"].tolist()
        self.drop_node = drops["node_id"].tolist()
        self.drop_premise = drops["premise_id"].tolist()
        self.drop_m = _drop_lengths(plant, drops)
        self.atten_m = budget.atten_db_per_km / 1000.0
        #: the span_ids text of a stretch of a cable, made once for all its strands
        self.span_text: dict[tuple[str, int, int], str] = {}
        self.split_loss = {
            sid: (loss if loss is not None else float(budget.splitter_db.get(ratio, 0.0)))
            for sid, (_, ratio, _, loss) in plant.splitter.items()}

    def drops_by_premise(self) -> dict[str, list[int]]:
        """The drop rows of each premise (made once)."""
        got = getattr(self, "_by_premise", None)
        if got is None:
            got = defaultdict(list)
            for d, prem in enumerate(self.drop_premise):
                got[prem].append(d)
            self._by_premise = got
        return got

    # what takes part
    def piece_ok(self, c: str, k: int, i0: int, i1: int) -> bool:
        """Whether the piece takes part (statuses, broken strands, the cut)."""
        if not self.cable_ok[c] or self.plant.state.get((c, k)) == "broken":
            return False
        bs, bn = self.bad_span[c], self.bad_node[c]
        if bs[i1] - bs[i0] or bn[i1 + 1] - bn[i0]:
            return False
        if (c, k) in self.strand_cut:
            spans = self.strand_cut[(c, k)]
            if spans is None:
                return False
            if spans.intersection(self.plant.cables[c].spans[i0:i1]):
                return False
        return True

    def conn_of(self, t: Terminal) -> tuple[int, Terminal] | None:
        got = self.plant.conn_at.get(t)
        if got is None or not self.node_ok[self.conn_node[got[0]]]:
            return None
        return got

    def drop_of(self, t: Terminal) -> int | None:
        d = self.plant.drop_at.get(t)
        if d is None or not self.node_ok[self.drop_node[d]]:
            return None
        return d

    # the walk
    def run(self, ports: Iterable[str]) -> Trace:
        tr = Trace()
        self.tr = tr
        # a hop vertex is one row while walking, the columns of the trace after
        self.rows: list[tuple[Any, ...]] = []
        for port in ports:
            node = self.plant.olt_node.get(port)
            if node is None or not self.node_ok[node]:
                continue
            self.port, self.pos = port, 0
            self._leave(("olt", port), -1, 0.0, (0, 0, (), 0.0))
        if self.rows:
            (tr.parent, tr.depth, tr.hop_type, tr.ref_id, tr.cable_id, tr.strand, tr.node_from,
             tr.node_to, tr.span_ids, tr.length_m, tr.loss_db, tr.cum_db) = (
                list(column) for column in zip(*self.rows, strict=True))
        del self.rows
        return tr

    def _vertex(self, parent: int, kind: str, ref: str, cable: str | None, strand: int | None,
                nfrom: str, nto: str, spans: str | None, length: float | None,
                loss: float, cum: float) -> int:
        rows = self.rows
        rows.append((parent, 1 if parent < 0 else rows[parent][1] + 1, kind, ref, cable, strand,
                     nfrom, nto, spans, length, loss, cum))
        return len(rows) - 1

    def _end(self, leaf: int, kind: str, end_id: str, drop: int,
             sums: tuple[int, int, tuple[str, ...], float]) -> None:
        tr = self.tr
        self.pos += 1
        tr.path_port.append(self.port)
        tr.path_pos.append(self.pos)
        tr.path_leaf.append(leaf)
        tr.end_type.append(kind)
        tr.end_id.append(end_id)
        tr.drop_row.append(drop)
        tr.n_splices.append(sums[0])
        tr.n_connectors.append(sums[1])
        tr.splitters.append(sums[2])
        tr.fiber_m.append(sums[3])

    def _leave(self, t: Terminal, parent: int, cum: float,
               sums: tuple[int, int, tuple[str, ...], float]) -> None:
        """Follow the glass out of terminal ``t`` (reached along the glass or a splitter)."""
        while True:
            got = self.conn_of(t)
            if got is None:
                d = self.drop_of(t)
                if d is not None:
                    node = self.drop_node[d]
                    length = self.drop_m[d]
                    loss = self.atten_m * length
                    v = self._vertex(parent, "drop", self.drop_id[d], None, None, node, node,
                                     None, length, loss, cum + loss)
                    self._end(v, "premise", self.drop_premise[d], d, sums)
                elif parent >= 0:  # an OLT port with nothing connected has no path
                    self._end(parent, "open", terminal_text(t), -1, sums)
                return
            row, other = got
            node = self.conn_node[row]
            loss = self.conn_loss[row]
            cum += loss
            parent = self._vertex(parent, "connection", self.conn_id[row], None, None, node,
                                  node, None, None, loss, cum)
            splice = self.conn_kind[row] == "splice"
            sums = (sums[0] + splice, sums[1] + (not splice), sums[2], sums[3])
            kind = other[0]
            if kind == "olt":
                self._end(parent, "olt", other[1], -1, sums)
                return
            if kind == "out":
                self._end(parent, "reversed_splitter", terminal_text(other), -1, sums)
                return
            if kind == "in":
                sid = other[1]
                prev = self.tr.input_loss.get(sid)
                if prev is None or cum < prev:
                    self.tr.input_loss[sid] = cum
                loss = self.split_loss[sid]
                cum += loss
                v = self._vertex(parent, "splitter", sid, None, None, node, node, None, None,
                                 loss, cum)
                out_sums = (sums[0], sums[1], (*sums[2], sid), sums[3])
                for o in range(1, self.plant.splitter[sid][1] + 1):
                    self._leave(("out", sid, o), v, cum, out_sums)
                return
            # a strand: cross its piece to the far end
            piece = self.plant.piece_of(other)
            if piece is None or not self.piece_ok(*piece):
                self._end(parent, "open", terminal_text(other), -1, sums)
                return
            c, k, i0, i1 = piece
            cab = self.plant.cables[c]
            self.tr.lit_pieces.add(piece)
            length = cab.cum_m[i1] - cab.cum_m[i0]
            loss = self.atten_m * length
            cum += loss
            forward = other[3] == i0
            a, b = (i0, i1) if forward else (i1, i0)
            spans = self.span_text.get((c, i0, i1))
            if spans is None:
                spans = self.span_text[(c, i0, i1)] = ";".join(sorted(cab.spans[i0:i1]))
            parent = self._vertex(parent, "piece", c, c, k, cab.nodes[a], cab.nodes[b],
                                  spans, length, loss, cum)
            sums = (sums[0], sums[1], sums[2], sums[3] + length)
            t = ("strand", c, k, b, "from" if forward else "to")


def _drop_lengths(plant: StrandPlant, drops: pd.DataFrame) -> list[float]:
    """Each drop's length: ``length_m``, else the geodesic distance from its node to its
    premise."""
    given = drops["length_m"].tolist()
    out = [float(x) if x is not None else np.nan for x in given]
    need = [i for i, x in enumerate(given) if x is None]
    if need:
        node_ids, prem_ids = drops["node_id"].tolist(), drops["premise_id"].tolist()
        n = [plant.node_lonlat[node_ids[i]] for i in need]
        p = [plant.premise_lonlat[prem_ids[i]] for i in need]
        dist = geodesic_distance_m([a[0] for a in n], [a[1] for a in n],
                                   [b[0] for b in p], [b[1] for b in p])
        for i, d in zip(need, dist.tolist(), strict=True):
            out[i] = d
    return out


def trace_network(plant: StrandPlant, options: TraceOptions | None = None,
                  cut: CutSet | None = None, ports: Iterable[str] | None = None) -> Trace:
    """Every downstream path from ``ports`` (all OLT ports by default, in code-point order)."""
    walker = _Walker(plant, options or TraceOptions(), cut or CutSet())
    chosen = sorted(plant.olt_node) if ports is None else list(ports)
    trace = walker.run(chosen)
    trace.walker = walker
    return trace


# ---- answers built on a trace ---------------------------------------------------------------

def path_losses(trace: Trace, options: TraceOptions) -> np.ndarray:
    """Loss of each path: fixed_db plus the sum of its hops."""
    arr = trace_arrays(trace)
    leaf = arr["leaf"]
    return options.budget.fixed_db + (arr["cum_db"][leaf] if len(leaf) else np.zeros(0))


@dataclass
class Best:
    """The best path of each drop and of each premise (least loss, then lowest path_id)."""

    drop_path: dict[int, int]
    premise_path: dict[str, int]


def best_paths(trace: Trace, losses: np.ndarray) -> Best:
    """The best path of each drop and each premise reached."""
    drop_path: dict[int, int] = {}
    premise_path: dict[str, int] = {}
    walker = trace.walker
    for p in np.flatnonzero(np.asarray(trace.drop_row) >= 0).tolist():
        d = trace.drop_row[p]
        key = (losses[p], trace.path_id(p))
        cur = drop_path.get(d)
        if cur is None or key < (losses[cur], trace.path_id(cur)):
            drop_path[d] = p
        prem = walker.drop_premise[d]
        cur = premise_path.get(prem)
        if cur is None or key < (losses[cur], trace.path_id(cur)):
            premise_path[prem] = p
    return Best(drop_path, premise_path)


def path_frame(trace: Trace, options: TraceOptions, keep: np.ndarray | None = None
               ) -> pd.DataFrame:
    """``trace_paths.csv``: one row per path."""
    walker = trace.walker
    losses = path_losses(trace, options)
    drop = np.asarray(trace.drop_row, dtype=np.int64)
    has = drop >= 0
    dm = np.array([*walker.drop_m, np.nan], dtype=float)[np.where(has, drop, -1)] \
        if len(drop) else np.zeros(0)
    frame = pd.DataFrame({
        "olt_port_id": pd.Series(trace.path_port, dtype=object),
        "path_id": pd.Series([f"{a}/{b}" for a, b in zip(trace.path_port, trace.path_pos,
                                                         strict=True)], dtype=object),
        "end_type": pd.Series(trace.end_type, dtype=object),
        "end_id": pd.Series(trace.end_id, dtype=object),
        "drop_id": pd.Series([walker.drop_id[d] if d >= 0 else None for d in trace.drop_row],
                             dtype=object),
        "premise_id": pd.Series([walker.drop_premise[d] if d >= 0 else None
                                 for d in trace.drop_row], dtype=object),
        "n_splices": np.asarray(trace.n_splices, dtype=np.int64),
        "n_connectors": np.asarray(trace.n_connectors, dtype=np.int64),
        "splitter_ids": pd.Series([";".join(sorted(s)) for s in trace.splitters], dtype=object),
        "fiber_m": np.round(np.asarray(trace.fiber_m, dtype=float), DECIMALS),
        "drop_m": np.round(dm, DECIMALS),
        "loss_db": np.round(losses, DECIMALS),
        "margin_db": np.round(options.budget.budget_db - losses, DECIMALS),
        "in_budget": losses <= options.budget.budget_db,
    })
    if keep is not None:
        frame = frame[keep].reset_index(drop=True)
    return frame


def trace_arrays(trace: Trace) -> dict[str, np.ndarray]:
    """The hop vertices' columns as numpy arrays, made once per trace (an answer about a
    few paths then costs its rows, not the whole tree)."""
    got = getattr(trace, "_arrays", None)
    if got is not None:
        return got  # type: ignore[no-any-return]
    walker = trace.walker
    cables = walker.plant.cables
    # None -> NaN (numpy does it when asked for floats)
    strand = np.array(trace.strand, dtype=float)
    # fibers per tube of each hop's cable: per distinct cable, then by code (-1: none)
    codes, uniques = pd.factorize(np.asarray(trace.cable_id, dtype=object))
    per_cable = np.array([*(cables[c].fibers_per_tube for c in uniques), np.nan], dtype=float)
    per_tube = per_cable[codes] if len(codes) else np.zeros(0)
    has = ~np.isnan(strand)
    tube = np.full(len(strand), np.nan)
    tube[has] = (strand[has] - 1) // per_tube[has] + 1
    colour = np.full(len(strand), None, dtype=object)
    position = strand[has] - (tube[has] - 1) * per_tube[has]
    colour[has] = np.asarray(TIA598_COLOURS, dtype=object)[((position - 1) % 12).astype(int)]
    arrays = {
        "parent": np.asarray(trace.parent, dtype=np.int64),
        "depth": np.asarray(trace.depth, dtype=np.int64),
        "leaf": np.asarray(trace.path_leaf, dtype=np.int64),
        "hop_type": np.asarray(trace.hop_type, dtype=object),
        "ref_id": np.asarray(trace.ref_id, dtype=object),
        "cable_id": np.asarray(trace.cable_id, dtype=object),
        "strand": strand, "tube": tube, "colour": colour,
        "node_from": np.asarray(trace.node_from, dtype=object),
        "node_to": np.asarray(trace.node_to, dtype=object),
        "span_ids": np.asarray(trace.span_ids, dtype=object),
        "length_m": np.array(trace.length_m, dtype=float),
        "loss_db": np.asarray(trace.loss_db, dtype=float),
        "cum_db": np.asarray(trace.cum_db, dtype=float),
    }
    trace._arrays = arrays  # type: ignore[attr-defined]
    return arrays


def _objects(columns: dict[str, Any]) -> pd.DataFrame:
    """A frame whose text columns stay Python objects (no Arrow string inference: the
    writers take them as they are, and inferring costs seconds at a million rows)."""
    return pd.DataFrame({k: pd.Series(v, dtype=object) if isinstance(v, np.ndarray)
                         and v.dtype == object else v for k, v in columns.items()})


#: The hop columns that are text, kept per trace as Arrow arrays for :func:`hop_rows`.
_HOP_TEXT = ("hop_type", "ref_id", "cable_id", "colour", "node_from", "node_to", "span_ids")


def _arrow_text(trace: Trace) -> dict[str, pa.Array]:
    """The hop vertices' text columns as Arrow strings, made once per trace."""
    got = getattr(trace, "_arrow_text", None)
    if got is not None:
        return got  # type: ignore[no-any-return]
    arr = trace_arrays(trace)
    made = {name: pa.array(arr[name], type=pa.string(), from_pandas=True)
            for name in _HOP_TEXT}
    trace._arrow_text = made  # type: ignore[attr-defined]
    return made


def hop_rows(trace: Trace, paths: np.ndarray | None = None, *,
             arrow: bool = False) -> pd.DataFrame:
    """``trace_hops.csv``: the hops of each path (all, or those numbered in ``paths``),
    expanded from the vertex tree.

    Text columns are Python objects (None for a null); with ``arrow`` they are Arrow
    strings taken from the vertices' columns in C++ (what the file writer wants: a
    million rows are not made into Python strings and back).
    """
    arr = trace_arrays(trace)
    parent, leaf_all = arr["parent"], arr["leaf"]
    chosen = np.arange(len(leaf_all)) if paths is None else np.asarray(paths, dtype=np.int64)
    leaf = leaf_all[chosen]
    n_hops = arr["depth"][leaf] if len(leaf) else np.zeros(0, dtype=np.int64)
    total = int(n_hops.sum())
    row_path = np.repeat(np.arange(len(leaf)), n_hops)
    starts = np.concatenate([[0], np.cumsum(n_hops)[:-1]]) if len(leaf) else np.zeros(0, int)
    offset = np.arange(total) - np.repeat(starts, n_hops)  # 0 at the first hop
    up = np.repeat(n_hops, n_hops) - 1 - offset  # steps from the leaf
    vert = np.repeat(leaf, n_hops)
    step = 0
    while True:
        move = up > step
        if not move.any():
            break
        vert[move] = parent[vert[move]]
        step += 1
    ids = np.array([trace.path_id(p) for p in chosen.tolist()], dtype=object)
    text: dict[str, Any]
    if arrow:
        at = pa.array(vert, type=pa.int64())
        text = {name: pd.arrays.ArrowExtensionArray(column.take(at))
                for name, column in _arrow_text(trace).items()}
        text["path_id"] = pd.arrays.ArrowExtensionArray(
            pa.array(ids, type=pa.string()).take(pa.array(row_path, type=pa.int64())))
    else:
        text = {name: arr[name][vert] for name in _HOP_TEXT}
        text["path_id"] = ids[row_path] if total else np.zeros(0, dtype=object)
    return _objects({
        "path_id": text["path_id"],
        "seq": offset + 1,
        "hop_type": text["hop_type"],
        "ref_id": text["ref_id"],
        "cable_id": text["cable_id"],
        "strand": pd.array(arr["strand"][vert], dtype="Int64"),
        "tube": pd.array(arr["tube"][vert], dtype="Int64"),
        "colour": text["colour"],
        "node_from": text["node_from"],
        "node_to": text["node_to"],
        "span_ids": text["span_ids"],
        "length_m": np.round(arr["length_m"][vert], DECIMALS),
        "loss_db": np.round(arr["loss_db"][vert], DECIMALS),
        "cum_loss_db": np.round(arr["cum_db"][vert], DECIMALS),
    })


def upstream_frame(trace: Trace, options: TraceOptions, best: Best,
                   premises: set[str] | None = None) -> pd.DataFrame:
    """``upstream.csv``: one row per drop, connected (its best path) or open."""
    walker = trace.walker
    rows: list[tuple[Any, ...]] = []
    if premises is None:
        wanted: Iterable[int] = range(len(walker.drop_id))
        every = path_losses(trace, options)
        loss_of: Callable[[int], float] = lambda path: float(every[path])  # noqa: E731
    else:
        by_premise = walker.drops_by_premise()
        wanted = sorted(d for p in premises for d in by_premise.get(p, ()))
        # a few premises (one per API request): the losses of their paths alone
        arr = trace_arrays(trace)
        leaf, cum_db, fixed_db = arr["leaf"], arr["cum_db"], options.budget.fixed_db
        loss_of = lambda path: fixed_db + float(cum_db[leaf[path]])  # noqa: E731
    for d in wanted:
        did, prem = walker.drop_id[d], walker.drop_premise[d]
        p = best.drop_path.get(d)
        if p is None:
            rows.append((prem, did, "open", None, None, np.nan, None))
        else:
            loss = loss_of(p)
            rows.append((prem, did, "connected", trace.path_port[p], trace.path_id(p),
                         round(loss, DECIMALS), loss <= options.budget.budget_db))
    frame = pd.DataFrame(rows, columns=["premise_id", "drop_id", "status", "olt_port_id",
                                        "path_id", "loss_db", "in_budget"])
    frame["loss_db"] = frame["loss_db"].astype(float)
    frame["in_budget"] = frame["in_budget"].astype("boolean")
    return frame.sort_values(["premise_id", "drop_id"], key=_codepoints,
                             kind="stable").reset_index(drop=True)


def _codepoints(s: pd.Series) -> pd.Series:
    return s.map(lambda v: "" if v is None else str(v))


def cut_frame(before: Trace, after: Trace, options: TraceOptions, b0: Best, b1: Best,
              units: Mapping[str, int]) -> pd.DataFrame:
    """``cut_premises.csv``: premises lost or rerouted by a cut."""
    l0, l1 = path_losses(before, options), path_losses(after, options)
    rows: list[tuple[Any, ...]] = []
    for prem in sorted(b0.premise_path):
        p0 = b0.premise_path[prem]
        p1 = b1.premise_path.get(prem)
        port0, loss0 = before.path_port[p0], float(l0[p0])
        if p1 is None:
            rows.append((prem, units.get(prem, 0), "lost", port0, None, round(loss0, DECIMALS),
                         np.nan))
            continue
        port1, loss1 = after.path_port[p1], float(l1[p1])
        if port1 != port0 or abs(loss1 - loss0) > REROUTE_DB:
            rows.append((prem, units.get(prem, 0), "rerouted", port0, port1,
                         round(loss0, DECIMALS), round(loss1, DECIMALS)))
    frame = pd.DataFrame(rows, columns=["premise_id", "units", "status", "olt_port_before",
                                        "olt_port_after", "loss_before_db", "loss_after_db"])
    for col in ("loss_before_db", "loss_after_db"):
        frame[col] = frame[col].astype(float)
    frame["units"] = frame["units"].astype(np.int64)
    return frame


def dark_splitters(before: Trace, after: Trace) -> list[str]:
    """Splitters live before a cut and not after it."""
    return sorted(set(before.input_loss) - set(after.input_loss))


def ports_per_premise(trace: Trace) -> dict[str, set[str]]:
    """The OLT ports whose paths reach each premise reached from more than one port."""
    walker = trace.walker
    drop = np.asarray(trace.drop_row, dtype=np.int64)
    has = np.flatnonzero(drop >= 0)
    if not len(has):
        return {}
    prem = np.asarray(walker.drop_premise, dtype=object)[drop[has]]
    port = np.asarray(trace.path_port, dtype=object)[has]
    pairs = pd.DataFrame({"p": pd.Series(prem, dtype=object),
                          "o": pd.Series(port, dtype=object)}).drop_duplicates()
    many = pairs[pairs.duplicated("p", keep=False)]
    out: dict[str, set[str]] = defaultdict(set)
    for p, o in zip(many["p"].tolist(), many["o"].tolist(), strict=True):
        out[p].add(o)
    return out
