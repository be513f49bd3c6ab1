"""Brute-force reference for the strand-level model (tests only).

Reads a dataset directory (route layers as ``<layer>.geojson`` or
``.parquet``, strand layers as ``<layer>.csv`` or ``.parquet``), cuts every
strand into pieces, enumerates every downstream path from every OLT port by
plain recursive depth-first search, and derives the trace, upstream, cut,
capacity and diversity answers from that list of paths. Nothing clever:
every answer is read off the full enumeration.

The rules, in this file's words
-------------------------------
* A cable's spans in ``seq`` order give its node sequence v0..vn. Strand k
  is cut at v0, vn and every node where a connection or drop (any, whatever
  its status) names (cable, k); between two cut nodes lies one piece, whose
  length is the sum of the WGS84 geodesic lengths of its spans. At v0 a
  terminal without a side is the ``to`` side, at vn the ``from`` side.
* A piece takes part when its cable, every span it covers and every node it
  visits (ends and express nodes) are in service (``planned`` counts too with
  include_planned), its strand is not ``broken`` and no cut removes it.
  Connections, splitters, OLT ports and drops take part when their node is
  in service (or planned, with include_planned) and not failed.
* Losses: piece ``atten_db_per_km * km``; connection its ``loss_db`` or
  splice_db (0.1) / connector_db (0.5) by kind; splitter its ``loss_db`` or
  the table by ratio; drop ``atten_db_per_km`` times ``length_m`` or the
  geodesic distance from its node to the premise, in km (``length_m`` is
  meters). A path's loss is fixed_db plus its hop losses; cum_loss_db leaves
  fixed_db out; in_budget iff loss <= budget_db.

Readings of points the model leaves open (the engine is checked against them)
------------------------------------------------------------------------------
1. DFS order: a terminal has at most one connection or drop, so the only
   branching is at a splitter input, whose outputs are taken 1..ratio. Every
   output is a path of its own: an output with nothing connected ends the
   path ``open`` at ``out:SP:n`` ("a terminal with nothing further").
   path_id counts paths (leaves) in that order, from 1, per OLT port.
2. A connection may be reached from either side (a or b).
3. A ``premise`` end has end_id = premise_id (drop_id and premise_id set).
4. Lists in a cell (span_ids of a hop, splitter_ids of a path) are sorted in
   code-point order, not in travel order.
5. Hop columns: seq counts from 1; ``tube`` is the tube number t and
   ``colour`` the strand's colour name, both only on pieces; cable_id,
   strand, span_ids only on pieces; node_from/node_to follow the direction of
   travel; a connection's and a splitter's hop has node_from = node_to = its
   node and no length (empty; 0 is accepted by the tests); a drop's hop has
   node_from = the drop's node, node_to empty (the drop's node is accepted
   too), length_m the drop length.
6. upstream.csv lists every drop of the dataset (with --premise: of those
   premises). A drop is ``connected`` when some downstream path ends at it;
   its row then names that drop's best path (least loss, ties lowest path_id
   in code-point order). An ``open`` row has olt_port_id, path_id and loss_db
   empty and in_budget false (an empty in_budget is accepted by the tests).
   Drops left out (node not in service) are ``open``.
7. A premise's best path is over the paths ending at any of its drops.
   Loss ties are judged on losses rounded to 1e-9 dB.
8. Cut: a failed node also makes every piece visiting it (express too) and
   its drops leave; a failed duct cuts every span carrying that duct_id;
   ``C:k`` removes every piece of strand k of C, ``C:k@S`` the piece covering
   span S. ``rerouted``: connected before and after, and the best path's OLT
   port differs or |loss after - loss before| > 0.02 dB. cut_premises lists
   only lost and rerouted premises; for a lost one the *_after cells are
   empty. Splitters left dark: live before, not live after.
9. Capacity: ``lit`` uses the plain trace (no cut, in-service plant only);
   ``cables`` and ``strands_total`` count the in-service cables on the span;
   every span with status in_service gets a row (whatever its nodes).
   splitter_ports.csv lists every splitter; the ``ports_free`` KPI sums
   ports_free over splitters whose node is in service. ``ports_used`` counts
   outputs named by any connection or drop, whatever their status.
10. Premise capacity: ``passed`` is netgis analyze's (route layers only, the
   same drop_m); ``connected`` iff a downstream path ends at one of its drops;
   not connected: loss_db empty, in_budget false. ``connectable`` needs a
   live splitter with ports_free > 0 whose node lies within drop_m
   (geodesic, <=) and input_loss_db + the splitter's loss + atten * km +
   fixed_db <= budget_db; nearest_splitter_id is the nearest splitter among
   those that satisfy all of that (ties: lowest splitter_id).
11. Diversity: the nodes of a path are every node of its pieces (express ones
   too) and the nodes of its connections and splitters, minus that path's
   own OLT port node and drop node; shared sets are the intersections.
12. The state before a cut is the same trace without the cut (same
   include_planned and loss parameters).
13. "Losses have 4 decimals": rounded to 0.0001 dB (so 26.282 is fine, as the
   project's other CSVs write numbers); lengths are compared to 0.5 %.
"""

from __future__ import annotations

import itertools
import math
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from pyproj import Geod

GEOD = Geod(ellps="WGS84")
COLOURS = ("blue", "orange", "green", "brown", "slate", "white", "red", "black", "yellow",
           "violet", "rose", "aqua")
