"""Redundancy: lit spans, protection, cut and failure impact, scenarios.

Everything here works on :class:`netgis.engine.graph.AnalysisGraph` (cores merged
into the super-core S) in linear time:

* one iterative depth-first search from S (Hopcroft-Tarjan lowpoints, with
  edges identified by span so that parallel spans are never mistaken for a
  bridge) gives the bridges, the biconnected blocks and, through subtree sums
  over the DFS tree, the cut impact of every span and the failure impact of
  every node. The DFS subtree below a bridge is exactly the bridge tree's far
  side, and the subtrees of a node's separated children are exactly its child
  blocks in the block-cut tree, so no search per span or node is needed;
* duct protection asks, per duct group, whether removing the group can
  disconnect anything in S's 2-edge-connected component. A random XOR label
  per non-tree edge (tree edges carry the XOR of the labels crossing them)
  makes every edge cut XOR to zero; a duct whose labels are linearly
  independent therefore cuts nothing, and only the rare dependent ones get an
  exact connected-components check.

Examples
--------
>>> import numpy as np
>>> from netgis.engine.graph import AnalysisGraph
>>> # S(0) - 1 - 2 - S(0): a ring; 2 - 3: a spur
>>> g = AnalysisGraph(node_ids=np.array(["C", "A", "B", "D"], dtype=object),
...     node_vertex=np.array([0, 1, 2, 3]), is_core=np.array([True, False, False, False]),
...     n_vertices=4, has_core=True, edge_span=np.array(["a", "b", "c", "d"], dtype=object),
...     eu=np.array([0, 1, 2, 2]), ev=np.array([1, 2, 0, 3]),
...     edge_from=np.array(["C", "A", "B", "B"], dtype=object),
...     edge_to=np.array(["A", "B", "C", "D"], dtype=object),
...     edge_duct=np.array([None] * 4, dtype=object))
>>> s = structure(g)
>>> s.is_bridge.tolist()
[False, False, False, True]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from netgis.engine._dfs import dfs_arrays, subtree_sums
from netgis.engine.graph import AnalysisGraph

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

S = 0  #: the super-core vertex


@dataclass(frozen=True)
class Structure:
    """What one DFS from S tells about the analysis graph.

    Arrays indexed by edge: ``lit``, ``is_bridge``, ``block`` (biconnected
    block id, -1 for loops and unlit edges), ``deeper`` (the end vertex farther
    from S in the DFS tree). Arrays indexed by vertex: ``disc`` (-1 when not
    reached), ``parent`` (-1 for S and unreached), ``low``, ``post_order``
    (reached vertices, children before parents).
    """

    lit: BoolArray
    is_bridge: BoolArray
    block: IntArray
    block_has_core: BoolArray
    block_is_bridge: BoolArray
    deeper: IntArray
    disc: IntArray
    low: IntArray
    parent: IntArray
    parent_edge: IntArray
    post_order: IntArray
    tree_edge: BoolArray


def structure(g: AnalysisGraph) -> Structure:
    """Run the DFS from S and return bridges, blocks and the DFS tree."""
    m = g.n_edges
    eu, ev = g.eu, g.ev
    dfs = _dfs_from_core(g)
    disc_a = np.asarray(dfs.disc, dtype=np.int64)
    block_a = np.asarray(dfs.block, dtype=np.int64)
    lit = np.zeros(m, dtype=bool)
    if m:
        lit = disc_a[eu] >= 0
    deeper = np.where(disc_a[eu] >= disc_a[ev], eu, ev) if m else np.zeros(0, dtype=np.int64)
    block_has_core = np.zeros(dfs.n_blocks, dtype=bool)
    touches_s = (eu == S) | (ev == S)
    if g.has_core:
        block_has_core[block_a[touches_s & (block_a >= 0)]] = True
    bridge_a = np.asarray(dfs.is_bridge, dtype=bool)
    block_is_bridge = np.zeros(dfs.n_blocks, dtype=bool)
    block_is_bridge[block_a[bridge_a]] = True
    return Structure(
        lit=lit, is_bridge=bridge_a, block=block_a, block_has_core=block_has_core,
        block_is_bridge=block_is_bridge, deeper=deeper.astype(np.int64), disc=disc_a,
        low=np.asarray(dfs.low, dtype=np.int64), parent=np.asarray(dfs.parent, dtype=np.int64),
        parent_edge=np.asarray(dfs.parent_edge, dtype=np.int64),
        post_order=np.asarray(dfs.post, dtype=np.int64),
        tree_edge=np.asarray(dfs.tree_edge, dtype=bool),
    )


class _Dfs(NamedTuple):
    """What the DFS of :func:`_dfs_from_core` found (the fields of :class:`Structure`
    before it is assembled; ``n_blocks``: blocks numbered)."""

    disc: IntArray
    low: IntArray
    parent: IntArray
    parent_edge: IntArray
    block: IntArray
    is_bridge: BoolArray
    tree_edge: BoolArray
    post: IntArray
    n_blocks: int


def _adjacency(n: int, eu: IntArray, ev: IntArray) -> tuple[IntArray, IntArray, IntArray,
                                                             IntArray]:
    """Each vertex's neighbours and edges in CSR form: for vertex ``x``, positions
    ``start[x]`` to ``end[x]`` of ``nbr`` (the neighbour) and ``eid`` (the edge)."""
    m = len(eu)
    ends = np.concatenate([eu, ev])
    order = np.argsort(ends, kind="stable")
    nbr = np.ascontiguousarray(np.concatenate([ev, eu])[order], dtype=np.int64)
    eid = np.ascontiguousarray(np.concatenate([np.arange(m), np.arange(m)])[order],
                               dtype=np.int64)
    indptr = np.zeros(n + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(np.bincount(ends, minlength=n))
    return nbr, eid, indptr[:-1].copy(), indptr[1:].copy()


def _dfs_from_core(g: AnalysisGraph) -> _Dfs:
    """The iterative DFS from S (Tarjan's): discovery and low times, the DFS tree, the block
    of every edge and the bridges (compiled: :func:`netgis.engine._dfs.dfs_arrays`)."""
    n, m = g.n_vertices, g.n_edges
    eu = np.asarray(g.eu, dtype=np.int64)
    ev = np.asarray(g.ev, dtype=np.int64)
    nbr, eid, start, end = _adjacency(n, eu, ev)
    disc, low, parent, parent_edge, block, is_bridge, tree_edge, post, n_blocks = dfs_arrays(
        n, m, nbr, eid, start, end, bool(g.has_core and n))
    return _Dfs(disc, low, parent, parent_edge, block, is_bridge, tree_edge, post,
                int(n_blocks))


def two_edge_components(g: AnalysisGraph, st: Structure) -> IntArray:
    """Label of the 2-edge-connected component of every vertex (bridges removed)."""
    keep = ~st.is_bridge
    return _components(g.n_vertices, g.eu[keep], g.ev[keep])


def _components(n: int, a: IntArray, b: IntArray) -> IntArray:
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    mat = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(mat, directed=False)
    return np.asarray(labels, dtype=np.int64)


@dataclass(frozen=True)
class Protection:
    """Per-edge protection flags of a premise attached to that edge (docs/spec.md §2.5)."""

    span: BoolArray
    node: BoolArray
    duct: BoolArray


class DuctMemo:
    """The duct exposure of the last 2-edge-connected component H of S, for the next one.

    Which edges of H a duct failure cuts off depends on H alone: its edges (span, end
    nodes) and their ducts. A live analysis re-derives the network after each span or
    node edit, and most edits (a span of a tree branch switched off, a premise, a span
    redrawn) leave H as it was: then the searches of :func:`_duct_exposed` (about 0.1 s
    at a million premises) are not run again.
    """

    def __init__(self) -> None:
        self._key: tuple[npt.NDArray[np.object_], ...] | None = None
        self._exposed: BoolArray | None = None

    def get(self, key: tuple[npt.NDArray[np.object_], ...]) -> BoolArray | None:
        """The exposure of the edges of H (in ``key``'s order) if H is the one kept."""
        kept = self._key
        if kept is None or self._exposed is None or len(kept[0]) != len(key[0]):
            return None
        if all(np.array_equal(a, b) for a, b in zip(kept, key, strict=True)):
            return self._exposed
        return None

    def put(self, key: tuple[npt.NDArray[np.object_], ...], exposed: BoolArray) -> None:
        """Keep the exposure of the edges of H (in ``key``'s order)."""
        self._key, self._exposed = key, exposed


def protection(g: AnalysisGraph, st: Structure, *, seed: int = 0,
               memo: DuctMemo | None = None) -> Protection:
    """Span, node and duct protection of a premise attached to each edge of G.

    A premise's protection depends only on its served span: the attachment
    point splits that span, and the pieces stay in the span's block. ``memo``
    keeps the duct exposure of H between calls (:class:`DuctMemo`).
    """
    m = g.n_edges
    if not g.has_core or m == 0:
        z = np.zeros(m, dtype=bool)
        return Protection(z, z.copy(), z.copy())
    ecc = two_edge_components(g, st)
    in_h = st.lit & ~st.is_bridge & (ecc[g.eu] == ecc[S])
    loops = g.eu == g.ev  # spans between two cores: loops at S, always protected
    span_p = in_h | (loops & st.lit)
    blk = st.block
    node_p = loops & st.lit
    has_block = blk >= 0
    node_p[has_block] |= st.block_has_core[blk[has_block]] & ~st.block_is_bridge[blk[has_block]]
    if memo is None:
        exposed = _duct_exposed(g, st, in_h, seed=seed)
    else:
        h = np.flatnonzero(in_h)
        key = (g.edge_span[h], g.edge_from[h], g.edge_to[h], g.edge_duct[h])
        kept = memo.get(key)
        exposed = np.zeros(m, dtype=bool)
        if kept is None:
            exposed = _duct_exposed(g, st, in_h, seed=seed)
            memo.put(key, exposed[h])
        else:
            exposed[h] = kept
    duct_p = span_p & ~exposed
    return Protection(span_p, node_p & span_p, duct_p)


def _duct_exposed(g: AnalysisGraph, st: Structure, in_h: BoolArray, *, seed: int) -> BoolArray:
    """Edges of S's 2-edge-connected component H whose premises some duct failure cuts off."""
    m = g.n_edges
    exposed = np.zeros(m, dtype=bool)
    has_duct = np.asarray([d is not None for d in g.edge_duct], dtype=bool) & in_h
    if not has_duct.any():
        return exposed
    idx = np.flatnonzero(has_duct)
    ducts = g.edge_duct[idx].astype(str)
    _uniq, inv, counts = np.unique(ducts, return_inverse=True, return_counts=True)
    multi = counts[inv] >= 2
    if not multi.any():
        return exposed
    labels = _cut_labels(g, st, seed=seed)
    groups: dict[int, list[int]] = {}
    for e, k in zip(idx[multi].tolist(), inv[multi].tolist(), strict=True):
        groups.setdefault(k, []).append(e)
    incidence = _Incidence.of(g, in_h)
    for members in groups.values():
        if not _dependent(labels[members].tolist()):
            continue  # the group contains no edge cut of H: its failure disconnects nothing
        lost = incidence.cut_off(members)
        if lost:
            exposed[incidence.edges_at(lost)] = True
    return exposed


@dataclass(frozen=True)
class _Incidence:
    """The edges of H around each vertex (as lists, for searches that stay local)."""

    start: list[int]     #: vertex v's entries are start[v]:start[v + 1]
    other: list[int]     #: the edge's other end
    edge: list[int]      #: the edge
    start_a: IntArray
    edge_a: IntArray
    eu: list[int]
    ev: list[int]

    @classmethod
    def of(cls, g: AnalysisGraph, in_h: BoolArray) -> _Incidence:
        h = np.flatnonzero(in_h)  # a loop is listed twice at its vertex: harmless
        ends = np.concatenate([g.eu[h], g.ev[h]])
        others = np.concatenate([g.ev[h], g.eu[h]])
        order = np.argsort(ends, kind="stable")
        start = np.zeros(g.n_vertices + 1, dtype=np.int64)
        np.cumsum(np.bincount(ends, minlength=g.n_vertices), out=start[1:])
        edge_a = np.concatenate([h, h])[order]
        return cls(start.tolist(), others[order].tolist(), edge_a.tolist(), start, edge_a,
                   g.eu.tolist(), g.ev.tolist())

    def cut_off(self, failed: list[int]) -> list[int]:
        """Vertices of H that lose S when the edges ``failed`` (of H) fail.

        Every part cut off holds an end of a failed edge (H is connected), so one
        search starts at each end and one at S, taking a vertex each in turn;
        searches that meet merge. Once every search but S's has run out, what
        they visited is cut off: the work is about the size of the parts cut
        off times the number of ends, not the size of H.
        """
        down = set(failed)
        seeds = sorted({S, *(self.eu[e] for e in failed), *(self.ev[e] for e in failed)})
        owner: dict[int, int] = {}
        root = list(range(len(seeds)))

        def find(i: int) -> int:
            while root[i] != i:
                root[i] = root[root[i]]
                i = root[i]
            return i

        queues: list[list[int]] = [[v] for v in seeds]
        heads = [0] * len(seeds)
        for i, v in enumerate(seeds):
            owner[v] = i
        s_search = seeds.index(S)
        active = set(range(len(seeds)))  # searches (roots) with vertices left to expand
        start, other, edge = self.start, self.other, self.edge
        while active - {find(s_search)}:
            for i in list(active):
                if i not in active or find(i) != i:
                    continue
                q = queues[i]
                if heads[i] == len(q):
                    active.discard(i)
                    continue
                v = q[heads[i]]
                heads[i] += 1
                for k in range(start[v], start[v + 1]):
                    if edge[k] in down:
                        continue
                    w = other[k]
                    j = owner.get(w)
                    if j is None:
                        owner[w] = i
                        q.append(w)
                        continue
                    j = find(j)
                    if j != i:
                        # two searches met: one part; the longer queue keeps going
                        a, b = (i, j) if len(queues[i]) - heads[i] >= len(queues[j]) - heads[j] \
                            else (j, i)
                        root[b] = a
                        queues[a] = queues[a][heads[a]:] + queues[b][heads[b]:]
                        heads[a] = 0
                        active.discard(b)
                        active.add(a)
                        i = a
                        q = queues[a]
        s_root = find(s_search)
        return [v for v, i in owner.items() if find(i) != s_root]

    def edges_at(self, vertices: list[int]) -> IntArray:
        """The edges of H at ``vertices``."""
        v = np.asarray(vertices, dtype=np.int64)
        lo, hi = self.start_a[v], self.start_a[v + 1]
        pos = np.repeat(lo - np.cumsum(np.concatenate([[0], (hi - lo)[:-1]])), hi - lo) \
            + np.arange(int((hi - lo).sum()))
        return self.edge_a[pos]


def _cut_labels(g: AnalysisGraph, st: Structure, *, seed: int) -> npt.NDArray[np.uint64]:
    """Random XOR labels: every edge cut of the DFS-reached graph XORs to zero."""
    m = g.n_edges
    rng = np.random.default_rng(seed)
    labels = np.zeros(m, dtype=np.uint64)
    non_tree = st.lit & ~st.tree_edge
    labels[non_tree] = rng.integers(1, 2**63, size=int(non_tree.sum()), dtype=np.uint64)
    acc = np.zeros(g.n_vertices, dtype=np.uint64)
    nt = np.flatnonzero(non_tree)
    np.bitwise_xor.at(acc, g.eu[nt], labels[nt])
    np.bitwise_xor.at(acc, g.ev[nt], labels[nt])
    sub = acc.tolist()
    parent = st.parent.tolist()
    for x in st.post_order.tolist():
        w = parent[x]
        if w >= 0:
            sub[w] ^= sub[x]
    pe = st.parent_edge
    has_pe = pe >= 0
    labels[pe[has_pe]] = np.asarray(sub, dtype=np.uint64)[has_pe]
    return labels


def _dependent(vectors: list[int]) -> bool:
    """True when the GF(2) vectors (ints) are linearly dependent."""
    basis: list[int] = []
    for v in vectors:
        for b in basis:
            v = min(v, v ^ b)
        if v == 0:
            return True
        basis.append(v)
    return False


@dataclass(frozen=True)
class Impact:
    """Premises and units lost per span cut (per edge) and per node failure (per vertex)."""

    cut_premises: IntArray
    cut_units: IntArray
    failure_premises: IntArray
    failure_units: IntArray


def impacts(g: AnalysisGraph, st: Structure, edge_premises: IntArray,
            edge_units: IntArray) -> Impact:
    """Cut impact of every edge and failure impact of every vertex of G.

    ``edge_premises`` / ``edge_units`` count the passed premises attached to
    each edge. Each edge's weight sits on its deeper end; the subtree sum below
    a bridge is what its cut loses, and a node loses the subtrees of the
    children it separates (``low[child] >= disc[node]``).
    """
    n, m = g.n_vertices, g.n_edges
    w_p = np.bincount(st.deeper[st.lit], weights=edge_premises[st.lit], minlength=n) if m \
        else np.zeros(n)
    w_u = np.bincount(st.deeper[st.lit], weights=edge_units[st.lit], minlength=n) if m \
        else np.zeros(n)
    # the subtree sums in post-order, compiled (netgis/engine/_dfs.py): ~60 ms in Python
    # at 1 M premises, on every span or node edit of the live analysis
    sub_p, sub_u, fail_p, fail_u = subtree_sums(
        np.asarray(st.post_order, dtype=np.int64), np.asarray(st.parent, dtype=np.int64),
        np.asarray(st.low, dtype=np.int64), np.asarray(st.disc, dtype=np.int64),
        w_p.astype(np.int64), w_u.astype(np.int64), S)
    cut_p = np.zeros(m, dtype=np.int64)
    cut_u = np.zeros(m, dtype=np.int64)
    bridges = np.flatnonzero(st.is_bridge)
    if len(bridges):
        child = st.deeper[bridges]
        cut_p[bridges] = sub_p[child]
        cut_u[bridges] = sub_u[child]
    return Impact(cut_p, cut_u, fail_p, fail_u)


def scenario_lost(
    g: AnalysisGraph,
    served_edge: IntArray,
    *,
    cut_edges: Iterable[int] = (),
    failed_nodes: Iterable[str] = (),
) -> BoolArray:
    """Which premises (given by the edge they are attached to) lose every path to a working core.

    ``cut_edges`` are edge indices of G cut at one point each (worst-case
    position); ``failed_nodes`` are node ids (cores included: a failed core
    stops being a source). Premises with ``served_edge < 0`` are never lost.
    """
    failed_ids = set(failed_nodes)
    n_nodes = len(g.node_ids)
    failed_node = np.asarray([nid in failed_ids for nid in g.node_ids.tolist()], dtype=bool) \
        if n_nodes else np.zeros(0, dtype=bool)
    # rebuild vertices: working cores form S again, failed nodes have no vertex
    working_core = g.is_core & ~failed_node
    vert = np.full(n_nodes, -1, dtype=np.int64)
    vert[working_core] = 0
    others = ~g.is_core & ~failed_node
    vert[others] = 1 + np.arange(int(others.sum()))
    n_v = 1 + int(others.sum())
    # map G's vertices (cores merged) back through node ids
    old_to_node = np.full(g.n_vertices, -1, dtype=np.int64)
    old_to_node[g.node_vertex[~g.is_core]] = np.flatnonzero(~g.is_core)
    m = g.n_edges
    cut = np.zeros(m, dtype=bool)
    cut[np.asarray(list(cut_edges), dtype=np.int64)] = True
    ends_new = []
    for ends, names in ((g.eu, g.edge_from), (g.ev, g.edge_to)):
        is_s = ends == S if g.has_core else np.zeros(m, dtype=bool)
        node_idx = np.where(is_s, -1, old_to_node[ends])
        new = np.where(node_idx >= 0, vert[np.maximum(node_idx, 0)], -1)
        if g.has_core and is_s.any():
            # an end at S is one particular core: look it up by its node id
            core_pos = {nid: i for i, nid in enumerate(g.node_ids.tolist())}
            for e in np.flatnonzero(is_s).tolist():
                new[e] = vert[core_pos[names[e]]]
        ends_new.append(new)
    a, b = ends_new
    usable = ~cut & (a >= 0) & (b >= 0)
    comp = _components(n_v, a[usable], b[usable])
    any_core = bool(working_core.any())
    reach_v = (comp == comp[0]) if any_core else np.zeros(n_v, dtype=bool)
    ra = (a >= 0) & reach_v[np.maximum(a, 0)]
    rb = (b >= 0) & reach_v[np.maximum(b, 0)]
    edge_lost = np.where(cut, ~(ra & rb), ~(ra | rb))
    served = np.asarray(served_edge, dtype=np.int64)
    out = np.zeros(len(served), dtype=bool)
    has = served >= 0
    out[has] = edge_lost[served[has]]
    return out
