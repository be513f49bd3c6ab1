"""The one graph contract: a networkx MultiGraph of the plant.

``network_from_gdfs`` turns the ``nodes`` and ``spans`` layers into a
``networkx.MultiGraph`` whose vertices are node ids and whose edges are keyed
by ``span_id`` (parallel spans stay separate edges). Every edge carries
``length_m`` (WGS84 geodesic), ``status``, ``duct_id``, ``fiber_count``,
``fibers_used`` and ``geometry``; every vertex ``kind``, ``status`` and
``geometry``. ``G.graph["crs"]`` is the CRS of the geometries.

:func:`analysis_graph` derives the analysis graph G of docs/spec.md §2.2 from it:
in-service nodes, in-service spans between in-service nodes, and all core
nodes merged into one super-core ``S`` (vertex 0). It is an array form of the
same graph, which the linear-time algorithms in :mod:`netgis.engine.redundancy` use.

Examples
--------
>>> import geopandas as gpd
>>> from shapely import LineString, Point
>>> nodes = gpd.GeoDataFrame({"node_id": ["C", "A"], "kind": ["core", "cabinet"],
...     "status": ["in_service"] * 2}, geometry=[Point(0, 0), Point(300, 0)], crs=32632)
>>> spans = gpd.GeoDataFrame({"span_id": ["s1"], "from_node": ["C"], "to_node": ["A"],
...     "status": ["in_service"]}, geometry=[LineString([(0, 0), (300, 0)])], crs=32632)
>>> G = network_from_gdfs(nodes, spans)
>>> round(G.edges["C", "A", "s1"]["length_m"], 1)
299.2
>>> analysis_graph(G).n_vertices
2
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, cast

import geopandas as gpd
import networkx as nx
import numpy as np
import numpy.typing as npt
import pandas as pd
from pyproj import CRS

from netgis.geodesy import WGS84, geodesic_lengths_m, transform_geoms
from netgis.schema import CORE, IN_SERVICE, NODES, SPANS

IntArray = npt.NDArray[np.int64]

_EDGE_ATTRS = ("status", "duct_id", "fiber_count", "fibers_used", "placement")


def id_index(values: npt.ArrayLike) -> pd.Index:
    """An index of feature ids as Python objects.

    pandas infers its string dtype (Arrow) for an index of strings, which costs a
    conversion of every id each time; lookups of ids (``get_indexer``, ``isin``) are
    as exact on an object index and several times faster to build.

    Examples
    --------
    >>> id_index(["a", "b"]).get_indexer(["b", "c"]).tolist()
    [1, -1]
    """
    index: pd.Index = pd.Index(np.asarray(values, dtype=object), dtype=object)
    return index


def span_lengths_m(spans: gpd.GeoDataFrame) -> npt.NDArray[np.float64]:
    """WGS84 geodesic length of every span, in meters."""
    if spans.crs is None:
        raise ValueError("spans have no CRS")
    lines = transform_geoms(spans.geometry.to_numpy(), CRS(spans.crs), WGS84)
    return geodesic_lengths_m(lines)


def network_from_gdfs(
    nodes: gpd.GeoDataFrame, spans: gpd.GeoDataFrame, *, lengths_m: npt.ArrayLike | None = None
) -> nx.MultiGraph[str]:
    """Build the plant graph from validated ``nodes`` and ``spans`` layers.

    Parameters
    ----------
    nodes, spans
        Layers as :func:`netgis.io.read_dataset` returns them.
    lengths_m
        Precomputed geodesic span lengths (same order as ``spans``); computed when omitted.

    Returns
    -------
    networkx.MultiGraph
        Vertices keyed by node_id, edges keyed by span_id, ``G.graph["crs"]`` set.
    """
    lengths = span_lengths_m(spans) if lengths_m is None else np.asarray(lengths_m, dtype=float)
    G: nx.MultiGraph[str] = nx.MultiGraph(crs=CRS(nodes.crs) if nodes.crs is not None else None)
    node_cols = [c for c in NODES.field_names if c in nodes.columns and c != "node_id"]
    # pandas-stubs types record keys as Hashable; the columns here are str field names
    node_records = cast("list[dict[str, Any]]", nodes[node_cols].to_dict("records"))
    G.add_nodes_from(
        (nid, {**rec, "geometry": geom})
        for nid, rec, geom in zip(nodes["node_id"], node_records, nodes.geometry, strict=True)
    )
    edge_cols = [c for c in SPANS.field_names if c in spans.columns and c != "span_id"]
    edge_records = cast("list[dict[str, Any]]", spans[edge_cols].to_dict("records"))
    # types-networkx: MultiGraph.add_edges_from does not list the (u, v, key, data) form
    G.add_edges_from(
        (rec["from_node"], rec["to_node"], sid,  # type: ignore[misc]
         {**rec, "length_m": float(length), "geometry": geom})
        for sid, rec, geom, length in zip(
            spans["span_id"], edge_records, spans.geometry, lengths, strict=True
        )
    )
    return G


def network_to_gdfs(G: nx.MultiGraph[str]) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The inverse of :func:`network_from_gdfs`: ``(nodes, spans)`` GeoDataFrames."""
    crs = G.graph.get("crs")
    node_rows = [{"node_id": n, **data} for n, data in G.nodes(data=True)]
    nodes = gpd.GeoDataFrame(pd.DataFrame(node_rows), geometry="geometry", crs=crs)
    span_rows = [
        {"span_id": k, **{key: val for key, val in data.items() if key != "length_m"},
         "length_m": data["length_m"]}
        for _, _, k, data in G.edges(keys=True, data=True)
    ]
    spans = gpd.GeoDataFrame(pd.DataFrame(span_rows), geometry="geometry", crs=crs)
    return nodes, spans