SPLITTER_DB = {2: 3.7, 4: 7.3, 8: 10.5, 16: 13.7, 32: 17.1, 64: 20.5, 128: 23.7}
STRAND_LAYERS = ("cables", "cable_spans", "splitters", "olt_ports", "connections", "drops",
                 "strand_state")

PATH_COLUMNS = ("olt_port_id", "path_id", "end_type", "end_id", "drop_id", "premise_id",
                "n_splices", "n_connectors", "splitter_ids", "fiber_m", "drop_m", "loss_db",
                "margin_db", "in_budget")
HOP_COLUMNS = ("path_id", "seq", "hop_type", "ref_id", "cable_id", "strand", "tube", "colour",
               "node_from", "node_to", "span_ids", "length_m", "loss_db", "cum_loss_db")
UPSTREAM_COLUMNS = ("premise_id", "drop_id", "status", "olt_port_id", "path_id", "loss_db",
                    "in_budget")
CUT_COLUMNS = ("premise_id", "units", "status", "olt_port_before", "olt_port_after",
               "loss_before_db", "loss_after_db")
SPAN_CAPACITY_COLUMNS = ("span_id", "cables", "strands_total", "lit", "assigned", "reserved",
                         "broken", "free")
SPLITTER_PORT_COLUMNS = ("splitter_id", "node_id", "ratio", "ports_used", "ports_free", "live",
                         "input_loss_db")
PREMISE_CAPACITY_COLUMNS = ("premise_id", "units", "passed", "connected", "loss_db",
                            "in_budget", "connectable", "nearest_splitter_id")
DIVERSITY_KEYS = ("diverse_span", "diverse_duct", "diverse_node", "shared_spans",
                  "shared_ducts", "shared_nodes")

#: A terminal: (type, id, num, side, node). Strands carry side and node; olt/in/out
#: carry num (0 for olt) and empty side and node (their node is their equipment's).
Term = tuple[str, str, int, str, str]


@dataclass(frozen=True)
class Params:
    """Loss parameters and limits (the defaults of the model)."""

    atten_db_per_km: float = 0.35
    splice_db: float = 0.1
    connector_db: float = 0.5
    fixed_db: float = 1.0
    budget_db: float = 28.0
    drop_m: float = 150.0


@dataclass(frozen=True)
class Cut:
    """What a cut removes: spans, strands (C:k), strands on a span (C:k@S), nodes, ducts."""

    spans: frozenset[str] = frozenset()
    strands: frozenset[tuple[str, int]] = frozenset()
    strands_on: frozenset[tuple[str, int, str]] = frozenset()
    nodes: frozenset[str] = frozenset()
    ducts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, spans: Iterable[str] = (), strands: Iterable[str] = (),
              nodes: Iterable[str] = (), ducts: Iterable[str] = ()) -> Cut:
        """A cut from command-line style values (``C:k`` or ``C:k@S`` for strands)."""
        whole, on = set(), set()
        for text in strands:
            head, _, span = text.partition("@")
            cable, _, num = head.rpartition(":")
            if span:
                on.add((cable, int(num), span))
            else:
                whole.add((cable, int(num)))
        return cls(frozenset(spans), frozenset(whole), frozenset(on), frozenset(nodes),
                   frozenset(ducts))

    def is_empty(self) -> bool:
        """Whether the cut removes nothing."""
        return not (self.spans or self.strands or self.strands_on or self.nodes or self.ducts)


NO_CUT = Cut()


# ---------------------------------------------------------------------------------------
# reading


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _int(text: str, default: int | None = None) -> int | None:
    return default if text == "" else int(float(text))


def _float(text: str) -> float | None:
    return None if text == "" else float(text)


def read_table(directory: Path, name: str) -> list[dict[str, str]]:
    """Rows of a strand layer as text dicts ('' for missing); [] when the file is absent."""
    csv_path, pq_path = directory / f"{name}.csv", directory / f"{name}.parquet"
    if csv_path.exists():
        frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    elif pq_path.exists():
        frame = pd.read_parquet(pq_path)
    else:
        return []
    return [{str(k): _text(v) for k, v in rec.items()} for rec in frame.to_dict("records")]


def read_route(directory: Path, name: str) -> gpd.GeoDataFrame:
    """A route layer in EPSG:4326."""
    for ext in ("geojson", "parquet", "fgb"):
        path = directory / f"{name}.{ext}"
        if path.exists():
            frame = gpd.read_parquet(path) if ext == "parquet" else gpd.read_file(path)
            return frame.to_crs(4326) if frame.crs is not None else frame.set_crs(4326)
    raise FileNotFoundError(directory / name)


@dataclass(frozen=True)
class Piece:
    """One piece of a strand: between cut indices i < j of its cable's node sequence."""

    cable_id: str
    strand: int
    i: int
    j: int
    nodes: tuple[str, ...]    # v_i .. v_j
    spans: tuple[str, ...]    # the spans between them
    length_m: float

    @property
    def start(self) -> Term:
        """The ``to`` terminal at v_i."""
        return ("strand", self.cable_id, self.strand, "to", self.nodes[0])

    @property
    def end(self) -> Term:
        """The ``from`` terminal at v_j."""
        return ("strand", self.cable_id, self.strand, "from", self.nodes[-1])


@dataclass(frozen=True)
class Hop:
    """One hop of a path, in the direction of travel."""

    hop_type: str
    ref_id: str
    node_from: str
    node_to: str | None
    loss_db: float
    length_m: float | None = None
    piece: Piece | None = None
    kind: str = ""                       # a connection's kind

    def span_ids(self) -> list[str]:
        """The spans of a piece hop."""
        return list(self.piece.spans) if self.piece else []


