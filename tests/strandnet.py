"""Random and hand-drawn strand-level datasets for tests.

A dataset directory holds the route layers as GeoJSON (``nodes``, ``spans``,
``premises``, EPSG:4326) and the seven strand layers as ``<layer>.csv`` with
empty cells for missing values.

:func:`random_strand_network` draws a small network, deterministic by seed,
that is valid by the strand rules: every strand terminal is named at most
once, no glass closes on itself, splitters feed each other only "downhill"
(a fixed random rank), and a side is always written at interior nodes.

How the glass is drawn: *chains* grow from OLT ports, splitter outputs,
splitter inputs and loose strand ends. Each step of a chain claims a stretch
of one strand (a piece: it may pass express through interior nodes) and
connects the chain's current end to it, then goes on from the piece's far
end: another piece (splice or connector), a drop to a premise, a splitter
input, another OLT port, a splitter output (entered from outside) or
nothing (an open end). Claimed stretches never overlap, and both ends of a
stretch are cut points of the strand (a cable end or a node where the strand
is named), so every claimed stretch is exactly one piece and each chain is a
simple line of glass.
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from pyproj import Geod
from shapely import LineString, Point
from shapely.geometry import mapping

GEOD = Geod(ellps="WGS84")

#: Columns of the strand layers, in order.
STRAND_COLUMNS: dict[str, tuple[str, ...]] = {
    "cables": ("cable_id", "from_node", "to_node", "fiber_count", "fibers_per_tube", "status",
               "name", "install_year"),
    "cable_spans": ("cable_id", "seq", "span_id"),
    "splitters": ("splitter_id", "node_id", "ratio", "inputs", "loss_db"),
    "olt_ports": ("olt_port_id", "node_id", "olt_id"),
    "connections": ("connection_id", "node_id", "kind", "a_type", "a_id", "a_num", "a_side",
                    "b_type", "b_id", "b_num", "b_side", "loss_db"),
    "drops": ("drop_id", "premise_id", "node_id", "src_type", "src_id", "src_num", "src_side",
              "length_m"),
    "strand_state": ("cable_id", "strand", "state"),
}
ROUTE_COLUMNS: dict[str, tuple[str, ...]] = {
    "nodes": ("node_id", "kind", "status", "name", "split_ratio"),
    "spans": ("span_id", "from_node", "to_node", "status", "fiber_count", "fibers_used",
              "placement", "duct_id"),
    "premises": ("premise_id", "units", "kind", "connected", "address", "location_id"),
}
RATIOS = (2, 4, 8, 16, 32, 64, 128)

#: Places the random networks are drawn at: Frankfurt, across the UTM 32/33 boundary
#: (12 E), Buenos Aires (south, west), Nairobi (near the equator), Seattle.
ORIGINS = ((8.68, 50.11), (11.985, 48.14), (-58.44, -34.6), (36.82, -1.29), (-122.33, 47.61))

Row = dict[str, Any]


def place(origin: tuple[float, float], x_m: float, y_m: float) -> tuple[float, float]:
    """The point ``x_m`` along the geodesic heading east from ``origin``, then ``y_m`` north.

    Points with y = 0 lie on one geodesic, so the geodesic distance between
    two of them is exactly the difference of their x; a point (x, y) lies
    exactly |y| from (x, 0).
    """
    lon, lat, _ = GEOD.fwd(origin[0], origin[1], 90.0, x_m) if x_m else (*origin, 0.0)
    if y_m:
        lon, lat, _ = GEOD.fwd(lon, lat, 0.0 if y_m > 0 else 180.0, abs(y_m))
    return float(lon), float(lat)


# ---------------------------------------------------------------------------------------
# frames and files


def strand_frames(layers: Mapping[str, Sequence[Row]]) -> dict[str, pd.DataFrame]:
    """The seven strand tables from lists of row dicts (missing columns empty)."""
    out = {}
    for name, columns in STRAND_COLUMNS.items():
        rows = layers.get(name, ())
        out[name] = pd.DataFrame([[r.get(c) for c in columns] for r in rows],
                                 columns=list(columns), dtype=object)
    return out


def route_frames(nodes: Sequence[Row], spans: Sequence[Row],
                 premises: Sequence[Row]) -> dict[str, gpd.GeoDataFrame]:
    """Route layers (EPSG:4326) from row dicts carrying a shapely ``geometry``."""
    out = {}
    for name, rows in (("nodes", nodes), ("spans", spans), ("premises", premises)):
        columns = ROUTE_COLUMNS[name]
        data = {c: [r.get(c) for r in rows] for c in columns}
        out[name] = gpd.GeoDataFrame(data, geometry=[r["geometry"] for r in rows],
                                     crs="EPSG:4326")
    return out


def _json_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def _cell(value: Any) -> str:
    value = _json_value(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def write_strand_dataset(directory: str | Path, route: Mapping[str, gpd.GeoDataFrame],
                         strands: Mapping[str, pd.DataFrame]) -> Path:
    """Write ``route`` as ``<layer>.geojson``, ``strands`` as ``<layer>.csv`` into directory."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for name, layer in route.items():
        props = [c for c in layer.columns if c != layer.geometry.name]
        frame4326 = layer.to_crs(4326) if layer.crs is not None else layer
        features = [
            {"type": "Feature",
             "properties": {c: _json_value(row[c]) for c in props},
             "geometry": mapping(geom)}
            for (_, row), geom in zip(frame4326.iterrows(), frame4326.geometry, strict=True)
        ]
        doc = {"type": "FeatureCollection", "name": name, "features": features}
        (out / f"{name}.geojson").write_text(json.dumps(doc), encoding="utf-8")
    for name, columns in STRAND_COLUMNS.items():
        frame = strands.get(name)
        with (out / f"{name}.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            if frame is not None:
                for values in frame.to_dict("records"):
                    writer.writerow([_cell(values.get(c)) for c in columns])
    return out


def write_random_strand_dataset(directory: str | Path, seed: int, **options: Any) -> Path:
    """:func:`random_strand_network` written by :func:`write_strand_dataset`."""
    route, strands = random_strand_network(seed, **options)
    return write_strand_dataset(directory, route, strands)


# ---------------------------------------------------------------------------------------
# hand-drawn networks


def hand_network(nodes: Sequence[tuple[Any, ...]], spans: Sequence[tuple[Any, ...]],
                 premises: Sequence[tuple[Any, ...]], *,
                 origin: tuple[float, float] = (8.68, 50.11)) -> dict[str, gpd.GeoDataFrame]:
    """Route layers from a drawing in geodesic meters (see :func:`place`).

    nodes: (id, x, y[, kind[, status[, split_ratio]]]);
    spans: (id, a, b[, status[, duct_id]]) drawn straight;
    premises: (id, x, y[, units]).
    """
    pos = {n[0]: place(origin, n[1], n[2]) for n in nodes}
    node_rows = [{"node_id": n[0], "kind": n[3] if len(n) > 3 else "cabinet",
                  "status": n[4] if len(n) > 4 else "in_service", "name": None,
                  "split_ratio": n[5] if len(n) > 5 else None, "geometry": Point(pos[n[0]])}
                 for n in nodes]
    span_rows = [{"span_id": s[0], "from_node": s[1], "to_node": s[2],
                  "status": s[3] if len(s) > 3 else "in_service",
                  "duct_id": s[4] if len(s) > 4 else None, "fiber_count": None,
                  "fibers_used": None, "placement": "underground",
                  "geometry": LineString([pos[s[1]], pos[s[2]]])} for s in spans]
    prem_rows = [{"premise_id": p[0], "units": p[3] if len(p) > 3 else 1,
                  "kind": "residential", "connected": False, "address": f"{p[0]} Hand St",
                  "location_id": None, "geometry": Point(place(origin, p[1], p[2]))}
                 for p in premises]
    return route_frames(node_rows, span_rows, prem_rows)


# ---------------------------------------------------------------------------------------
# the random generator

#: an internal strand terminal: (cable_id, strand, side, index of the node on the cable)
STerm = tuple[str, int, str, int]


@dataclass
class _Cable:
    cable_id: str
    nodes: list[str]
    spans: list[str]
    fiber_count: int


@dataclass
class _Splitter:
    splitter_id: str
    node: str
    ratio: int
    inputs: int
    rank: int


@dataclass
class _Glass:
    """The generator's state while chains grow."""

    rng: random.Random
    cables: list[_Cable]
    splitters: list[_Splitter]
    ports: dict[str, str]                      # olt_port_id -> node
    premises_near: dict[str, list[str]]        # node -> premise ids, nearest first
    all_premises: list[str]
    used: set[tuple[Any, ...]] = field(default_factory=set)   # terminals named or owned
    named: dict[tuple[str, int], set[int]] = field(default_factory=dict)
    claims: dict[tuple[str, int], list[tuple[int, int]]] = field(default_factory=dict)
    connections: list[Row] = field(default_factory=list)
    drops: list[Row] = field(default_factory=list)

    # --- strand stretches -------------------------------------------------------------

    def _static(self, cable: _Cable, k: int, idx: int) -> bool:
        return idx in (0, len(cable.nodes) - 1) or idx in self.named.get((cable.cable_id, k), ())

    def _inside_claim(self, cable_id: str, k: int, idx: int) -> bool:
        return any(lo < idx < hi for lo, hi in self.claims.get((cable_id, k), ()))

    def stretch_options(self, node: str) -> list[tuple[_Cable, int, int, int, list[int]]]:
        """(cable, strand, index of node, direction, possible stop indices) starting at node."""
        options = []
        for cable in self.cables:
            if node not in cable.nodes:
                continue
            i = cable.nodes.index(node)
            last = len(cable.nodes) - 1
            for k in range(1, cable.fiber_count + 1):
                if self._inside_claim(cable.cable_id, k, i):
                    continue
                for d in (1, -1):
                    if (d == 1 and i == last) or (d == -1 and i == 0):
                        continue
                    if (cable.cable_id, k, "to" if d == 1 else "from", i) in self.used:
                        continue
                    stops = []
                    j = i + d
                    while 0 <= j <= last:
                        if (cable.cable_id, k, "from" if d == 1 else "to", j) not in self.used:
                            stops.append(j)
                        if self._static(cable, k, j):
                            break
                        j += d
                    if stops:
                        options.append((cable, k, i, d, stops))
        return options

    def claim(self, cable: _Cable, k: int, i: int, d: int, j: int) -> tuple[STerm, STerm]:
        """Claim strand k of cable from index i to j; its start and far terminals."""
        start: STerm = (cable.cable_id, k, "to" if d == 1 else "from", i)
        end: STerm = (cable.cable_id, k, "from" if d == 1 else "to", j)
        self.used.update((start, end))
        self.claims.setdefault((cable.cable_id, k), []).append((min(i, j), max(i, j)))
        return start, end

    def name(self, term: Any) -> None:
        """Mark a strand terminal as named (a cut point) by a connection or drop."""
        if isinstance(term, tuple) and len(term) == 4:
            self.named.setdefault((term[0], term[1]), set()).add(term[3])

    def cable(self, cable_id: str) -> _Cable:
        """The cable named cable_id."""
        return next(c for c in self.cables if c.cable_id == cable_id)

    # --- writing terminals ------------------------------------------------------------

    def _fields(self, term: Any, prefix: str) -> Row:
        """Connection/drop columns of a terminal: strand (4-tuple) or (type, id, num)."""
        if len(term) == 4:
            cable = self.cable(term[0])
            end = term[3] in (0, len(cable.nodes) - 1)
            side = "" if end and self.rng.random() < 0.5 else term[2]
            return {f"{prefix}_type": "strand", f"{prefix}_id": term[0],
                    f"{prefix}_num": term[1], f"{prefix}_side": side or None}
        kind, ident, num = term
        return {f"{prefix}_type": kind, f"{prefix}_id": ident,
                f"{prefix}_num": num if kind != "olt" else None, f"{prefix}_side": None}

    def connect(self, node: str, a: Any, b: Any) -> None:
        """A connection at node between terminals a and b (sides in random order)."""
        self.name(a)
        self.name(b)
        self.used.update((a, b))
        if self.rng.random() < 0.5:
            a, b = b, a
        both_strands = len(a) == 4 and len(b) == 4
        kind = "splice" if both_strands else "connector"
        if self.rng.random() < 0.15:
            kind = "connector" if kind == "splice" else "splice"
        loss = None
        if self.rng.random() < 0.15:
            loss = self.rng.choice([0.0, 0.05, round(self.rng.uniform(0.02, 0.9), 3)])
        row: Row = {"connection_id": f"c{len(self.connections) + 1}", "node_id": node,
                    "kind": kind, "loss_db": loss}
        row.update(self._fields(a, "a"))
        row.update(self._fields(b, "b"))
        self.connections.append(row)

    def drop(self, node: str, src: Any) -> None:
        """A drop from src (strand end or splitter output) at node to a nearby premise."""
        self.name(src)
        self.used.add(src)
        near = self.premises_near.get(node) or self.all_premises
        pool = near[:4] if self.rng.random() < 0.85 else self.all_premises
        premise = self.rng.choice(pool)
        length = round(self.rng.uniform(8.0, 220.0), 1) if self.rng.random() < 0.3 else None
        fields = self._fields(src, "src")
        self.drops.append({"drop_id": f"d{len(self.drops) + 1}", "premise_id": premise,
                           "node_id": node, "src_type": fields["src_type"],
                           "src_id": fields["src_id"], "src_num": fields["src_num"],
                           "src_side": fields["src_side"], "length_m": length})

    # --- chains -------------------------------------------------------------------------

    def free_inputs(self, node: str, origin: tuple[Any, ...]) -> list[tuple[str, str, int]]:
        """Splitter inputs at node a chain from origin may end at (splitters only downhill)."""
        out = []
        for sp in self.splitters:
            if sp.node != node:
                continue
            if origin[0] == "out" and sp.rank <= origin[1]:
                continue
            if origin[0] == "in":
                continue
            # OLT ports feed the first half of the splitters by rank (and second inputs),
            # so the second half is left for cascades
            first_half = sp.rank < (len(self.splitters) + 1) // 2
            out += [("in", sp.splitter_id, n) for n in range(1, sp.inputs + 1)
                    if ("in", sp.splitter_id, n) not in self.used
                    and (origin[0] != "olt" or first_half or n == 2)]
        return out

    def free_outputs(self, node: str, origin: tuple[Any, ...]) -> list[tuple[str, str, int]]:
        """Splitter outputs at node a chain may enter from outside (not its own splitter)."""
        if origin[0] == "in":
            return []
        own = origin[2] if origin[0] == "out" else None
        return [("out", sp.splitter_id, n) for sp in self.splitters
                if sp.node == node and sp.splitter_id != own
                for n in range(1, sp.ratio + 1) if ("out", sp.splitter_id, n) not in self.used]

    def free_ports(self, node: str, origin: tuple[Any, ...]) -> list[tuple[str, str, None]]:
        """OLT ports at node a chain may end at."""
        if origin[0] == "in":
            return []
        return [("olt", p, None) for p, n in sorted(self.ports.items())
                if n == node and ("olt", p, None) not in self.used]

    def step_piece(self, node: str, cur: Any, origin: tuple[Any, ...]
                   ) -> tuple[STerm, str, bool] | None:
        """Connect cur to a fresh stretch at node; (far terminal, far node, far end static).

        Stretches ending where a splitter input is free, or where other cables
        meet, are preferred, so that traces reach splitters and go on.
        """
        choices, weights = [], []
        for cable, k, i, d, stops in self.stretch_options(node):
            for j in stops:
                far = cable.nodes[j]
                w = 1.0
                if self.free_inputs(far, origin):
                    w += 6.0
                if sum(far in c.nodes for c in self.cables) > 1:
                    w += 2.0
                choices.append((cable, k, i, d, j))
                weights.append(w / len(stops))
        if not choices:
            return None
        cable, k, i, d, j = self.rng.choices(choices, weights=weights)[0]
        start, end = self.claim(cable, k, i, d, j)
        self.connect(node, cur, start)
        return end, cable.nodes[j], self._static(cable, k, j)

    def aim(self, cur: Any, node: str, origin: tuple[Any, ...]) -> tuple[Any, str, bool]:
        """Route cur over fresh stretches toward the nearest node with a usable splitter
        input (breadth first, at most 4 stretches); the chain's new end (cur, node, static).

        Stops early, where it is, when a stretch of the route cannot be claimed.
        """
        prev: dict[str, tuple[str, str, int, int] | None] = {node: None}
        depth, queue, goal = {node: 0}, [node], None
        while queue:
            v = queue.pop(0)
            if v != node and self.free_inputs(v, origin):
                goal = v
                break
            if depth[v] >= 4:
                continue
            for cable, _k, _i, d, stops in self.stretch_options(v):
                for j in stops:
                    w = cable.nodes[j]
                    if w not in prev:
                        prev[w] = (v, cable.cable_id, d, j)
                        depth[w] = depth[v] + 1
                        queue.append(w)
        moves = []
        while goal is not None and prev[goal] is not None:
            step = prev[goal]
            assert step is not None
            moves.append(step)
            goal = step[0]
        static = True
        for v, cable_id, d, j in reversed(moves):
            options = [o for o in self.stretch_options(v)
                       if o[0].cable_id == cable_id and o[3] == d and j in o[4]]
            if not options:
                break
            cable, k, i, _, _ = self.rng.choice(options)
            start, end = self.claim(cable, k, i, d, j)
            self.connect(v, cur, start)
            cur, node, static = end, cable.nodes[j], self._static(cable, k, j)
        return cur, node, static

    def grow(self, cur: Any, node: str, origin: tuple[Any, ...], static: bool = True,
             first: bool = True, aim: bool = False) -> None:
        """Grow one chain from terminal cur at node until it ends (aim: first head for a
        splitter input)."""
        rng = self.rng
        steps = 0
        if aim:
            start = cur
            cur, node, static = self.aim(cur, node, origin)
            steps = int(cur != start)
            inputs = self.free_inputs(node, origin)
            if steps and inputs and rng.random() < 0.9:
                self.connect(node, cur, rng.choice(inputs))
                return
        while True:
            is_start = first and steps == 0
            inputs = self.free_inputs(node, origin)
            outputs = self.free_outputs(node, origin)
            ports = [p for p in self.free_ports(node, origin) if p != cur]
            can_drop = cur[0] != "olt" and cur[0] != "in"
            weights = {
                "piece": 4.0 / (1 + steps * 0.6),
                "in": 8.0 if inputs else 0.0,
                "drop": (5.0 if cur[0] == "out" else 0.0 if is_start else 3.0) if can_drop else 0.0,
                "open": 0.4 if static and not is_start else 0.0,
                "olt": 0.15 if ports and not is_start else 0.0,
                "out": 0.25 if outputs and cur[0] != "out" else 0.0,
            }
            if cur[0] == "in":
                weights["in"] = weights["out"] = weights["olt"] = 0.0
            action = rng.choices(list(weights), weights=list(weights.values()))[0]
            if action == "piece":
                stepped = self.step_piece(node, cur, origin)
                if stepped is not None:
                    cur, node, static = stepped
                    steps += 1
                    continue
                action = "drop" if can_drop else "stop"
            if action == "in" and inputs:
                self.connect(node, cur, rng.choice(inputs))
            elif action == "out" and outputs:
                self.connect(node, cur, rng.choice(outputs))
            elif action == "olt" and ports:
                self.connect(node, cur, rng.choice(ports))
            elif (action == "drop" and can_drop) or not static:
                # (an end that is no cut point must be named: a drop from it)
                self.drop(node, cur)
            return

    def grow_loose(self) -> None:
        """A chain starting at a loose strand end (nothing connected before it)."""
        starts = []
        for cable in self.cables:
            last = len(cable.nodes) - 1
            for k in range(1, cable.fiber_count + 1):
                for i in range(last + 1):
                    if not self._static(cable, k, i) or self._inside_claim(cable.cable_id, k, i):
                        continue
                    starts += [(cable, k, i, d) for d in (1, -1) if 0 <= i + d <= last]
        self.rng.shuffle(starts)
        for cable, k, i, d in starts:
            side = "to" if d == 1 else "from"
            if (cable.cable_id, k, side, i) in self.used:
                continue
            for option in self.stretch_options(cable.nodes[i]):
                if option[0] is cable and option[1] == k and option[3] == d:
                    stops = option[4]
                    j = self.rng.choice(stops)
                    _, end = self.claim(cable, k, i, d, j)
                    self.grow(end, cable.nodes[j], ("loose",), self._static(cable, k, j),
                              first=False)
                    return


def _route(rng: random.Random, n_nodes: int) -> tuple[list[Row], list[Row], list[Row]]:
    origin = rng.choice(ORIGINS)
    width = rng.uniform(400.0, 4000.0)
    height = width * rng.uniform(0.3, 1.0)
    xy = [(rng.uniform(0, width), rng.uniform(0, height)) for _ in range(n_nodes)]
    node_ids = [f"n{i + 1}" for i in range(n_nodes)]
    cores = {node_ids[0]} | ({node_ids[-1]} if n_nodes >= 10 and rng.random() < 0.5 else set())
    nodes: list[Row] = []
    for nid, (x, y) in zip(node_ids, xy, strict=True):
        kind = "core" if nid in cores else rng.choice(
            ["cabinet", "splice", "splitter", "handhole", "pole", "other"])
        status = rng.choices(["in_service", "planned", "retired"], [0.94, 0.04, 0.02])[0]
        if nid == node_ids[0]:
            status = "in_service"
        nodes.append({"node_id": nid, "kind": kind, "status": status, "name": f"node {nid}",
                      "split_ratio": None, "geometry": Point(place(origin, x, y)),
                      "xy": (x, y)})
    pairs: list[tuple[int, int]] = []
    for i in range(1, n_nodes):
        near = sorted(range(i), key=lambda j: math.dist(xy[i], xy[j]))[:3]
        pairs.append((rng.choice(near), i))
    for _ in range(rng.randint(0, max(1, n_nodes // 3))):
        i = rng.randrange(n_nodes)
        near = sorted((j for j in range(n_nodes) if j != i),
                      key=lambda j: math.dist(xy[i], xy[j]))[:3]
        pairs.append((i, rng.choice(near)))
    spans = []
    ducts = [f"d{i}" for i in range(1, 4)]
    for n, (i, j) in enumerate(pairs, start=1):
        a, b = (i, j) if rng.random() < 0.5 else (j, i)
        pa, pb = nodes[a]["geometry"], nodes[b]["geometry"]
        coords = [(pa.x, pa.y), (pb.x, pb.y)]
        if rng.random() < 0.3:   # a bend
            mx = (xy[a][0] + xy[b][0]) / 2 + rng.uniform(-60, 60)
            my = (xy[a][1] + xy[b][1]) / 2 + rng.uniform(-60, 60)
            coords.insert(1, place(origin, mx, my))
        spans.append({
            "span_id": f"s{n}", "from_node": node_ids[a], "to_node": node_ids[b],
            "status": rng.choices(["in_service", "planned", "retired"], [0.94, 0.04, 0.02])[0],
            "fiber_count": None, "fibers_used": None,
            "placement": rng.choice(["aerial", "underground", "buried", None]),
            "duct_id": rng.choice(ducts) if rng.random() < 0.3 else None,
            "geometry": LineString(coords)})
    premises: list[Row] = []
    for node in nodes:
        for _ in range(rng.randint(0, 3)):
            r = rng.uniform(15.0, 260.0) if rng.random() < 0.9 else rng.uniform(400, 1500)
            t = rng.uniform(0, 2 * math.pi)
            x, y = node["xy"][0] + r * math.cos(t), node["xy"][1] + r * math.sin(t)
            n = len(premises) + 1
            premises.append({
                "premise_id": f"p{n}",
                "units": rng.choices([1, 2, 3, 8], [0.7, 0.15, 0.1, 0.05])[0],
                "kind": rng.choice(["residential", "business", "anchor", "other"]),
                "connected": rng.random() < 0.3, "address": f"{n} Random St",
                "location_id": str(1_000_000 + n) if rng.random() < 0.5 else None,
                "geometry": Point(place(origin, x, y))})
    if not premises:
        node = nodes[-1]
        premises.append({"premise_id": "p1", "units": 1, "kind": "residential",
                         "connected": False, "address": "1 Random St", "location_id": None,
                         "geometry": Point(place(origin, node["xy"][0] + 40, node["xy"][1]))})
    return nodes, spans, premises


def _cables(rng: random.Random, nodes: list[Row], spans: list[Row]) -> list[_Cable]:
    adjacent: dict[str, list[Row]] = {}
    for s in spans:
        adjacent.setdefault(s["from_node"], []).append(s)
        adjacent.setdefault(s["to_node"], []).append(s)
    cores = [n["node_id"] for n in nodes if n["kind"] == "core"]
    ids = [n["node_id"] for n in nodes]
    cables: list[_Cable] = []
    target = rng.randint(3, 4 + len(nodes) // 3)
    attempts = 0
    while len(cables) < target and attempts < 200:
        attempts += 1
        if len(cables) < len(cores) + 1:
            start = cores[len(cables) % len(cores)]
        elif rng.random() < 0.5 and cables:
            c = rng.choice(cables)
            start = rng.choice(c.nodes)    # cables meet at nodes other cables visit
        else:
            start = rng.choice(ids)
        path, path_spans = [start], []
        for _ in range(rng.randint(1, 5)):
            steps = [s for s in adjacent.get(path[-1], [])
                     if (s["to_node"] if s["from_node"] == path[-1] else s["from_node"])
                     not in path]
            if not steps:
                break
            s = rng.choice(steps)
            path.append(s["to_node"] if s["from_node"] == path[-1] else s["from_node"])
            path_spans.append(s["span_id"])
        if not path_spans:
            continue
        fc = rng.choice([2, 4, 6, 8, 12, 12, 24])
        cables.append(_Cable(f"K{len(cables) + 1}", path, path_spans, fc))
    return cables


def random_strand_network(seed: int, *, n_nodes: int | None = None
                          ) -> tuple[dict[str, gpd.GeoDataFrame], dict[str, pd.DataFrame]]:
    """A small random valid strand network: (route layers, strand tables).

    5 to 25 nodes (``n_nodes`` to fix it), a few cables of 2 to 24 strands
    along multi-span paths, OLT ports at the cores, splitters (cascaded,
    some with two inputs), splices and express passes, drops from splitter
    outputs and strand ends, planned and retired plant, broken and reserved
    strands, open ends, now and then a splitter output entered from outside
    or an OLT port joined to another, premises fed by two drops.
    """
    rng = random.Random(seed)
    nodes, spans, premises = _route(rng, n_nodes or rng.randint(5, 25))
    cables = _cables(rng, nodes, spans)
    cable_nodes = sorted({n for c in cables for n in c.nodes}, key=lambda n: int(n[1:]))
    meets = [1.0 + 3.0 * (sum(n in c.nodes for c in cables) > 1) for n in cable_nodes]
    splitters = []
    for i in range(rng.randint(1, max(2, len(nodes) // 3))):
        splitters.append(_Splitter(
            f"SP{i + 1}", rng.choices(cable_nodes, weights=meets)[0],
            rng.choices(RATIOS[:6], [2, 3, 3, 2, 1, 0.2])[0], 2 if rng.random() < 0.2 else 1, 0))
    for rank, i in enumerate(rng.sample(range(len(splitters)), len(splitters))):
        splitters[i].rank = rank
    ports: dict[str, str] = {}
    cores = [n["node_id"] for n in nodes if n["kind"] == "core"]
    for c, core in enumerate(cores, start=1):
        for p in range(1, rng.randint(1, 4) + 1):
            ports[f"OLT{c}-{p}"] = core
    if rng.random() < 0.25:
        ports[f"OLT9-{rng.randint(1, 9)}"] = rng.choice(cable_nodes)
    glass = _Glass(rng, cables, splitters, ports, _premises_near(nodes, premises),
                   [p["premise_id"] for p in premises])
    _grow_all(glass)
    return _assemble(rng, nodes, spans, premises, glass)


def _premises_near(nodes: list[Row], premises: list[Row]) -> dict[str, list[str]]:
    out = {}
    for n in nodes:
        g = n["geometry"]
        dist = {p["premise_id"]: GEOD.inv(g.x, g.y, p["geometry"].x, p["geometry"].y)[2]
                for p in premises}
        out[n["node_id"]] = sorted(dist, key=lambda pid: (dist[pid], pid))
    return out


def _grow_all(glass: _Glass) -> None:
    rng = glass.rng
    ports = sorted(glass.ports)
    rng.shuffle(ports)
    for port in ports:
        term: tuple[str, str, int | None] = ("olt", port, None)
        if term not in glass.used and rng.random() < 0.85:
            glass.grow(term, glass.ports[port], ("olt", port), aim=rng.random() < 0.9)
    for sp in sorted(glass.splitters, key=lambda s: s.rank):
        outs = list(range(1, sp.ratio + 1))
        rng.shuffle(outs)
        for m, n in enumerate(outs[: rng.randint(1, min(sp.ratio, 8))]):
            term = ("out", sp.splitter_id, n)
            if term not in glass.used:     # the first chain most often feeds a splitter
                glass.grow(term, sp.node, ("out", sp.rank, sp.splitter_id),
                           aim=rng.random() < (0.7 if m == 0 else 0.25))
    for _ in range(rng.randint(0, 3)):
        glass.grow_loose()
    for sp in glass.splitters:
        for n in range(1, sp.inputs + 1):
            term = ("in", sp.splitter_id, n)
            if term not in glass.used and rng.random() < 0.25:
                glass.grow(term, sp.node, ("in",))


def _assemble(rng: random.Random, nodes: list[Row], spans: list[Row], premises: list[Row],
              glass: _Glass) -> tuple[dict[str, gpd.GeoDataFrame], dict[str, pd.DataFrame]]:
    cables, cable_spans, states = [], [], []
    status_of = {}
    for c in glass.cables:
        status = rng.choices(["in_service", "planned", "retired"], [0.88, 0.08, 0.04])[0]
        status_of[c.cable_id] = status
        per_tube = rng.choice([None, None, 2, 4, 6, 12])
        cables.append({"cable_id": c.cable_id, "from_node": c.nodes[0], "to_node": c.nodes[-1],
                       "fiber_count": c.fiber_count, "fibers_per_tube": per_tube,
                       "status": None if status == "in_service" and rng.random() < 0.3
                       else status,
                       "name": f"cable {c.cable_id}", "install_year": rng.choice([None, 2019])})
        cable_spans += [{"cable_id": c.cable_id, "seq": i + 1, "span_id": s}
                        for i, s in enumerate(c.spans)]
        for k in range(1, c.fiber_count + 1):
            r = rng.random()
            if r < 0.04:
                states.append({"cable_id": c.cable_id, "strand": k, "state": "broken"})
            elif r < 0.1:
                states.append({"cable_id": c.cable_id, "strand": k, "state": "reserved"})
    counts: dict[str, int] = {}
    for c in glass.cables:
        if status_of[c.cable_id] == "in_service":
            for span_id in c.spans:
                counts[span_id] = counts.get(span_id, 0) + c.fiber_count
    for span in spans:
        span["fiber_count"] = counts.get(span["span_id"]) if rng.random() < 0.9 else 48
        if span["fiber_count"] and rng.random() < 0.2:
            span["fibers_used"] = rng.randint(0, span["fiber_count"])
    by_node: dict[str, int] = {}
    for sp in glass.splitters:
        by_node.setdefault(sp.node, sp.ratio)
    for n in nodes:
        if n["kind"] == "splitter":
            n["split_ratio"] = by_node.get(n["node_id"], rng.choice(RATIOS[:5]))
    splitters = [{"splitter_id": sp.splitter_id, "node_id": sp.node, "ratio": sp.ratio,
                  "inputs": sp.inputs if sp.inputs == 2 or rng.random() < 0.5 else None,
                  "loss_db": round(rng.uniform(3.0, 18.0), 2) if rng.random() < 0.2 else None}
                 for sp in glass.splitters]
    olt_ports = [{"olt_port_id": p, "node_id": n, "olt_id": p.split("-")[0]}
                 for p, n in sorted(glass.ports.items())]
    route = route_frames(nodes, spans, premises)
    strands = strand_frames({"cables": cables, "cable_spans": cable_spans,
                             "splitters": splitters, "olt_ports": olt_ports,
                             "connections": glass.connections, "drops": glass.drops,
                             "strand_state": states})
    return route, strands


def rows(frame: pd.DataFrame) -> Iterable[Row]:
    """The rows of a frame as dicts (None for missing)."""
    for record in frame.to_dict("records"):
        yield {str(k): _json_value(v) for k, v in record.items()}