@dataclass(frozen=True)
class AnalysisGraph:
    """Array form of the analysis graph G (docs/spec.md §2.2) with the cores merged.

    Vertex 0 is the super-core S when ``has_core``; every other in-service node
    has its own vertex. ``edge_span`` lists the span_ids of G's edges, with
    ``eu``/``ev`` their end vertices (a span between two cores is a loop at S).
    """

    node_ids: npt.NDArray[np.object_]      #: node_id of every in-service node
    node_vertex: IntArray                   #: vertex of each entry of node_ids
    is_core: npt.NDArray[np.bool_]          #: per entry of node_ids
    n_vertices: int
    has_core: bool
    edge_span: npt.NDArray[np.object_]      #: span_id per edge of G
    eu: IntArray
    ev: IntArray
    edge_from: npt.NDArray[np.object_]      #: from_node per edge
    edge_to: npt.NDArray[np.object_]        #: to_node per edge
    edge_duct: npt.NDArray[np.object_]      #: duct_id per edge (None when absent)
    #: Where the graph came from, when built from frames (:func:`analysis_graph_from_gdfs`):
    #: the row of the nodes frame of each entry of ``node_ids``, and the rows of the spans
    #: frame and of its end nodes' frame rows per edge. Lookups by id are then positions.
    node_rows: IntArray | None = None
    span_rows: IntArray | None = None
    from_rows: IntArray | None = None
    to_rows: IntArray | None = None

    @property
    def n_edges(self) -> int:
        """Number of edges of G (the spans in ``edge_span``)."""
        return len(self.edge_span)

    @cached_property
    def vertex_node(self) -> npt.NDArray[np.object_]:
        """The node_id of every vertex of G (None at S), made once per graph: a path's
        nodes are then looked up by position."""
        out = np.full(self.n_vertices, None, dtype=object)
        non_core = ~np.asarray(self.is_core, dtype=bool)
        out[np.asarray(self.node_vertex)[non_core]] = np.asarray(self.node_ids)[non_core]
        return out

    def vertex_of(self) -> dict[str, int]:
        """node_id -> vertex for every in-service node."""
        return dict(zip(self.node_ids.tolist(), self.node_vertex.tolist(), strict=True))