@dataclass
class TracePath:
    """A downstream path from an OLT port."""

    olt_port_id: str
    position: int
    hops: list[Hop]
    end_type: str
    end_id: str
    drop_id: str | None = None
    premise_id: str | None = None
    loss_db: float = 0.0

    @property
    def path_id(self) -> str:
        """olt_port_id/position."""
        return f"{self.olt_port_id}/{self.position}"


def term_text(term: Term) -> str:
    """A terminal written as text (side always written for strands)."""
    kind, ident, num, side, _ = term
    if kind == "strand":
        return f"strand:{ident}:{num}:{side}"
    if kind == "olt":
        return f"olt:{ident}"
    return f"{kind}:{ident}:{num}"


@dataclass
class Network:
    """A strand dataset read from a directory, with its pieces."""

    directory: Path
    node_status: dict[str, str] = field(default_factory=dict)
    node_xy: dict[str, tuple[float, float]] = field(default_factory=dict)
    span_status: dict[str, str] = field(default_factory=dict)
    span_duct: dict[str, str | None] = field(default_factory=dict)
    span_m: dict[str, float] = field(default_factory=dict)
    premise_units: dict[str, int] = field(default_factory=dict)
    premise_xy: dict[str, tuple[float, float]] = field(default_factory=dict)
    cable_status: dict[str, str] = field(default_factory=dict)
    cable_nodes: dict[str, list[str]] = field(default_factory=dict)
    cable_spans: dict[str, list[str]] = field(default_factory=dict)
    cable_fibers: dict[str, tuple[int, int]] = field(default_factory=dict)  # count, per tube
    splitters: dict[str, dict[str, Any]] = field(default_factory=dict)
    olt_node: dict[str, str] = field(default_factory=dict)
    connections: dict[str, dict[str, Any]] = field(default_factory=dict)
    drops: dict[str, dict[str, Any]] = field(default_factory=dict)
    state: dict[tuple[str, int], str] = field(default_factory=dict)
    link: dict[Term, tuple[str, str]] = field(default_factory=dict)   # term -> (conn|drop, id)
    pieces: dict[tuple[str, int], list[Piece]] = field(default_factory=dict)
    piece_at: dict[Term, Piece] = field(default_factory=dict)

    # --- loading ----------------------------------------------------------------------

    @classmethod
    def load(cls, directory: str | Path) -> Network:
        """Read the dataset directory and cut the strands into pieces."""
        net = cls(Path(directory))
        net._load_route()
        net._load_strands()
        net._cut_pieces()
        return net

    def _load_route(self) -> None:
        nodes = read_route(self.directory, "nodes")
        for rec, geom in zip(nodes.to_dict("records"), nodes.geometry, strict=True):
            nid = _text(rec["node_id"])
            self.node_status[nid] = _text(rec.get("status")) or "in_service"
            self.node_xy[nid] = (geom.x, geom.y)  # type: ignore[attr-defined]
        spans = read_route(self.directory, "spans")
        for rec, geom in zip(spans.to_dict("records"), spans.geometry, strict=True):
            sid = _text(rec["span_id"])
            self.span_status[sid] = _text(rec.get("status")) or "in_service"
            self.span_duct[sid] = _text(rec.get("duct_id")) or None
            self.span_m[sid] = GEOD.geometry_length(geom)
        premises = read_route(self.directory, "premises")
        for rec, geom in zip(premises.to_dict("records"), premises.geometry, strict=True):
            pid = _text(rec["premise_id"])
            self.premise_units[pid] = _int(_text(rec.get("units")), 1) or 1
            self.premise_xy[pid] = (geom.x, geom.y)  # type: ignore[attr-defined]

    def _load_strands(self) -> None:
        d = self.directory
        for r in read_table(d, "cables"):
            fc = _int(r["fiber_count"]) or 0
            self.cable_fibers[r["cable_id"]] = (fc, _int(r.get("fibers_per_tube", ""), fc) or fc)
            self.cable_status[r["cable_id"]] = r.get("status") or "in_service"
            self.cable_nodes[r["cable_id"]] = [r["from_node"]]
            self.cable_spans[r["cable_id"]] = []
        rows = sorted(read_table(d, "cable_spans"), key=lambda r: (r["cable_id"], int(r["seq"])))
        span_ends = self._span_ends()
        for r in rows:
            path = self.cable_nodes[r["cable_id"]]
            a, b = span_ends[r["span_id"]]
            nxt = b if a == path[-1] else a
            if path[-1] not in (a, b) or nxt in path:
                raise ValueError(f"broken cable path {r}")
            path.append(nxt)
            self.cable_spans[r["cable_id"]].append(r["span_id"])
        for r in read_table(d, "splitters"):
            ratio = int(r["ratio"])
            loss = _float(r.get("loss_db", ""))
            self.splitters[r["splitter_id"]] = {
                "node": r["node_id"], "ratio": ratio, "inputs": _int(r.get("inputs", ""), 1),
                "loss_db": SPLITTER_DB[ratio] if loss is None else loss}
        for r in read_table(d, "olt_ports"):
            self.olt_node[r["olt_port_id"]] = r["node_id"]
        for r in read_table(d, "strand_state"):
            self.state[(r["cable_id"], int(r["strand"]))] = r["state"]
        for r in read_table(d, "connections"):
            ta = self.term(r["a_type"], r["a_id"], r.get("a_num", ""), r.get("a_side", ""),
                           r["node_id"])
            tb = self.term(r["b_type"], r["b_id"], r.get("b_num", ""), r.get("b_side", ""),
                           r["node_id"])
            self.connections[r["connection_id"]] = {
                "node": r["node_id"], "kind": r["kind"], "a": ta, "b": tb,
                "loss_db": _float(r.get("loss_db", ""))}
            for t in (ta, tb):
                self._link(t, ("conn", r["connection_id"]))
        for r in read_table(d, "drops"):
            src = self.term(r["src_type"], r["src_id"], r.get("src_num", ""),
                            r.get("src_side", ""), r["node_id"])
            self.drops[r["drop_id"]] = {"premise": r["premise_id"], "node": r["node_id"],
                                        "src": src, "length_m": _float(r.get("length_m", ""))}
            self._link(src, ("drop", r["drop_id"]))

    def _span_ends(self) -> dict[str, tuple[str, str]]:
        spans = read_route(self.directory, "spans")
        return {_text(r["span_id"]): (_text(r["from_node"]), _text(r["to_node"]))
                for r in spans.to_dict("records")}

    def _link(self, term: Term, what: tuple[str, str]) -> None:
        if term in self.link:
            raise ValueError(f"terminal {term_text(term)} used twice")
        self.link[term] = what

    def term(self, kind: str, ident: str, num: str, side: str, node: str) -> Term:
        """A terminal from its columns, strand sides filled in at the cable's ends."""
        if kind == "strand":
            path = self.cable_nodes[ident]
            idx = path.index(node)
            if not side:
                if idx not in (0, len(path) - 1):
                    raise ValueError(f"side left out at an interior node: {ident}:{num}")
                side = "to" if idx == 0 else "from"
            return ("strand", ident, int(num), side, node)
        return (kind, ident, _int(num, 0) or 0, "", "")

    def _cut_pieces(self) -> None:
        named: dict[tuple[str, int], set[int]] = {}
        for t in self.link:
            if t[0] == "strand":
                named.setdefault((t[1], t[2]), set()).add(self.cable_nodes[t[1]].index(t[4]))
        for cable_id, path in self.cable_nodes.items():
            n = len(path) - 1
            spans = self.cable_spans[cable_id]
            for k in range(1, self.cable_fibers[cable_id][0] + 1):
                cuts = sorted({0, n} | named.get((cable_id, k), set()))
                pieces = []
                for i, j in itertools.pairwise(cuts):
                    piece = Piece(cable_id, k, i, j, tuple(path[i:j + 1]), tuple(spans[i:j]),
                                  sum(self.span_m[s] for s in spans[i:j]))
                    pieces.append(piece)
                    self.piece_at[piece.start] = piece
                    self.piece_at[piece.end] = piece
                self.pieces[(cable_id, k)] = pieces

    # --- helpers ----------------------------------------------------------------------

    def tube_colour(self, cable_id: str, k: int) -> tuple[int, str]:
        """Tube number and strand colour of strand k."""
        per_tube = self.cable_fibers[cable_id][1]
        t = math.ceil(k / per_tube)
        p = k - (t - 1) * per_tube
        return t, COLOURS[(p - 1) % 12]

    def drop_length_m(self, drop_id: str) -> float:
        """A drop's length: length_m, else node-to-premise geodesic distance."""
        d = self.drops[drop_id]
        if d["length_m"] is not None:
            return float(d["length_m"])
        (x1, y1), (x2, y2) = self.node_xy[d["node"]], self.premise_xy[d["premise"]]
        return float(GEOD.inv(x1, y1, x2, y2)[2])

    def connection_loss(self, conn_id: str, p: Params) -> float:
        """A connection's loss."""
        c = self.connections[conn_id]
        if c["loss_db"] is not None:
            return float(c["loss_db"])
        return p.splice_db if c["kind"] == "splice" else p.connector_db

    def distance_m(self, premise_id: str, node_id: str) -> float:
        """Geodesic distance from a premise to a node."""
        (x1, y1), (x2, y2) = self.premise_xy[premise_id], self.node_xy[node_id]
        return float(GEOD.inv(x1, y1, x2, y2)[2])


