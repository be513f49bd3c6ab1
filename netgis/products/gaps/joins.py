"""Joins of gap clusters to the lit network: straight, or along a roads layer.

The straight join runs from a cluster's root premise to the nearest point of
a lit span. With roads, one Dijkstra over the road graph from a virtual
source tied to every road vertex near a lit span finds the road route of
every cluster at once. Either way the join ends on the nearer end node of
the span it reaches, where the new route is spliced in.
"""

from __future__ import annotations

from typing import cast

import geopandas as gpd
import networkx as nx
import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS
from scipy.spatial import cKDTree
from shapely import ops

from netgis.engine.coverage import locate, lonlat
from netgis.geodesy import WGS84, geodesic_distance_m, transform_geoms
from netgis.products.gaps.clusters import ecef, points_of

FloatArray = npt.NDArray[np.float64]


def join_roots(roots: gpd.GeoSeries, lit: gpd.GeoDataFrame, nodes: gpd.GeoDataFrame, *,
               roads: gpd.GeoDataFrame | None, road_snap_m: float, drop_m: float
               ) -> dict[str, npt.NDArray[np.generic]]:
    """Join of each cluster root to the lit network: straight, and along roads when given.

    Returns
    -------
    dict
        Per root: ``span_id`` (the lit span reached), ``straight_m`` and
        ``road_m`` (NaN without a road route), ``path`` (coordinates in the
        dataset CRS from the root to the end node, None when nothing is
        lit) and ``end_node`` (the span's end the join is spliced to).

    Examples
    --------
    A lit span from node a to node b, 100 m long, and a root 30 m off it, 80 m along:

    >>> from shapely import LineString, Point
    >>> crs = "EPSG:32632"
    >>> a, b = Point(500000, 5550000), Point(500100, 5550000)
    >>> lit = gpd.GeoDataFrame({"span_id": ["s1"], "from_node": ["a"], "to_node": ["b"]},
    ...                        geometry=[LineString([a, b])], crs=crs)
    >>> nodes = gpd.GeoDataFrame({"node_id": ["a", "b"]}, geometry=[a, b], crs=crs)
    >>> roots = gpd.GeoSeries([Point(500080, 5550030)], crs=crs)
    >>> join = join_roots(roots, lit, nodes, roads=None, road_snap_m=30.0, drop_m=150.0)
    >>> join["span_id"].tolist(), join["end_node"].tolist(), round(float(join["straight_m"][0]))
    (['s1'], ['b'], 30)
    """
    k = len(roots)
    crs = CRS(roots.crs)
    out: dict[str, npt.NDArray[np.generic]] = {
        "span_id": np.full(k, None, dtype=object),
        "straight_m": np.full(k, np.nan),
        "road_m": np.full(k, np.nan),
        "path": np.full(k, None, dtype=object),
        "end_node": np.full(k, None, dtype=object),
    }
    if len(lit) == 0:
        return out
    # types-geopandas types GeoSeries.reset_index as a plain Series
    straight = locate(cast("gpd.GeoSeries", roots.reset_index(drop=True)), lit, drop_m=0.0)
    out["straight_m"] = straight["distance_m"].to_numpy()
    span_ids = straight["nearest_span_id"].to_numpy(dtype=object)
    attach = np.column_stack([straight["attach_lon"], straight["attach_lat"]])
    road_path: list[FloatArray | None] = [None] * k
    if roads is not None and len(roads):
        road = road_joins(roots, lit, roads, road_snap_m=road_snap_m)
        if road is not None:
            road_m, road_span, road_attach, road_path = road
            ok = ~np.isnan(road_m)
            out["road_m"] = road_m
            span_ids = np.where(ok, road_span, span_ids)
            attach = np.where(ok[:, None], road_attach, attach)
    out["span_id"] = span_ids
    attach_ds = shapely.get_coordinates(transform_geoms(points_of(attach), WGS84, crs))
    root_xy = shapely.get_coordinates(roots.to_numpy())
    node_xy = dict(zip(nodes["node_id"].tolist(),
                       shapely.get_coordinates(nodes.geometry.to_numpy()).tolist(), strict=True))
    lit_by_id = lit.set_index("span_id")
    paths = np.empty(k, dtype=object)
    ends = np.empty(k, dtype=object)
    for i in range(k):  # one per cluster, not per premise
        row = lit_by_id.loc[span_ids[i]]
        line = row.geometry
        at = shapely.Point(attach_ds[i])
        f = line.project(at)
        ends_d = [line.project(shapely.Point(node_xy[row["from_node"]])),
                  line.project(shapely.Point(node_xy[row["to_node"]]))]
        near = int(abs(ends_d[1] - f) < abs(ends_d[0] - f))
        ends[i] = row["to_node"] if near else row["from_node"]
        along = ops.substring(line, f, ends_d[near])
        along_xy = shapely.get_coordinates(along) if not along.is_empty else np.zeros((0, 2))
        lead = [root_xy[i]]
        if road_path[i] is not None:
            lead.append(road_path[i])
        pts = np.vstack([*lead, attach_ds[i][None, :], along_xy, np.asarray(node_xy[ends[i]])])
        keep = np.r_[True, np.any(np.abs(np.diff(pts, axis=0)) > 1e-9, axis=1)]
        paths[i] = pts[keep]
    out["path"] = paths
    out["end_node"] = ends
    return out


