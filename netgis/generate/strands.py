"""The glass inside a generated city's plant: cables, splitters, OLT ports, splices and drops.

:func:`strand_plant` lays the seven strand layers (``cables``, ``cable_spans``,
``splitters``, ``olt_ports``, ``connections``, ``drops``, ``strand_state``) into
the route plant that :mod:`netgis.generate.plant` and :mod:`netgis.generate.city`
make, so that the two levels tell one story:

- *Distribution trees.* Each cabinet district's tree (and each long rural
  run, hung below the plant node it starts from) is cut into cables: a cable
  starts at the tile root, at a splitter node or where a side street leaves
  a longer cable, and follows the street with the most plant behind it
  until a leaf or a splitter node (it never runs through a splitter node).
  At the nodes in between its strands pass untouched unless one is cut
  there for a drop or a side cable.
- *Splitters.* Every splitter node holds as many splitters of the node's
  ``split_ratio`` as its outputs need (at least one). A splitter's input is
  fed from an output of the nearest splitter node above it (the cascades of
  the route generator: 1:4 then 1:8 and so on) or, with none above, from the
  tile root.
- *Circuits.* Each connected premise hangs below its nearest working plant
  node (cores aside): it takes an output of the nearest splitter node at or
  above that node, or with none a strand of its own from the tile root
  (point to point, as the route model counts no splitter there). The glass
  from the source down to the target takes one strand of every cable on the
  way: a connector from the splitter output (or OLT port) onto the first
  strand, a splice at each change of cable, and at the end a connector into
  a splitter input or the drop to the premise. Every terminal serves one
  circuit, so no terminal is named twice and no glass closes on itself.
- *Feeders.* At a core every root circuit starts at an OLT port of its own
  (OLTs of 16 cards of 16 ports). A cabinet's root circuits come from the
  core of its ring along the fewest in-service feeder spans (either way
  round the ring) in feeder cables of 48 to 288 strands in tubes of 12,
  passing the cabinets on the way untouched, spliced in the cabinet onto
  the distribution cables (or, for a premise whose drop node is the
  cabinet, dropped straight from the feeder strand).
- *Spares.* Every other in-service span (street links that close loops,
  ring spans no feeder takes) holds a dark cable. Cables are sized from
  their busiest span with some spare; a few unused strands are ``reserved``
  and a few ``broken`` in ``strand_state``.

:func:`span_strand_counts` counts, from the seven layers alone, each span's
in-service strands and the strands on it that are not free (docs: a strand
is not free where it is broken or reserved, or where its piece has a
connection or drop at either end); :func:`with_strand_counts` writes them into
the spans' ``fiber_count`` and ``fibers_used`` so that the route layers agree
with the strands.

Nothing here is random but the cable sizes' spare, the tubes of 24-strand
cables and the reserved and broken strands, all drawn from the stream
``[seed, 3]``: the route plant and the premises do not change.

Examples
--------
>>> from netgis.generate import generate_city
>>> ds = generate_city(premises=2000, seed=1)
>>> tables = strand_plant(ds.nodes, ds.spans, ds.premises, seed=1)
>>> list(tables) == list(STRAND_LAYERS)
True
>>> len(tables["drops"]) == int(ds.premises["connected"].sum())
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from netgis.generate.plant import depth_and_subtree, make_ids
from netgis.schema import STRAND_LAYERS

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ObjArray = npt.NDArray[np.object_]
Tables = dict[str, pd.DataFrame]
FrameT = TypeVar("FrameT", bound=pd.DataFrame)

#: Strand counts of feeder and distribution cables (the smallest that holds the demand).
FEEDER_SIZES = np.array([48, 72, 96, 144, 192, 288])
DIST_SIZES = np.array([12, 24, 48])
#: Strands per tube (a 24-strand distribution cable is sometimes one tube of 24).
TUBE = 12
#: OLT ports per card and cards per OLT at a core.
PORTS_PER_CARD, CARDS_PER_OLT = 16, 16
#: Spare strands on top of the demand, as a share of it.
SPARE_SHARE = 0.2
#: Share of cables with a few reserved strands, and with one broken strand.
RESERVED_SHARE, BROKEN_SHARE = 0.12, 0.02

_ROOT_KINDS = ("core", "cabinet")
_IN_SERVICE = "in_service"


@dataclass(frozen=True)
class _Route:
    """The route plant as integer arrays (nodes and spans by position)."""

    node_id: ObjArray
    name: ObjArray
    live: BoolArray  # node in service
    is_core: BoolArray
    is_root: BoolArray  # a live core or cabinet
    is_split: BoolArray  # a live splitter node with a ratio
    ratio: IntArray
    xy: FloatArray
    span_id: ObjArray
    s_from: IntArray
    s_to: IntArray
    s_live: BoolArray  # span in service between live nodes
    s_year: FloatArray  # install_year, NaN unknown


@dataclass
class _Cables:
    """Cables as they are made: node path as spans, strands, names."""

    from_node: list[IntArray]
    to_node: list[IntArray]
    fiber_count: list[IntArray]
    per_tube: list[IntArray]
    name: list[ObjArray]
    used: list[IntArray]  # strands 1..used carry a circuit
    path_cable: list[IntArray]  # cable_spans rows: cable (local index), seq, span
    path_seq: list[IntArray]
    path_span: list[IntArray]
    count: int = 0

    def add(self, from_node: IntArray, to_node: IntArray, fiber_count: IntArray,
            per_tube: IntArray, name: ObjArray, used: IntArray, path_cable: IntArray,
            path_seq: IntArray, path_span: IntArray) -> int:
        """Append cables (path rows name them 0..k-1); return the index of the first."""
        first = self.count
        self.from_node.append(from_node)
        self.to_node.append(to_node)
        self.fiber_count.append(fiber_count)
        self.per_tube.append(per_tube)
        self.name.append(name)
        self.used.append(used)
        self.path_cable.append(path_cable + first)
        self.path_seq.append(path_seq)
        self.path_span.append(path_span)
        self.count += len(from_node)
        return first


def strand_plant(nodes: pd.DataFrame, spans: pd.DataFrame, premises: pd.DataFrame, *,
                 seed: int) -> Tables:
    """The seven strand layers of a generated city's plant (see the module docstring).

    Parameters
    ----------
    nodes, spans
        The route layers as :func:`~netgis.generate.generate_city` makes them.
    premises
        ``premise_id``, ``connected`` and a point ``geometry`` in the nodes' CRS;
        only the connected ones are read (each gets one drop).
    seed
        The city's seed (spare sizes, tubes, reserved and broken strands).

    Returns
    -------
    dict
        Layer name -> DataFrame with the contract's columns, in the order of
        :data:`netgis.schema.STRAND_LAYERS`.

    Examples
    --------
    >>> from netgis.generate import generate_city
    >>> ds = generate_city(premises=1500, seed=4)
    >>> tables = strand_plant(ds.nodes, ds.spans, ds.premises, seed=4)
    >>> set(tables["connections"]["kind"]) == {"splice", "connector"}
    True
    """
    rng = np.random.default_rng([seed, 3])
    route = _route(nodes, spans)
    feed = _feeders(route)
    tree = _tree(route, feed.fed)
    connected = premises[np.asarray(premises["connected"], dtype=bool)]
    prem_id = np.asarray(connected["premise_id"], dtype=object)
    drop_node = _drop_nodes(route, tree, shapely.get_coordinates(
        np.asarray(connected.geometry, dtype=object)))
    circuits = _circuits(route, tree, drop_node)
    cables = _Cables([], [], [], [], [], [], [], [], [])
    feeder_base, feeder_per = _feeder_cables(route, feed, circuits, cables, rng)
    legs = _legs(route, tree, circuits, cables, rng)
    _dark_cables(route, cables, rng)
    cable_ids = make_ids("c", cables.count)
    ports = _olt_ports(route, feed, circuits)
    tables = {
        "cables": _cable_frame(route, cables, cable_ids),
        "cable_spans": pd.DataFrame({
            "cable_id": cable_ids[np.concatenate(cables.path_cable)],
            "seq": pd.array(np.concatenate(cables.path_seq), dtype="Int64"),
            "span_id": route.span_id[np.concatenate(cables.path_span)],
        }),
        "splitters": pd.DataFrame({
            "splitter_id": circuits.splitter_id,
            "node_id": route.node_id[circuits.dev_node],
            "ratio": pd.array(route.ratio[circuits.dev_node], dtype="Int64"),
            "inputs": pd.array(np.ones(len(circuits.dev_node), np.int64), dtype="Int64"),
            "loss_db": np.full(len(circuits.dev_node), np.nan),
        }),
        "olt_ports": ports.frame,
        **_glass(route, circuits, legs, ports, feed.home, cable_ids, feeder_base, feeder_per,
                 prem_id),
        "strand_state": _strand_state(cables, cable_ids, rng),
    }
    return {name: tables[name] for name in STRAND_LAYERS}


# --------------------------------------------------------------------------- the route


def _route(nodes: pd.DataFrame, spans: pd.DataFrame) -> _Route:
    node_id = np.asarray(nodes["node_id"], dtype=object)
    index = pd.Index(node_id)
    kind = np.asarray(nodes["kind"], dtype=object)
    live = np.asarray(nodes["status"] == _IN_SERVICE, dtype=bool)
    ratio = np.asarray(nodes["split_ratio"].astype("Int64").fillna(0), dtype=np.int64)
    s_from = index.get_indexer(spans["from_node"]).astype(np.int64)
    s_to = index.get_indexer(spans["to_node"]).astype(np.int64)
    known = (s_from >= 0) & (s_to >= 0)
    s_live = np.asarray(spans["status"] == _IN_SERVICE, dtype=bool) & known
    s_live &= live[np.maximum(s_from, 0)] & live[np.maximum(s_to, 0)] & (s_from != s_to)
    year = np.asarray(spans["install_year"].astype("Float64").fillna(np.nan), dtype=np.float64) \
        if "install_year" in spans.columns else np.full(len(spans), np.nan)
    return _Route(
        node_id=node_id,
        name=np.asarray(nodes["name"], dtype=object) if "name" in nodes.columns
        else np.full(len(nodes), None, dtype=object),
        live=live, is_core=live & (kind == "core"), is_root=live & np.isin(kind, _ROOT_KINDS),
        is_split=live & (kind == "splitter") & (ratio >= 2), ratio=ratio,
        xy=shapely.get_coordinates(np.asarray(nodes.geometry, dtype=object)),
        span_id=np.asarray(spans["span_id"], dtype=object),
        s_from=np.maximum(s_from, 0), s_to=np.maximum(s_to, 0), s_live=s_live,
        s_year=year,
    )


@dataclass(frozen=True)
class _Feed:
    """How the roots are fed: cores directly, cabinets along feeder spans from a core."""

    fed: BoolArray  # roots that light can reach
    home: IntArray  # the core feeding each root (-1: none)
    cabinets: IntArray  # fed cabinets, in node order
    path_nodes: IntArray  # (cabinets, hops + 1): core first, -1 after the cabinet
    path_spans: IntArray  # (cabinets, hops): -1 after the last
    hops: IntArray


def _feeders(route: _Route) -> _Feed:
    """Each cabinet's path from the nearest core over in-service spans between roots."""
    n = len(route.node_id)
    feeder = route.s_live & route.is_root[route.s_from] & route.is_root[route.s_to]
    pick = np.flatnonzero(feeder)
    low = np.minimum(route.s_from[pick], route.s_to[pick])
    high = np.maximum(route.s_from[pick], route.s_to[pick])
    key = low * n + high
    # one edge per pair of roots: the lowest span between them
    keys, first = np.unique(key, return_index=True)
    pair_span = pick[first]
    cores = np.flatnonzero(route.is_core)
    home = np.full(n, -1, np.int64)
    home[cores] = cores
    empty = np.zeros((0, 1), np.int64)
    if len(cores) == 0:
        return _Feed(route.is_core.copy(), home, np.zeros(0, np.int64), empty,
                     empty[:, :0], np.zeros(0, np.int64))
    graph = coo_matrix((np.ones(len(keys)), (keys // n, keys % n)), shape=(n, n)).tocsr()
    dist, pred, source = dijkstra(graph, directed=False, indices=cores, unweighted=True,
                                  min_only=True, return_predecessors=True)
    cabinets = np.flatnonzero(route.is_root & ~route.is_core & np.isfinite(dist))
    hops = dist[cabinets].astype(np.int64)
    width = int(hops.max()) if len(cabinets) else 0
    path_nodes = np.full((len(cabinets), width + 1), -1, np.int64)
    path_spans = np.full((len(cabinets), width), -1, np.int64)
    cur = cabinets.copy()
    rows = np.arange(len(cabinets))
    for step in range(width):  # walk back from each cabinet to its core
        at = hops - step  # position of `cur` on the path
        going = at > 0
        path_nodes[rows[going], at[going]] = cur[going]
        prev = pred[cur[going]].astype(np.int64)
        edge = np.minimum(prev, cur[going]) * n + np.maximum(prev, cur[going])
        path_spans[rows[going], at[going] - 1] = pair_span[np.searchsorted(keys, edge)]
        cur[going] = prev
    path_nodes[:, 0] = cur
    home[cabinets] = source[cabinets].astype(np.int64)
    fed = route.is_core.copy()
    fed[cabinets] = True
    return _Feed(fed, home, cabinets, path_nodes, path_spans, hops)


@dataclass(frozen=True)
class _Tree:
    """The distribution forest below the fed roots, cut into cable groups."""

    parent: IntArray  # tree parent (itself for roots and nodes outside the forest)
    pspan: IntArray  # the span from the parent (-1: none)
    depth: IntArray  # -1 outside the forest
    up_split: IntArray  # nearest splitter node strictly above, else the root
    group: IntArray  # cable group of the span from the parent (-1: none)
    g_start: IntArray  # group -> its first node
    g_len: IntArray  # group -> spans
    g_seq_span: IntArray  # group spans ordered by (group, seq)
    g_seq_first: IntArray  # group -> first row in g_seq_span


def _tree(route: _Route, fed: BoolArray) -> _Tree:
    """The generator's trees: every node hangs from the lowest span into it (roots aside)."""
    n = len(route.node_id)
    inner = route.s_live & ~(route.is_root[route.s_from] & route.is_root[route.s_to])
    inner &= ~route.is_root[route.s_to]
    pick = np.flatnonzero(inner)
    child, first = np.unique(route.s_to[pick], return_index=True)
    parent = np.arange(n, dtype=np.int64)
    pspan = np.full(n, -1, np.int64)
    parent[child] = route.s_from[pick[first]]
    pspan[child] = pick[first]
    depth, subtree = depth_and_subtree(parent, fed)
    depth = depth.astype(np.int64)
    parent[depth < 0] = np.flatnonzero(depth < 0)
    pspan[depth < 0] = -1
    levels = int(depth.max()) if n else 0
    up_split = np.arange(n, dtype=np.int64)
    for level in range(1, levels + 1):
        at = np.flatnonzero(depth == level)
        up = parent[at]
        up_split[at] = np.where(route.is_split[up], up, up_split[up])
    # the child that continues its parent's cable: most plant behind it, never a splitter node
    kids = np.flatnonzero((depth > 0) & ~route.is_split)
    order = np.lexsort((kids, -subtree[kids], parent[kids]))
    kids = kids[order]
    lead = np.r_[True, parent[kids][1:] != parent[kids][:-1]] if len(kids) else np.zeros(0, bool)
    heavy = np.full(n, -1, np.int64)
    heavy[parent[kids[lead]]] = kids[lead]
    below = depth > 0
    cut = route.is_root | route.is_split
    cont = below & ~cut[parent] & (heavy[parent] == np.arange(n))
    heads = np.flatnonzero(below & ~cont)
    group = np.full(n, -1, np.int64)
    group[heads] = np.arange(len(heads))
    for level in range(1, levels + 1):
        at = np.flatnonzero((depth == level) & cont)
        group[at] = group[parent[at]]
    g_start = parent[heads]
    members = np.flatnonzero(group >= 0)
    seq = depth[members] - depth[g_start[group[members]]]  # 1..n along the group
    g_len = np.bincount(group[members], minlength=len(heads)).astype(np.int64)
    order = np.lexsort((seq, group[members]))
    g_seq_first = np.concatenate([[0], np.cumsum(g_len)[:-1]]).astype(np.int64)
    return _Tree(parent, pspan, depth, up_split, group, g_start, g_len,
                 pspan[members[order]], g_seq_first)


def _drop_nodes(route: _Route, tree: _Tree, xy: FloatArray) -> IntArray:
    """The nearest working plant node (no core) of each connected premise (-1: none)."""
    candidates = np.flatnonzero((tree.depth >= 0) & ~route.is_core)
    if len(xy) == 0 or len(candidates) == 0:
        return np.full(len(xy), -1, np.int64)
    _, nearest = cKDTree(route.xy[candidates]).query(xy)
    return candidates[np.asarray(nearest, dtype=np.int64)]


# --------------------------------------------------------------------------- circuits


@dataclass(frozen=True)
class _Circuits:
    """One circuit per splitter input and per premise: glass from a source down to a target.

    ``source``: the node U it starts at (a splitter node: an output of splitter
    ``src_dev``; a root: an OLT port or a feeder strand, ``rank`` among the
    root's circuits). ``target``: node X; ``tgt_dev`` the splitter fed (-1: a
    premise, ``premise`` its index among the connected premises).
    """

    source: IntArray
    rank: IntArray
    src_dev: IntArray
    src_out: IntArray
    target: IntArray
    tgt_dev: IntArray
    premise: IntArray
    dev_node: IntArray  # splitter -> its node
    splitter_id: ObjArray
    root_load: IntArray  # node -> circuits starting at it (roots)


def _circuits(route: _Route, tree: _Tree, drop_node: IntArray) -> _Circuits:
    """Splitters per splitter node, and which output (or root) each circuit starts from."""
    n = len(route.node_id)
    served = np.flatnonzero(drop_node >= 0)
    x = drop_node[served]
    source_p = np.where(route.is_split[x], x, tree.up_split[x])
    prem_load = np.bincount(source_p, minlength=n).astype(np.int64)
    split_nodes = np.flatnonzero(route.is_split & (tree.depth > 0))
    devices = np.zeros(n, np.int64)
    child_load = np.zeros(n, np.int64)
    for level in range(int(tree.depth.max(initial=0)), 0, -1):  # deepest splitters first
        at = split_nodes[tree.depth[split_nodes] == level]
        load = prem_load[at] + child_load[at]
        devices[at] = np.maximum(1, -(-load // route.ratio[at]))
        np.add.at(child_load, tree.up_split[at], devices[at])
    dev_node = np.repeat(np.arange(n, dtype=np.int64), devices)
    dev_base = np.concatenate([[0], np.cumsum(devices)[:-1]]).astype(np.int64)
    n_dev = len(dev_node)
    # consumers: splitter inputs first (in splitter order), then premises (in premise order)
    source = np.concatenate([tree.up_split[dev_node], source_p])
    target = np.concatenate([dev_node, x])
    tgt_dev = np.concatenate([np.arange(n_dev, dtype=np.int64), np.full(len(x), -1, np.int64)])
    premise = np.concatenate([np.full(n_dev, -1, np.int64), served.astype(np.int64)])
    order = np.argsort(source, kind="stable")
    source, target, tgt_dev, premise = source[order], target[order], tgt_dev[order], \
        premise[order]
    starts = np.searchsorted(source, np.arange(n))
    rank = np.arange(len(source), dtype=np.int64) - starts[source]
    at_split = route.is_split[source]
    ratio = np.maximum(route.ratio[source], 1)
    src_dev = np.where(at_split, dev_base[source] + rank // ratio, -1)
    src_out = np.where(at_split, rank % ratio + 1, -1)
    root_load = np.where(route.is_root, np.bincount(source, minlength=n), 0).astype(np.int64)
    return _Circuits(source, rank, src_dev, src_out, target, tgt_dev, premise, dev_node,
                     make_ids("sp", n_dev), root_load)


# --------------------------------------------------------------------------- cables


def _sizes(demand: IntArray, sizes: IntArray, rng: np.random.Generator) -> tuple[IntArray,
                                                                                IntArray]:
    """Cables per demand and strands of each (parallel cables split the demand evenly)."""
    need = demand + np.ceil(demand * SPARE_SHARE * rng.uniform(0.5, 1.5, len(demand)))
    need = np.maximum(need, 1).astype(np.int64)
    count = -(-need // sizes[-1])
    each = -(-need // count)
    return count, sizes[np.searchsorted(sizes, each)]


def _feeder_cables(route: _Route, feed: _Feed, circuits: _Circuits, cables: _Cables,
                   rng: np.random.Generator) -> tuple[IntArray, IntArray]:
    """Feeder cables core -> cabinet; per node the first cable and strands used per cable."""
    n = len(route.node_id)
    base = np.full(n, -1, np.int64)
    per = np.ones(n, np.int64)
    cabs = feed.cabinets
    if len(cabs) == 0:
        return base, per
    demand = circuits.root_load[cabs]
    count, size = _sizes(demand, FEEDER_SIZES, rng)
    owner = np.repeat(np.arange(len(cabs)), count)  # cable -> cabinet row
    k = len(owner)
    number = np.arange(k) - np.repeat(np.cumsum(count) - count, count)
    per[cabs] = np.maximum(1, -(-demand // count))
    used = np.clip(demand[owner] - number * per[cabs][owner], 0, per[cabs][owner])
    hops = feed.hops[owner]
    path_cable = np.repeat(np.arange(k), hops)
    path_seq = np.arange(hops.sum()) - np.repeat(np.cumsum(hops) - hops, hops) + 1
    path_span = feed.path_spans[owner[path_cable], path_seq - 1]
    label = route.name[cabs]
    label = np.where(pd.isna(label), route.node_id[cabs], label)
    name = np.array([f"{label[o]} F{j + 1}" for o, j in zip(owner, number, strict=True)],
                    dtype=object)
    first = cables.add(feed.path_nodes[owner, 0], cabs[owner], size[owner],
                       np.full(k, TUBE, np.int64), name, used.astype(np.int64),
                       path_cable, path_seq.astype(np.int64), path_span)
    base[cabs] = first + np.cumsum(count) - count
    return base, per


@dataclass(frozen=True)
class _Legs:
    """Each circuit's stretch on each distribution cable, top-down within the circuit."""

    circuit: IntArray
    cable: IntArray
    strand: IntArray
    start: IntArray  # node where the leg enters its cable (the cable's from_node)
    end: IntArray  # node where it leaves (cut there, or the cable's to_node)
    first: BoolArray
    last: BoolArray


def _legs(route: _Route, tree: _Tree, circuits: _Circuits, cables: _Cables,
          rng: np.random.Generator) -> _Legs:
    """Walk each circuit up from its target to its source; cable the groups by their load."""
    walking = np.flatnonzero(circuits.target != circuits.source)
    cur = circuits.target[walking].copy()
    group = tree.group[cur]
    end = cur.copy()
    found: list[tuple[IntArray, IntArray, IntArray, IntArray]] = []
    alive = np.arange(len(walking))
    step = 0
    while len(alive):
        up = tree.parent[cur[alive]]
        done = up == circuits.source[walking[alive]]
        switch = ~done & (tree.group[up] != group[alive])
        leave = alive[done | switch]
        found.append((walking[leave], group[leave], end[leave], np.full(len(leave), step)))
        moved = alive[switch]
        group[moved] = tree.group[up[switch]]
        end[moved] = up[switch]
        cur[alive] = up
        alive = alive[~done]
        step += 1
    columns = [np.concatenate(part) for part in zip(*found, strict=True)] if found else \
        [np.zeros(0, np.int64)] * 4
    circuit, grp, leg_end, height = columns
    # strands: the circuits on a group in circuit order
    by_group = np.lexsort((circuit, grp))
    n_groups = len(tree.g_start)
    load = np.bincount(grp, minlength=n_groups).astype(np.int64)
    g_first_leg = np.concatenate([[0], np.cumsum(load)[:-1]]).astype(np.int64)
    rank = np.empty(len(grp), np.int64)
    rank[by_group] = np.arange(len(grp)) - g_first_leg[grp[by_group]]
    count, size = _sizes(load, DIST_SIZES, rng)
    per = np.maximum(1, -(-load // count))
    owner = np.repeat(np.arange(n_groups), count)  # cable -> group
    k = len(owner)
    number = np.arange(k) - np.repeat(np.cumsum(count) - count, count)
    used = np.clip(load[owner] - number * per[owner], 0, per[owner])
    glen = tree.g_len[owner]
    path_cable = np.repeat(np.arange(k), glen)
    path_seq = np.arange(glen.sum()) - np.repeat(np.cumsum(glen) - glen, glen)
    path_span = tree.g_seq_span[tree.g_seq_first[owner[path_cable]] + path_seq]
    last_node = route.s_to[tree.g_seq_span[tree.g_seq_first[owner] + glen - 1]]
    sz = size[owner]
    per_tube = np.where((sz == 24) & (rng.random(k) < 0.3), 24, np.minimum(sz, TUBE))
    first = cables.add(tree.g_start[owner], last_node, sz, per_tube.astype(np.int64),
                       np.full(k, None, dtype=object), used.astype(np.int64), path_cable,
                       (path_seq + 1).astype(np.int64), path_span)
    g_cable = first + np.cumsum(count) - count
    top_down = np.lexsort((-height, circuit))
    circuit, grp, leg_end, rank = circuit[top_down], grp[top_down], leg_end[top_down], \
        rank[top_down]
    first_leg = np.r_[True, circuit[1:] != circuit[:-1]] if len(circuit) else np.zeros(0, bool)
    last_leg = np.r_[circuit[1:] != circuit[:-1], True] if len(circuit) else np.zeros(0, bool)
    return _Legs(circuit, g_cable[grp] + rank // per[grp], rank % per[grp] + 1,
                 tree.g_start[grp], leg_end, first_leg, last_leg)


def _dark_cables(route: _Route, cables: _Cables, rng: np.random.Generator) -> None:
    """A dark single-span cable on every in-service span that no cable takes yet."""
    taken = np.zeros(len(route.span_id), bool)
    for spans in cables.path_span:
        taken[spans] = True
    dark = np.flatnonzero(route.s_live & ~taken)
    k = len(dark)
    feeder = route.is_root[route.s_from[dark]] & route.is_root[route.s_to[dark]]
    size = np.where(feeder, rng.choice([96, 144], k), rng.choice(DIST_SIZES, k))
    cables.add(route.s_from[dark], route.s_to[dark], size.astype(np.int64),
               np.full(k, TUBE, np.int64), np.full(k, None, dtype=object),
               np.zeros(k, np.int64), np.arange(k, dtype=np.int64), np.ones(k, np.int64), dark)


def _cable_frame(route: _Route, cables: _Cables, cable_ids: ObjArray) -> pd.DataFrame:
    path_cable = np.concatenate(cables.path_cable)
    year = np.full(cables.count, -np.inf)
    span_year = route.s_year[np.concatenate(cables.path_span)]
    known = ~np.isnan(span_year)
    np.maximum.at(year, path_cable[known], span_year[known])  # no older than its spans
    install_year = pd.array(np.where(np.isfinite(year), year, 0).astype(np.int64), dtype="Int64")
    install_year[~np.isfinite(year)] = pd.NA
    return pd.DataFrame({
        "cable_id": cable_ids,
        "from_node": route.node_id[np.concatenate(cables.from_node)],
        "to_node": route.node_id[np.concatenate(cables.to_node)],
        "fiber_count": pd.array(np.concatenate(cables.fiber_count), dtype="Int64"),
        "fibers_per_tube": pd.array(np.concatenate(cables.per_tube), dtype="Int64"),
        "status": np.full(cables.count, _IN_SERVICE, dtype=object),
        "name": np.concatenate(cables.name),
        "install_year": install_year,
    })


# --------------------------------------------------------------------------- ports and glass


@dataclass(frozen=True)
class _Ports:
    """OLT ports: one per circuit starting at a core or carried by a feeder strand."""

    frame: pd.DataFrame
    node_port: IntArray  # node -> index of the first port of its circuits (-1: none)


def _olt_ports(route: _Route, feed: _Feed, circuits: _Circuits) -> _Ports:
    """Ports at each core: its own tile's circuits first, then its cabinets' in node order."""
    n = len(route.node_id)
    roots = np.flatnonzero(route.is_root & (circuits.root_load > 0) & (feed.home >= 0))
    core = feed.home[roots]
    order = np.lexsort((roots, roots != core, core))
    roots, core = roots[order], core[order]
    load = circuits.root_load[roots]
    port_core = np.repeat(core, load)
    first = np.r_[True, port_core[1:] != port_core[:-1]] if len(port_core) else \
        np.zeros(0, bool)
    starts = np.flatnonzero(first)
    number = np.arange(len(port_core)) - np.repeat(starts, np.diff(np.r_[starts,
                                                                       len(port_core)]))
    cores = np.flatnonzero(route.is_core)
    ordinal = np.searchsorted(cores, port_core) + 1
    width = len(str(len(cores)))
    olt = number // (PORTS_PER_CARD * CARDS_PER_OLT) + 1
    card = number % (PORTS_PER_CARD * CARDS_PER_OLT) // PORTS_PER_CARD + 1
    port = number % PORTS_PER_CARD + 1
    olt_id = np.array([f"OLT{c:0{width}d}-{o:02d}" for c, o in zip(ordinal, olt, strict=True)],
                      dtype=object)
    port_id = np.array([f"{i}/{c:02d}/{p:02d}" for i, c, p in zip(olt_id, card, port,
                                                                     strict=True)],
                       dtype=object)
    node_port = np.full(n, -1, np.int64)
    node_port[roots] = np.cumsum(load) - load
    frame = pd.DataFrame({"olt_port_id": port_id, "node_id": route.node_id[port_core],
                          "olt_id": olt_id})
    return _Ports(frame, node_port)


def _terminal(kind: str, ids: ObjArray, num: IntArray | None = None,
              side: str | None = None) -> dict[str, Any]:
    count = len(ids)
    return {"type": np.full(count, kind, dtype=object), "id": ids,
            "num": np.full(count, -1, np.int64) if num is None else num.astype(np.int64),
            "side": np.full(count, side, dtype=object)}


def _take(term: dict[str, Any], pick: npt.NDArray[Any]) -> dict[str, Any]:
    return {key: value[pick] for key, value in term.items()}


def _join(parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: np.concatenate([p[key] for p in parts]) for key in ("type", "id", "num", "side")}


def _glass(route: _Route, circuits: _Circuits, legs: _Legs, ports: _Ports, home: IntArray,
           cable_ids: ObjArray, feeder_base: IntArray, feeder_per: IntArray,
           prem_id: ObjArray) -> Tables:
    """Connections and drops: every circuit from its source terminal to its target."""
    src, rank = circuits.source, circuits.rank
    port_ids = np.asarray(ports.frame["olt_port_id"], dtype=object)
    at_core = route.is_core[src]
    at_cab = route.is_root[src] & ~at_core
    at_split = route.is_split[src]
    # the source terminal of every circuit: a splitter output, an OLT port or a feeder strand
    f_cable = feeder_base[src] + rank // feeder_per[src]
    f_strand = rank % feeder_per[src] + 1
    sp, co, cb = np.flatnonzero(at_split), np.flatnonzero(at_core), np.flatnonzero(at_cab)
    src_id = np.full(len(src), None, dtype=object)
    src_id[sp] = circuits.splitter_id[circuits.src_dev[sp]]
    src_id[co] = port_ids[ports.node_port[src[co]] + rank[co]]
    src_id[cb] = cable_ids[f_cable[cb]]
    source = {
        "type": np.select([at_split, at_core], ["out", "olt"], "strand").astype(object),
        "id": src_id,
        "num": np.select([at_split, at_core], [circuits.src_out, -1], f_strand),
        "side": np.full(len(src), None, dtype=object),
    }
    source["side"][cb] = "from"
    conns: list[tuple[ObjArray, str | ObjArray, dict[str, Any], dict[str, Any]]] = []
    # feeder strands: from an OLT port at the core (spliced or dropped at the cabinet below)
    conns.append((route.node_id[home[src[cb]]], "connector",
                  _terminal("olt", port_ids[ports.node_port[src[cb]] + rank[cb]]),
                  _terminal("strand", cable_ids[f_cable[cb]], f_strand[cb], "to")))
    strand = cable_ids[legs.cable]
    first, last = np.flatnonzero(legs.first), np.flatnonzero(legs.last)
    c_first = legs.circuit[first]
    conns.append((route.node_id[src[c_first]],
                  np.where(at_cab[c_first], "splice", "connector").astype(object),
                  _take(source, c_first),
                  _terminal("strand", strand[first], legs.strand[first], "to")))
    inner = np.flatnonzero(~legs.last)  # a splice at each change of cable
    conns.append((route.node_id[legs.end[inner]], "splice",
                  _terminal("strand", strand[inner], legs.strand[inner], "from"),
                  _terminal("strand", strand[inner + 1], legs.strand[inner + 1], "to")))
    into = last[circuits.tgt_dev[legs.circuit[last]] >= 0]
    c_into = legs.circuit[into]
    conns.append((route.node_id[circuits.target[c_into]], "connector",
                  _terminal("strand", strand[into], legs.strand[into], "from"),
                  _terminal("in", circuits.splitter_id[circuits.tgt_dev[c_into]],
                            np.ones(len(into), np.int64))))
    # drops: from the circuit's last strand, or straight from its source terminal
    drop_src = {key: value.copy() for key, value in source.items()}
    c_last = legs.circuit[last]
    for key, value in _terminal("strand", strand[last], legs.strand[last], "from").items():
        drop_src[key][c_last] = value
    to_premise = np.flatnonzero(circuits.premise >= 0)
    to_premise = to_premise[np.argsort(circuits.premise[to_premise], kind="stable")]
    s = _take(drop_src, to_premise)
    drops = pd.DataFrame({
        "drop_id": make_ids("dr", len(to_premise)),
        "premise_id": prem_id[circuits.premise[to_premise]],
        "node_id": route.node_id[circuits.target[to_premise]],
        "src_type": s["type"], "src_id": s["id"], "src_num": _num(s["num"]),
        "src_side": s["side"], "length_m": np.full(len(to_premise), np.nan),
    })
    return {"connections": _connection_frame(conns), "drops": drops}


def _num(num: IntArray) -> pd.arrays.IntegerArray:
    out = pd.array(num.astype(np.int64), dtype="Int64")
    out[num < 1] = pd.NA
    return out


def _connection_frame(conns: list[tuple[ObjArray, str | ObjArray, dict[str, Any],
                                        dict[str, Any]]]) -> pd.DataFrame:
    node = np.concatenate([c[0] for c in conns])
    kind = np.concatenate([np.broadcast_to(np.asarray(c[1], dtype=object), (len(c[0]),))
                           for c in conns])
    a, b = _join([c[2] for c in conns]), _join([c[3] for c in conns])
    return pd.DataFrame({
        "connection_id": make_ids("x", len(node)), "node_id": node, "kind": kind,
        "a_type": a["type"], "a_id": a["id"], "a_num": _num(a["num"]), "a_side": a["side"],
        "b_type": b["type"], "b_id": b["id"], "b_num": _num(b["num"]), "b_side": b["side"],
        "loss_db": np.full(len(node), np.nan),
    })


def _strand_state(cables: _Cables, cable_ids: ObjArray, rng: np.random.Generator) -> pd.DataFrame:
    """A few unused strands reserved (the next ones after those in use) and a few broken."""
    count = np.concatenate(cables.fiber_count)
    used = np.concatenate(cables.used)
    spare = count - used
    k = len(count)
    reserve = np.where((spare >= 2) & (rng.random(k) < RESERVED_SHARE),
                       rng.integers(1, 5, k), 0)
    reserve = np.minimum(reserve, spare - 1)
    reserve = np.maximum(reserve, 0)
    rest = spare - reserve
    broken = (rest >= 1) & (rng.random(k) < BROKEN_SHARE)
    where = used + reserve + 1 + np.floor(rng.random(k) * np.maximum(rest, 1)).astype(np.int64)
    r_cable = np.repeat(np.arange(k), reserve)
    r_strand = used[r_cable] + np.arange(len(r_cable)) - np.repeat(np.cumsum(reserve) - reserve,
                                                                    reserve) + 1
    b_cable = np.flatnonzero(broken)
    cable = np.concatenate([r_cable, b_cable])
    strand = np.concatenate([r_strand, where[b_cable]])
    order = np.lexsort((strand, cable))
    return pd.DataFrame({
        "cable_id": cable_ids[cable[order]],
        "strand": pd.array(strand[order].astype(np.int64), dtype="Int64"),
        "state": np.where(np.arange(len(cable)) < len(r_cable), "reserved",
                          "broken").astype(object)[order],
    })


# --------------------------------------------------------------------------- route counts


def span_strand_counts(spans: pd.DataFrame, tables: Tables) -> pd.DataFrame:
    """Per span with an in-service cable: its strands, and those that are not free.

    A strand of an in-service cable is not free on a span where it is
    ``broken`` or ``reserved``, or where the piece of it covering the span has
    a connection or drop at either end (the terminal's side, or at the
    cable's ends the only side there is, says which piece). ``tables`` are
    typed (as :func:`strand_plant` makes them) and their cable paths valid.

    Returns
    -------
    DataFrame
        ``fiber_count`` and ``fibers_used`` indexed by ``span_id`` (spans without
        an in-service cable left out).

    Examples
    --------
    >>> spans = pd.DataFrame({"span_id": ["s1", "s2"], "from_node": ["a", "b"],
    ...                       "to_node": ["b", "c"]})
    >>> tables = {
    ...     "cables": pd.DataFrame({"cable_id": ["C"], "from_node": ["a"], "to_node": ["c"],
    ...                             "fiber_count": [12], "status": ["in_service"]}),
    ...     "cable_spans": pd.DataFrame({"cable_id": ["C", "C"], "seq": [1, 2],
    ...                                  "span_id": ["s1", "s2"]}),
    ...     "drops": pd.DataFrame({"drop_id": ["d"], "premise_id": ["p"], "node_id": ["b"],
    ...                            "src_type": ["strand"], "src_id": ["C"], "src_num": [3],
    ...                            "src_side": ["from"]}),
    ...     "strand_state": pd.DataFrame({"cable_id": ["C"], "strand": [5],
    ...                                   "state": ["reserved"]}),
    ... }
    >>> span_strand_counts(spans, tables).to_dict("index")
    {'s1': {'fiber_count': 12, 'fibers_used': 2}, 's2': {'fiber_count': 12, 'fibers_used': 1}}
    """
    cables = tables["cables"]
    n_cables = len(cables)
    live = np.asarray(cables["status"].fillna(_IN_SERVICE) == _IN_SERVICE, dtype=bool) \
        if "status" in cables.columns else np.ones(n_cables, bool)
    cable_index = pd.Index(cables["cable_id"])
    paths = _Paths.of(spans, tables, cable_index)
    # strands with a state are busy on every span; the others where a piece is named
    states = tables.get("strand_state", pd.DataFrame({"cable_id": [], "strand": []}))
    st_cable = cable_index.get_indexer(states["cable_id"]).astype(np.int64)
    st_num = np.asarray(states["strand"], dtype=np.int64)
    terms = _strand_terminals(tables)
    t_cable = cable_index.get_indexer(terms["id"]).astype(np.int64)
    t_num = terms["num"]
    t_pos = paths.position(t_cable, terms["node"])
    ok = (t_cable >= 0) & (t_pos >= 0)
    big = int(max(t_num.max(initial=0), st_num.max(initial=0))) + 1
    ok &= ~np.isin(t_cable * big + t_num, st_cable * big + st_num)
    t_cable, t_num, t_pos, side = t_cable[ok], t_num[ok], t_pos[ok], terms["side"][ok]
    t_from = np.where(pd.isna(side), t_pos == paths.length[t_cable], side == "from")
    # the cuts of each named strand: its cable's ends and every node where it is named
    strands, strand = np.unique(t_cable * big + t_num, return_inverse=True)
    s_cable = strands // big
    width = int(paths.length.max(initial=0)) + 1
    cut = np.unique(np.concatenate([strand * width + t_pos, np.arange(len(strands)) * width,
                                    np.arange(len(strands)) * width + paths.length[s_cable]]))
    at = np.searchsorted(cut, strand * width + t_pos)
    low = np.where(t_from, cut[np.maximum(at - 1, 0)], cut[at]) - strand * width
    high = np.where(t_from, cut[at], cut[np.minimum(at + 1, len(cut) - 1)]) - strand * width
    _, once = np.unique(strand * width + low, return_index=True)  # each piece once
    # pieces cover seqs low+1..high: +1 / -1 in a row per cable with one slot to spare
    slot = paths.first + np.arange(n_cables)
    diff = np.zeros(len(paths.cable) + n_cables + 1, np.int64)
    np.add.at(diff, slot[s_cable[strand[once]]] + low[once], 1)
    np.add.at(diff, slot[s_cable[strand[once]]] + high[once], -1)
    busy = np.cumsum(diff)[slot[paths.cable] + paths.seq - 1]
    busy += np.bincount(st_cable[st_cable >= 0], minlength=n_cables)[paths.cable]
    fibers = np.asarray(cables["fiber_count"], dtype=np.int64)[paths.cable]
    counted = live[paths.cable]
    out = pd.DataFrame({"span_id": paths.span_id[counted], "fiber_count": fibers[counted],
                        "fibers_used": busy[counted]})
    return out.groupby("span_id", sort=False).sum()


@dataclass(frozen=True)
class _Paths:
    """Cable paths: ``cable_spans`` rows in (cable, seq) order, and each node's position."""

    cable: IntArray
    seq: IntArray
    span_id: ObjArray
    length: IntArray  # cable -> spans
    first: IntArray  # cable -> its first row
    node_index: pd.Index
    keys: IntArray  # sorted cable * nodes + node
    pos: IntArray  # the position (0 at from_node) of each key

    @classmethod
    def of(cls, spans: pd.DataFrame, tables: Tables, cable_index: pd.Index) -> _Paths:
        """The paths of ``tables``'s cables over ``spans``."""
        cables, rows = tables["cables"], tables["cable_spans"]
        n_cables = len(cables)
        node_index = pd.Index(pd.concat([spans["from_node"], spans["to_node"]]).unique())
        n_nodes = len(node_index)
        cable = cable_index.get_indexer(pd.Index(rows["cable_id"])).astype(np.int64)
        seq = np.asarray(rows["seq"], dtype=np.int64)
        order = np.lexsort((seq, cable))
        cable, seq = cable[order], seq[order]
        span = pd.Index(spans["span_id"]).get_indexer(np.asarray(rows["span_id"])[order])
        length = np.bincount(cable, minlength=n_cables).astype(np.int64)
        first = np.concatenate([[0], np.cumsum(length)[:-1]]).astype(np.int64)
        s_from = node_index.get_indexer(spans["from_node"])[span]
        s_to = node_index.get_indexer(spans["to_node"])[span]
        # the node after each span: the end it shares with the next, the cable's to_node last
        same_cable = np.r_[cable[1:] == cable[:-1], False]
        next_from, next_to = np.r_[s_from[1:], -2], np.r_[s_to[1:], -2]
        shared = np.where((s_from == next_from) | (s_from == next_to), s_from, s_to)
        to_node = node_index.get_indexer(cables["to_node"]).astype(np.int64)
        from_node = node_index.get_indexer(cables["from_node"]).astype(np.int64)
        after = np.where(same_cable, shared, to_node[cable])
        keys = np.concatenate([np.arange(n_cables) * n_nodes + from_node,
                               cable * n_nodes + after])
        pos = np.concatenate([np.zeros(n_cables, np.int64), seq])
        key_order = np.argsort(keys, kind="stable")
        return cls(cable, seq, spans["span_id"].to_numpy()[span], length, first, node_index,
                   keys[key_order], pos[key_order])

    def position(self, cable: IntArray, node: ObjArray) -> IntArray:
        """Where each (cable, node) lies on the cable's path (-1: not on it)."""
        at = self.node_index.get_indexer(pd.Index(node)).astype(np.int64)
        key = cable * len(self.node_index) + at
        if len(self.keys) == 0:
            return np.full(len(key), -1, np.int64)
        hit = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
        found = (self.keys[hit] == key) & (cable >= 0) & (at >= 0)
        return np.where(found, self.pos[hit], -1)


def _strand_terminals(tables: Tables) -> dict[str, npt.NDArray[Any]]:
    """Every strand terminal a connection or drop names: cable id, strand, node, side."""
    parts = []
    conn = tables.get("connections")
    if conn is not None and len(conn):
        for end in ("a", "b"):
            pick = conn[conn[f"{end}_type"] == "strand"]
            parts.append((pick[f"{end}_id"], pick[f"{end}_num"], pick["node_id"],
                          pick[f"{end}_side"]))
    drops = tables.get("drops")
    if drops is not None and len(drops):
        pick = drops[drops["src_type"] == "strand"]
        parts.append((pick["src_id"], pick["src_num"], pick["node_id"], pick["src_side"]))
    if not parts:
        empty = np.zeros(0, dtype=object)
        return {"id": empty, "num": np.zeros(0, np.int64), "node": empty, "side": empty}
    return {
        "id": np.concatenate([np.asarray(p[0], dtype=object) for p in parts]),
        "num": np.concatenate([np.asarray(p[1], dtype=np.int64) for p in parts]),
        "node": np.concatenate([np.asarray(p[2], dtype=object) for p in parts]),
        "side": np.concatenate([np.asarray(p[3], dtype=object) for p in parts]),
    }


def with_strand_counts(spans: FrameT, tables: Tables) -> FrameT:
    """``spans`` with ``fiber_count`` and ``fibers_used`` from the strands where a span holds
    an in-service cable (other spans keep theirs); see :func:`span_strand_counts`.

    Examples
    --------
    >>> from netgis.generate import generate_city
    >>> ds = generate_city(premises=1500, seed=4)
    >>> spans = with_strand_counts(ds.spans, strand_plant(ds.nodes, ds.spans, ds.premises,
    ...                                                   seed=4))
    >>> bool((spans["fibers_used"] <= spans["fiber_count"]).all())
    True
    """
    counts = span_strand_counts(spans, tables)
    out = spans.copy()
    pick = pd.Index(counts.index).get_indexer(spans["span_id"])
    has = pick >= 0
    for col in ("fiber_count", "fibers_used"):
        values = out[col].astype("Int64").array.copy()
        values[has] = counts[col].to_numpy()[pick[has]]
        out[col] = values
    return out