# ---------------------------------------------------------------------------------------
# tracing


@dataclass
class Tracer:
    """One trace of a network: what takes part, and the DFS over it."""

    net: Network
    params: Params = Params()
    cut: Cut = NO_CUT
    include_planned: bool = False

    everything: bool = False     #: all glass takes part, whatever its status (checks)

    def ok(self, status: str) -> bool:
        """Whether a status takes part."""
        return (self.everything or status == "in_service"
                or (self.include_planned and status == "planned"))

    def node_up(self, node: str) -> bool:
        """Whether equipment at node takes part (in service and not failed)."""
        return self.ok(self.net.node_status.get(node, "")) and node not in self.cut.nodes

    def piece_up(self, piece: Piece) -> bool:
        """Whether a piece takes part."""
        net, cut = self.net, self.cut
        if not self.ok(net.cable_status[piece.cable_id]):
            return False
        if net.state.get((piece.cable_id, piece.strand)) == "broken" and not self.everything:
            return False
        if (piece.cable_id, piece.strand) in cut.strands:
            return False
        for s in piece.spans:
            if not self.ok(net.span_status[s]) or s in cut.spans:
                return False
            if net.span_duct[s] is not None and net.span_duct[s] in cut.ducts:
                return False
            if (piece.cable_id, piece.strand, s) in cut.strands_on:
                return False
        return all(self.node_up(n) for n in piece.nodes)

    def link_up(self, term: Term) -> tuple[str, str] | None:
        """The connection or drop at a terminal, if it takes part."""
        what = self.net.link.get(term)
        if what is None:
            return None
        rec = self.net.connections[what[1]] if what[0] == "conn" else self.net.drops[what[1]]
        return what if self.node_up(rec["node"]) else None

    def trace_all(self, ports: Iterable[str] | None = None) -> list[TracePath]:
        """Every downstream path from every OLT port that takes part (sorted by port)."""
        paths: list[TracePath] = []
        for port in sorted(ports if ports is not None else self.net.olt_node):
            if not self.node_up(self.net.olt_node[port]):
                continue
            found: list[TracePath] = []
            start: Term = ("olt", port, 0, "", "")
            if self.link_up(start) is not None:
                self._leave(port, start, [], {start}, found)
            paths += found
        return paths

    def _finish(self, port: str, hops: list[Hop], found: list[TracePath], end_type: str,
                end_id: str, drop: str | None = None) -> None:
        loss = self.params.fixed_db + sum(h.loss_db for h in hops)
        premise = self.net.drops[drop]["premise"] if drop else None
        found.append(TracePath(port, len(found) + 1, list(hops), end_type, end_id, drop,
                               premise, loss))

    def _leave(self, port: str, term: Term, hops: list[Hop], seen: set[Term],
               found: list[TracePath]) -> None:
        """At term (reached by a piece or a splitter, or the start): take its link."""
        what = self.link_up(term)
        if what is None:
            self._finish(port, hops, found, "open", term_text(term))
            return
        kind, ident = what
        net = self.net
        if kind == "drop":
            d = net.drops[ident]
            length = net.drop_length_m(ident)
            hop = Hop("drop", ident, d["node"], None,
                      self.params.atten_db_per_km * length / 1000.0, length)
            self._finish(port, [*hops, hop], found, "premise", d["premise"], ident)
            return
        c = net.connections[ident]
        other = c["b"] if c["a"] == term else c["a"]
        hop = Hop("connection", ident, c["node"], c["node"],
                  net.connection_loss(ident, self.params), kind=c["kind"])
        if other in seen:
            raise ValueError(f"loop of glass at {term_text(other)}")
        self._arrive(port, other, [*hops, hop], seen | {other}, found)

    def _arrive(self, port: str, term: Term, hops: list[Hop], seen: set[Term],
                found: list[TracePath]) -> None:
        """At term, reached through its connection."""
        kind = term[0]
        if kind == "olt":
            self._finish(port, hops, found, "olt", term[1])
        elif kind == "out":
            self._finish(port, hops, found, "reversed_splitter", term_text(term))
        elif kind == "in":
            sp = self.net.splitters[term[1]]
            if not self.node_up(sp["node"]):
                self._finish(port, hops, found, "open", term_text(term))
                return
            hop = Hop("splitter", term[1], sp["node"], sp["node"], sp["loss_db"])
            for n in range(1, sp["ratio"] + 1):
                out: Term = ("out", term[1], n, "", "")
                if out in seen:
                    raise ValueError(f"path enters splitter {term[1]} twice")
                self._leave(port, out, [*hops, hop], seen | {out}, found)
        else:
            piece = self.net.piece_at[term]
            if not self.piece_up(piece):
                self._finish(port, hops, found, "open", term_text(term))
                return
            forward = term == piece.start
            far = piece.end if forward else piece.start
            hop = Hop("piece", piece.cable_id, term[4], far[4],
                      self.params.atten_db_per_km * piece.length_m / 1000.0, piece.length_m,
                      piece)
            if far in seen:
                raise ValueError(f"loop of glass at {term_text(far)}")
            self._leave(port, far, [*hops, hop], seen | {far}, found)