def road_joins(roots: gpd.GeoSeries, lit: gpd.GeoDataFrame, roads: gpd.GeoDataFrame, *,
               road_snap_m: float
               ) -> tuple[FloatArray, npt.NDArray[np.object_], FloatArray, list[
                   FloatArray | None]] | None:
    """Shortest road route from each root to a road vertex within ``road_snap_m`` of a lit span.

    One Dijkstra from a virtual source joined to every such vertex (weighted
    by its distance to the span) answers every cluster at once. None when no
    road vertex is near a lit span.
    """
    crs = CRS(roots.crs)
    parts = shapely.get_parts(roads.geometry.to_numpy())
    parts = parts[shapely.get_type_id(parts) == 1]  # LineStrings
    coords, line_of = shapely.get_coordinates(parts, return_index=True)
    if len(coords) < 2:
        return None
    road_crs = CRS(roads.crs)
    ll = lonlat(points_of(coords), road_crs)
    # junctions are shared vertices: key vertices by position rounded to about a centimeter
    key = np.round(ll * 1e7).astype(np.int64)
    uniq, vid = np.unique(key, axis=0, return_inverse=True)
    vid = vid.reshape(-1)
    v_ll = uniq.astype(float) / 1e7
    same = line_of[1:] == line_of[:-1]
    a, b = vid[:-1][same], vid[1:][same]
    seg_m = geodesic_distance_m(ll[:-1][same, 0], ll[:-1][same, 1], ll[1:][same, 0],
                                ll[1:][same, 1])
    near = locate(gpd.GeoSeries(shapely.points(v_ll), crs=WGS84), lit, drop_m=road_snap_m)
    src = np.flatnonzero(near["passed"].to_numpy())
    if len(src) == 0:
        return None
    G: nx.Graph[int] = nx.Graph()
    G.add_weighted_edges_from(zip(a.tolist(), b.tolist(), seg_m.tolist(), strict=True))
    source = -1
    G.add_weighted_edges_from((source, int(v), float(d)) for v, d in
                              zip(src.tolist(), near["distance_m"].to_numpy()[src], strict=True))
    pred, dist = nx.dijkstra_predecessor_and_distance(G, source)
    root_ll = lonlat(roots.to_numpy(), crs)
    tree = cKDTree(ecef(v_ll))
    _, entry = tree.query(ecef(root_ll))
    k = len(roots)
    road_m = np.full(k, np.nan)
    span = np.full(k, None, dtype=object)
    att = np.full((k, 2), np.nan)
    paths: list[FloatArray | None] = [None] * k
    lateral = geodesic_distance_m(root_ll[:, 0], root_ll[:, 1], v_ll[entry, 0], v_ll[entry, 1])
    for i, v in enumerate(entry.tolist()):  # one walk per cluster
        if v not in dist:
            continue
        walk = [v]
        while pred[walk[-1]] and pred[walk[-1]][0] != source:
            walk.append(pred[walk[-1]][0])
        last = walk[-1]
        road_m[i] = lateral[i] + dist[v]
        span[i] = near["nearest_span_id"].iloc[last]
        att[i] = (near["attach_lon"].iloc[last], near["attach_lat"].iloc[last])
        paths[i] = shapely.get_coordinates(transform_geoms(points_of(v_ll[walk]), WGS84, crs))
    return road_m, span, att, paths