def analysis_graph_from_gdfs(nodes: gpd.GeoDataFrame, spans: gpd.GeoDataFrame, *,
                             end_rows: tuple[IntArray, IntArray] | None = None
                             ) -> AnalysisGraph:
    """The analysis graph of docs/spec.md §2.2 straight from validated layers, vectorized.

    The same graph as ``analysis_graph(network_from_gdfs(nodes, spans))`` with
    the edges in the order of ``spans`` rows; no networkx graph is built, which
    at a million spans saves seconds and a gigabyte. ``end_rows``: the row of ``nodes``
    of each span's from_node and to_node (-1: no such node), when the caller keeps
    them (the live analysis); otherwise the ends are looked up by id.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import LineString, Point
    >>> nodes = gpd.GeoDataFrame({"node_id": ["C", "A"], "kind": ["core", "cabinet"],
    ...     "status": ["in_service"] * 2}, geometry=[Point(0, 0), Point(300, 0)], crs=32632)
    >>> spans = gpd.GeoDataFrame({"span_id": ["s1"], "from_node": ["C"], "to_node": ["A"],
    ...     "status": ["in_service"]}, geometry=[LineString([(0, 0), (300, 0)])], crs=32632)
    >>> g = analysis_graph_from_gdfs(nodes, spans)
    >>> g.n_vertices, g.eu.tolist(), g.ev.tolist()
    (2, [0], [1])
    """
    status = nodes["status"].to_numpy(dtype=object) if "status" in nodes.columns \
        else np.full(len(nodes), IN_SERVICE, dtype=object)
    kind = nodes["kind"].to_numpy(dtype=object) if "kind" in nodes.columns \
        else np.full(len(nodes), None, dtype=object)
    in_service = status == IN_SERVICE
    node_ids = nodes["node_id"].to_numpy(dtype=object)[in_service]
    is_core = np.asarray(kind[in_service] == CORE, dtype=bool)
    has_core = bool(is_core.any())
    first = 1 if has_core else 0
    vertex = np.zeros(len(node_ids), dtype=np.int64)
    vertex[~is_core] = np.arange(first, first + int((~is_core).sum()))
    n_vertices = first + int((~is_core).sum())
    froms = spans["from_node"].to_numpy(dtype=object)
    tos = spans["to_node"].to_numpy(dtype=object)
    if end_rows is None:
        where = id_index(node_ids)
        at_from, at_to = where.get_indexer(id_index(froms)), where.get_indexer(id_index(tos))
    else:
        # the caller knows the nodes frame row of each span's ends: positions, no hashing
        entry = np.full(len(nodes) + 1, -1, dtype=np.int64)  # the last one: no such node
        entry[np.flatnonzero(in_service)] = np.arange(len(node_ids))
        at_from, at_to = entry[end_rows[0]], entry[end_rows[1]]
    span_status = spans["status"].to_numpy(dtype=object) if "status" in spans.columns \
        else np.full(len(spans), IN_SERVICE, dtype=object)
    keep = (span_status == IN_SERVICE) & (at_from >= 0) & (at_to >= 0)
    ducts = spans["duct_id"].to_numpy(dtype=object)[keep] if "duct_id" in spans.columns \
        else np.full(int(keep.sum()), None, dtype=object)
    ducts = ducts.copy()
    ducts[pd.isna(ducts)] = None
    node_rows = np.flatnonzero(in_service).astype(np.int64)
    return AnalysisGraph(
        node_ids=node_ids, node_vertex=vertex, is_core=is_core, n_vertices=n_vertices,
        has_core=has_core, edge_span=spans["span_id"].to_numpy(dtype=object)[keep],
        eu=vertex[at_from[keep]], ev=vertex[at_to[keep]],
        edge_from=froms[keep], edge_to=tos[keep], edge_duct=ducts,
        node_rows=node_rows, span_rows=np.flatnonzero(keep).astype(np.int64),
        from_rows=node_rows[at_from[keep]], to_rows=node_rows[at_to[keep]],
    )