def _loss_key(path: TracePath) -> tuple[float, str]:
    return (round(path.loss_db, 9), path.path_id)


def best_by_drop(paths: Sequence[TracePath]) -> dict[str, TracePath]:
    """drop_id -> its best path (least loss, then lowest path_id)."""
    out: dict[str, TracePath] = {}
    for p in paths:
        if p.end_type == "premise" and p.drop_id is not None:
            cur = out.get(p.drop_id)
            if cur is None or _loss_key(p) < _loss_key(cur):
                out[p.drop_id] = p
    return out


def best_by_premise(paths: Sequence[TracePath]) -> dict[str, TracePath]:
    """premise_id -> its best path over all its drops."""
    out: dict[str, TracePath] = {}
    for p in paths:
        if p.end_type == "premise" and p.premise_id is not None:
            cur = out.get(p.premise_id)
            if cur is None or _loss_key(p) < _loss_key(cur):
                out[p.premise_id] = p
    return out


def candidates_by_drop(paths: Sequence[TracePath]) -> dict[str, list[TracePath]]:
    """drop_id -> every path ending at it."""
    out: dict[str, list[TracePath]] = {}
    for p in paths:
        if p.end_type == "premise" and p.drop_id is not None:
            out.setdefault(p.drop_id, []).append(p)
    return out


