"""The sketch of a build plan as layers of the data contract.

A planned node at each premise kept in a cluster's tree, a planned span up
from each to its parent, and one span from each cluster's root along its
join to the lit network: append them to the dataset (see
:func:`netgis.products.gaps.apply_plan`) and the analysis shows the coverage after
the build.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS

from netgis.dataset import empty_layer
from netgis.products.gaps.clusters import points_of

IntArray = npt.NDArray[np.int64]


def sketch_layers(gap: gpd.GeoDataFrame, parent: IntArray, kept_edge: npt.NDArray[np.bool_],
                  pruned: npt.NDArray[np.bool_], root: IntArray, labels: IntArray,
                  join: dict[str, npt.NDArray[np.generic]], *, crs: CRS, placement: str,
                  id_prefix: str, status: str) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The sketch as contract layers: a node at each kept premise, a span up from each.

    Parameters
    ----------
    gap
        The unpassed premises; ``labels`` their cluster, ``root`` each
        cluster's root premise.
    parent, kept_edge, pruned
        Each premise's parent in its cluster's tree
        (:func:`~netgis.products.gaps.clusters.orient_forest`), whether the span up to
        it is built, and whether the premise is left to a drop.
    join
        What :func:`~netgis.products.gaps.joins.join_roots` returns for the roots.
    crs, placement, id_prefix, status
        CRS, placement, id prefix and status of the sketched features.

    Examples
    --------
    One cluster of two premises, q2 hanging from the root q1, which joins a lit span
    ending at node b:

    >>> from shapely import LineString, Point
    >>> from netgis.products.gaps.joins import join_roots
    >>> crs = CRS("EPSG:32632")
    >>> a, b = Point(500000, 5550000), Point(500100, 5550000)
    >>> lit = gpd.GeoDataFrame({"span_id": ["s1"], "from_node": ["a"], "to_node": ["b"]},
    ...                        geometry=[LineString([a, b])], crs=crs)
    >>> nodes = gpd.GeoDataFrame({"node_id": ["a", "b"]}, geometry=[a, b], crs=crs)
    >>> gap = gpd.GeoDataFrame({"premise_id": ["q1", "q2"]}, crs=crs,
    ...                        geometry=[Point(500080, 5550030), Point(500080, 5550060)])
    >>> parent, kept, pruned = np.array([-1, 0]), np.array([False, True]), np.array([False, False])
    >>> roots, labels = np.array([0]), np.array([0, 0])
    >>> join = join_roots(gap.geometry.iloc[roots], lit, nodes, roads=None, road_snap_m=30.0,
    ...                   drop_m=150.0)
    >>> nodes, spans = sketch_layers(
    ...     gap, parent, kept, pruned, roots, labels, join,
    ...     crs=crs, placement="underground", id_prefix="plan-", status="planned")
    >>> spans[["span_id", "from_node", "to_node"]].values.tolist()
    [['plan-s-q2', 'plan-n-q2', 'plan-n-q1'], ['plan-s-q1', 'plan-n-q1', 'b']]
    """
    pid = gap["premise_id"].to_numpy().astype(str)
    xy = shapely.get_coordinates(gap.geometry.to_numpy())
    joinable = np.asarray([p is not None for p in join["path"]], dtype=bool)
    # clusters that cannot join the lit network get no sketch: it would light nothing
    in_plan = joinable[labels] & ~pruned
    node_id = np.asarray([f"{id_prefix}n-{p}" for p in pid], dtype=object)
    nodes = empty_layer("nodes", crs).iloc[:0]
    sel = np.flatnonzero(in_plan)
    node_cols: dict[str, list[Any]] = {f: [None] * len(sel) for f in nodes.columns
                                       if f != "geometry"}
    node_cols.update(node_id=node_id[sel].tolist(), kind=["handhole"] * len(sel),
                     status=[status] * len(sel), name=[f"planned at {p}" for p in pid[sel]])
    plan_nodes = gpd.GeoDataFrame(node_cols, geometry=gpd.GeoSeries(
        points_of(xy[sel]), crs=crs), crs=crs)

    up = np.flatnonzero(kept_edge & in_plan)
    lines = list(np.asarray(shapely.linestrings(np.stack([xy[up], xy[parent[up]]], axis=1)),
                            dtype=object))
    span_id = [f"{id_prefix}s-{p}" for p in pid[up]]
    from_node = node_id[up].tolist()
    to_node = node_id[parent[up]].tolist()
    for c, r in enumerate(root.tolist()):
        if joinable[c]:
            span_id.append(f"{id_prefix}s-{pid[r]}")
            from_node.append(node_id[r])
            to_node.append(join["end_node"][c])
            lines.append(shapely.LineString(join["path"][c]))
    template = empty_layer("spans", crs)
    n = len(span_id)
    span_cols: dict[str, list[Any]] = {f: [None] * n for f in template.columns if f != "geometry"}
    span_cols.update(span_id=span_id, from_node=from_node, to_node=to_node,
                     status=[status] * n, placement=[placement] * n)
    plan_spans = gpd.GeoDataFrame(span_cols, geometry=gpd.GeoSeries(lines, crs=crs), crs=crs)
    return plan_nodes, plan_spans