def _rows_match(rows: IntArray | None, ids: npt.NDArray[np.object_],
                frame_ids: npt.NDArray[np.object_]) -> bool:
    """Whether ``rows`` (kept by the graph) pick exactly ``ids`` out of ``frame_ids``."""
    if rows is None:
        return False
    if len(rows) and int(rows.max()) >= len(frame_ids):
        return False
    return bool(np.array_equal(frame_ids[rows], ids))


def built_from_nodes(g: AnalysisGraph, node_ids: npt.NDArray[np.object_]) -> bool:
    """Whether ``g`` was built from the nodes frame whose ids are ``node_ids`` (the rows it
    keeps pick its node ids out of them)."""
    return _rows_match(g.node_rows, g.node_ids, node_ids)


def node_entries(g: AnalysisGraph, node_ids: npt.ArrayLike) -> IntArray:
    """Entry of ``g.node_ids`` of each of ``node_ids`` (a nodes frame's ids; -1 when the
    node is not in G), by the rows G keeps when built from that frame, else by id."""
    ids = np.asarray(node_ids, dtype=object)
    if built_from_nodes(g, ids):
        assert g.node_rows is not None
        out = np.full(len(ids), -1, dtype=np.int64)
        out[g.node_rows] = np.arange(len(g.node_rows))
        return out
    found: IntArray = id_index(g.node_ids).get_indexer(id_index(ids)).astype(np.int64)
    return found


def span_edges(g: AnalysisGraph, span_ids: npt.ArrayLike) -> IntArray:
    """Edge of G of each of ``span_ids`` (a spans frame's ids; -1 when the span is not in
    G), by the rows G keeps when built from that frame, else by id."""
    ids = np.asarray(span_ids, dtype=object)
    if _rows_match(g.span_rows, g.edge_span, ids):
        assert g.span_rows is not None
        out = np.full(len(ids), -1, dtype=np.int64)
        out[g.span_rows] = np.arange(len(g.span_rows))
        return out
    found: IntArray = id_index(g.edge_span).get_indexer(id_index(ids)).astype(np.int64)
    return found


def analysis_graph(G: nx.MultiGraph[str]) -> AnalysisGraph:
    """Derive the analysis graph of docs/spec.md §2.2 from the plant graph ``G``."""
    ids: list[str] = []
    core: list[bool] = []
    for n, data in G.nodes(data=True):
        if data.get("status", IN_SERVICE) == IN_SERVICE:
            ids.append(n)
            core.append(data.get("kind") == CORE)
    node_ids = np.asarray(ids, dtype=object)
    is_core = np.asarray(core, dtype=bool)
    has_core = bool(is_core.any())
    vertex = np.zeros(len(ids), dtype=np.int64)
    first = 1 if has_core else 0
    vertex[~is_core] = np.arange(first, first + int((~is_core).sum()))
    n_vertices = first + int((~is_core).sum())
    index = dict(zip(ids, vertex.tolist(), strict=True))

    spans: list[str] = []
    eu: list[int] = []
    ev: list[int] = []
    froms: list[str] = []
    tos: list[str] = []
    ducts: list[str | None] = []
    for _, _, key, data in G.edges(keys=True, data=True):
        # edge direction in a networkx MultiGraph is arbitrary; from_node/to_node are kept as data
        a, b = data["from_node"], data["to_node"]
        if data.get("status", IN_SERVICE) != IN_SERVICE or a not in index or b not in index:
            continue
        spans.append(key)
        eu.append(index[a])
        ev.append(index[b])
        froms.append(a)
        tos.append(b)
        duct = data.get("duct_id")
        ducts.append(None if duct is None or (isinstance(duct, float) and np.isnan(duct)) else duct)
    return AnalysisGraph(
        node_ids=node_ids, node_vertex=vertex, is_core=is_core, n_vertices=n_vertices,
        has_core=has_core, edge_span=np.asarray(spans, dtype=object),
        eu=np.asarray(eu, dtype=np.int64), ev=np.asarray(ev, dtype=np.int64),
        edge_from=np.asarray(froms, dtype=object), edge_to=np.asarray(tos, dtype=object),
        edge_duct=np.asarray(ducts, dtype=object),
    )