def live_splitters(paths: Sequence[TracePath]) -> dict[str, float]:
    """splitter_id -> least trace loss to its inputs, fixed_db left out."""
    out: dict[str, float] = {}
    for p in paths:
        cum = 0.0
        for h in p.hops:
            if h.hop_type == "splitter":
                out[h.ref_id] = min(out.get(h.ref_id, math.inf), cum)
            cum += h.loss_db
    return out


def static_errors(net: Network) -> list[str]:
    """Breaches of the strand rules this reference can see (empty for a valid dataset).

    Terminals used twice, sides missing at interior nodes and unknown cables
    or nodes already fail :meth:`Network.load`. Here: equipment at another
    node than its connection or drop, numbers out of range, a connection of a
    terminal to itself, a closed loop of glass, and a path entering a splitter
    it has passed, with every piece taking part whatever its status.
    """
    errors = []
    for cid, c in net.connections.items():
        if c["a"] == c["b"]:
            errors.append(f"connection {cid} joins a terminal to itself")
        errors += [f"connection {cid}: {e}" for e in _term_errors(net, c["a"], c["node"])]
        errors += [f"connection {cid}: {e}" for e in _term_errors(net, c["b"], c["node"])]
    for did, d in net.drops.items():
        if d["src"][0] not in ("strand", "out"):
            errors.append(f"drop {did} from a {d['src'][0]} terminal")
        errors += [f"drop {did}: {e}" for e in _term_errors(net, d["src"], d["node"])]
    errors += _glass_cycles(net)
    tracer = Tracer(net, everything=True)
    try:
        tracer.trace_all()
        for sid, sp in net.splitters.items():   # every splitter as if it were fed
            for n in range(1, sp["inputs"] + 1):
                term: Term = ("in", sid, n, "", "")
                tracer._arrive("check", term, [], {term}, [])
    except ValueError as exc:
        errors.append(str(exc))
    return errors


def _term_errors(net: Network, term: Term, node: str) -> list[str]:
    kind, ident, num, _, _ = term
    if kind == "strand":
        fibers = net.cable_fibers[ident][0]
        return [] if 1 <= num <= fibers else [f"strand {ident}:{num} out of range"]
    if kind == "olt":
        return [] if net.olt_node[ident] == node else [f"OLT port {ident} at another node"]
    sp = net.splitters[ident]
    top = sp["inputs"] if kind == "in" else sp["ratio"]
    out = [] if 1 <= num <= top else [f"{term_text(term)} out of range"]
    return out + ([] if sp["node"] == node else [f"splitter {ident} at another node"])


def _glass_cycles(net: Network) -> list[str]:
    """Closed loops of pieces and connections (union-find over terminals)."""
    parent: dict[Term, Term] = {}

    def root(t: Term) -> Term:
        while parent.setdefault(t, t) != t:
            t = parent[t]
        return t

    edges = [(p.start, p.end) for ps in net.pieces.values() for p in ps]
    edges += [(c["a"], c["b"]) for c in net.connections.values()]
    out = []
    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra == rb:
            out.append(f"closed loop of glass through {term_text(a)}")
        parent[ra] = rb
    return out


# ---------------------------------------------------------------------------------------
# output tables


def paths_frame(paths: Sequence[TracePath], params: Params = Params()) -> pd.DataFrame:
    """trace_paths.csv as the reference sees it."""
    rows = []
    for p in paths:
        drop_m = next((h.length_m for h in p.hops if h.hop_type == "drop"), None)
        rows.append({
            "olt_port_id": p.olt_port_id, "path_id": p.path_id, "end_type": p.end_type,
            "end_id": p.end_id, "drop_id": p.drop_id, "premise_id": p.premise_id,
            "n_splices": sum(1 for h in p.hops if h.hop_type == "connection"
                             and h.kind == "splice"),
            "n_connectors": sum(1 for h in p.hops if h.hop_type == "connection"
                                and h.kind == "connector"),
            "splitter_ids": ";".join(sorted(h.ref_id for h in p.hops
                                            if h.hop_type == "splitter")),
            "fiber_m": sum(h.length_m or 0.0 for h in p.hops if h.hop_type == "piece"),
            "drop_m": drop_m, "loss_db": p.loss_db, "margin_db": params.budget_db - p.loss_db,
            "in_budget": p.loss_db <= params.budget_db})
    return pd.DataFrame(rows, columns=list(PATH_COLUMNS), dtype=object)


def hops_frame(net: Network, paths: Sequence[TracePath]) -> pd.DataFrame:
    """trace_hops.csv as the reference sees it."""
    rows = []
    for p in paths:
        cum = 0.0
        for seq, h in enumerate(p.hops, start=1):
            cum += h.loss_db
            row: dict[str, Any] = {
                "path_id": p.path_id, "seq": seq, "hop_type": h.hop_type, "ref_id": h.ref_id,
                "cable_id": None, "strand": None, "tube": None, "colour": None,
                "node_from": h.node_from, "node_to": h.node_to, "span_ids": None,
                "length_m": h.length_m, "loss_db": h.loss_db, "cum_loss_db": cum}
            if h.piece is not None:
                tube, colour = net.tube_colour(h.piece.cable_id, h.piece.strand)
                row.update(cable_id=h.piece.cable_id, strand=h.piece.strand, tube=tube,
                           colour=colour, span_ids=";".join(sorted(h.piece.spans)))
            rows.append(row)
    return pd.DataFrame(rows, columns=list(HOP_COLUMNS), dtype=object)


def upstream_frame(net: Network, paths: Sequence[TracePath], params: Params = Params(),
                   premises: Iterable[str] | None = None) -> pd.DataFrame:
    """upstream.csv: one row per drop (of the given premises)."""
    wanted = set(premises) if premises is not None else None
    best = best_by_drop(paths)
    rows = []
    for drop_id in sorted(net.drops):
        premise = net.drops[drop_id]["premise"]
        if wanted is not None and premise not in wanted:
            continue
        p = best.get(drop_id)
        if p is None:
            rows.append({"premise_id": premise, "drop_id": drop_id, "status": "open",
                         "olt_port_id": None, "path_id": None, "loss_db": None,
                         "in_budget": False})
        else:
            rows.append({"premise_id": premise, "drop_id": drop_id, "status": "connected",
                         "olt_port_id": p.olt_port_id, "path_id": p.path_id,
                         "loss_db": p.loss_db, "in_budget": p.loss_db <= params.budget_db})
    return pd.DataFrame(rows, columns=list(UPSTREAM_COLUMNS), dtype=object)


def cut_frame(net: Network, before: Sequence[TracePath],
              after: Sequence[TracePath]) -> pd.DataFrame:
    """cut_premises.csv: premises lost or rerouted by a cut."""
    b, a = best_by_premise(before), best_by_premise(after)
    rows = []
    for premise in sorted(b):
        pb, pa = b[premise], a.get(premise)
        if pa is None:
            status = "lost"
        elif pa.olt_port_id != pb.olt_port_id or abs(pa.loss_db - pb.loss_db) > 0.02:
            status = "rerouted"
        else:
            continue
        rows.append({"premise_id": premise, "units": net.premise_units[premise],
                     "status": status, "olt_port_before": pb.olt_port_id,
                     "olt_port_after": pa.olt_port_id if pa else None,
                     "loss_before_db": pb.loss_db, "loss_after_db": pa.loss_db if pa else None})
    return pd.DataFrame(rows, columns=list(CUT_COLUMNS), dtype=object)


@dataclass
class TraceResult:
    """What ``netgis trace`` writes, as the reference sees it."""

    paths: list[TracePath]
    trace_paths: pd.DataFrame
    trace_hops: pd.DataFrame
    upstream: pd.DataFrame
    cut_premises: pd.DataFrame | None
    candidates: dict[str, list[TracePath]]          # drop_id -> paths ending at it
    dark_splitters: list[str]
    before: list[TracePath]                         # the paths without the cut


def trace(net: Network, *, cut: Cut = NO_CUT, include_planned: bool = False,
          params: Params = Params()) -> TraceResult:
    """The trace files of ``netgis trace``, after the cut; ``cut_premises`` (and the dark
    splitters) whenever the cut names anything, else None."""
    after = Tracer(net, params, cut, include_planned).trace_all()
    before, cut_rows, dark = after, None, []
    if not cut.is_empty():
        before = Tracer(net, params, NO_CUT, include_planned).trace_all()
        cut_rows = cut_frame(net, before, after)
        dark = sorted(set(live_splitters(before)) - set(live_splitters(after)))
    return TraceResult(after, paths_frame(after, params), hops_frame(net, after),
                       upstream_frame(net, after, params), cut_rows,
                       candidates_by_drop(after), dark, before)


# ---------------------------------------------------------------------------------------
# capacity


def _passed(directory: Path, drop_m: float) -> dict[str, bool]:
    """netgis analyze's ``passed`` for the route layers of a dataset directory."""
    from netgis.engine.analysis import analyze
    from netgis.io.read import read_dataset

    with tempfile.TemporaryDirectory() as tmp:
        for name in ("nodes", "spans", "premises", "areas"):
            for ext in ("geojson", "parquet", "fgb"):
                if (directory / f"{name}.{ext}").exists():
                    shutil.copy(directory / f"{name}.{ext}", Path(tmp) / f"{name}.{ext}")
        result = analyze(read_dataset(tmp), drop_m=drop_m)
    return {str(pid): bool(v) for pid, v in zip(result.premises["premise_id"],
                                                result.premises["passed"], strict=True)}


def span_capacity_frame(net: Network, paths: Sequence[TracePath]) -> pd.DataFrame:
    """span_capacity.csv: the strands of in-service cables on each in-service span."""
    lit = {(h.piece.cable_id, h.piece.strand, h.piece.i)
           for p in paths for h in p.hops if h.piece is not None}
    rows = []
    for span_id in sorted(net.span_status):
        if net.span_status[span_id] != "in_service":
            continue
        counts = dict.fromkeys(("lit", "assigned", "reserved", "broken", "free"), 0)
        cables = 0
        for cable_id in sorted(net.cable_spans):
            if net.cable_status[cable_id] != "in_service" or \
                    span_id not in net.cable_spans[cable_id]:
                continue
            cables += 1
            idx = net.cable_spans[cable_id].index(span_id)
            for k in range(1, net.cable_fibers[cable_id][0] + 1):
                piece = next(pc for pc in net.pieces[(cable_id, k)] if pc.i <= idx < pc.j)
                counts[_strand_class(net, piece, lit)] += 1
        rows.append({"span_id": span_id, "cables": cables,
                     "strands_total": sum(counts.values()), **counts})
    return pd.DataFrame(rows, columns=list(SPAN_CAPACITY_COLUMNS), dtype=object)


def _strand_class(net: Network, piece: Piece, lit: set[tuple[str, int, int]]) -> str:
    state = net.state.get((piece.cable_id, piece.strand))
    if state == "broken":
        return "broken"
    if (piece.cable_id, piece.strand, piece.i) in lit:
        return "lit"
    if piece.start in net.link or piece.end in net.link:
        return "assigned"
    if state == "reserved":
        return "reserved"
    return "free"


def splitter_ports_frame(net: Network, live: dict[str, float]) -> pd.DataFrame:
    """splitter_ports.csv: every splitter."""
    rows = []
    for sid in sorted(net.splitters):
        sp = net.splitters[sid]
        used = sum(1 for n in range(1, sp["ratio"] + 1) if ("out", sid, n, "", "") in net.link)
        rows.append({"splitter_id": sid, "node_id": sp["node"], "ratio": sp["ratio"],
                     "ports_used": used, "ports_free": sp["ratio"] - used,
                     "live": sid in live, "input_loss_db": live.get(sid)})
    return pd.DataFrame(rows, columns=list(SPLITTER_PORT_COLUMNS), dtype=object)


def premise_capacity_frame(net: Network, paths: Sequence[TracePath], ports: pd.DataFrame,
                           passed: dict[str, bool], params: Params) -> pd.DataFrame:
    """premise_capacity.csv: every premise."""
    best = best_by_premise(paths)
    open_splitters = [r for r in ports.to_dict("records") if r["live"] and r["ports_free"] > 0]
    rows = []
    for pid in sorted(net.premise_units):
        p = best.get(pid)
        nearest, connectable = None, False
        if p is None:
            fits = []
            for r in open_splitters:
                dist = net.distance_m(pid, r["node_id"])
                loss = (r["input_loss_db"] + net.splitters[r["splitter_id"]]["loss_db"]
                        + params.atten_db_per_km * dist / 1000.0 + params.fixed_db)
                if dist <= params.drop_m and loss <= params.budget_db:
                    fits.append((dist, r["splitter_id"]))
            if fits:
                connectable, nearest = True, min(fits)[1]
        rows.append({"premise_id": pid, "units": net.premise_units[pid],
                     "passed": passed.get(pid, False), "connected": p is not None,
                     "loss_db": p.loss_db if p else None,
                     "in_budget": bool(p and p.loss_db <= params.budget_db),
                     "connectable": connectable, "nearest_splitter_id": nearest})
    return pd.DataFrame(rows, columns=list(PREMISE_CAPACITY_COLUMNS), dtype=object)


@dataclass
class CapacityResult:
    """What ``netgis capacity`` writes, as the reference sees it."""

    span_capacity: pd.DataFrame
    splitter_ports: pd.DataFrame
    premise_capacity: pd.DataFrame
    kpis: dict[str, float]


def capacity(net: Network, *, params: Params = Params(),
             passed: dict[str, bool] | None = None) -> CapacityResult:
    """The capacity files (``passed`` from netgis analyze unless given)."""
    paths = Tracer(net, params).trace_all()
    spans = span_capacity_frame(net, paths)
    ports = splitter_ports_frame(net, live_splitters(paths))
    if passed is None:
        passed = _passed(net.directory, params.drop_m)
    premises = premise_capacity_frame(net, paths, ports, passed, params)
    ports_free = sum(int(r["ports_free"]) for r in ports.to_dict("records")
                     if net.node_status.get(r["node_id"]) == "in_service")
    free_km = sum(int(r["free"]) * net.span_m[r["span_id"]] / 1000.0
                  for r in spans.to_dict("records"))
    units = sum(int(r["units"]) for r in premises.to_dict("records") if r["connectable"])
    return CapacityResult(spans, ports, premises,
                          {"units_connectable": units, "ports_free": ports_free,
                           "strands_free_km": free_km})


# ---------------------------------------------------------------------------------------
# diversity


class NotConnectedError(ValueError):
    """A premise of a diversity question has no path from an OLT port."""


def path_sets(net: Network, path: TracePath) -> tuple[set[str], set[str], set[str]]:
    """(spans, non-null ducts, nodes) of a path, per reading 11."""
    spans: set[str] = set()
    nodes: set[str] = set()
    for h in path.hops:
        if h.piece is not None:
            spans.update(h.piece.spans)
            nodes.update(h.piece.nodes)
        elif h.hop_type in ("connection", "splitter"):
            nodes.add(h.node_from)
    nodes.discard(net.olt_node[path.olt_port_id])
    if path.drop_id is not None:
        nodes.discard(net.drops[path.drop_id]["node"])
    ducts = {d for s in spans if (d := net.span_duct[s]) is not None}
    return spans, ducts, nodes


def diversity(net: Network, a: str, b: str, *, params: Params = Params()) -> dict[str, Any]:
    """The diversity JSON of premises a and b."""
    best = best_by_premise(Tracer(net, params).trace_all())
    for pid in (a, b):
        if pid not in best:
            raise NotConnectedError(pid)
    sa, da, na = path_sets(net, best[a])
    sb, db, nb = path_sets(net, best[b])
    shared_spans, shared_ducts, shared_nodes = sa & sb, da & db, na & nb
    diverse_span = not shared_spans
    diverse_duct = diverse_span and not shared_ducts
    return {"diverse_span": diverse_span, "diverse_duct": diverse_duct,
            "diverse_node": diverse_duct and not shared_nodes,
            "shared_spans": sorted(shared_spans), "shared_ducts": sorted(shared_ducts),
            "shared_nodes": sorted(shared_nodes)}
