"""Gaps: premises that are not passed, where they are, and what it costs to pass them.

Pure functions over the frames of :func:`netgis.analysis.analyze`:

- :func:`rollup_h3` and :func:`rollup_areas` count the unpassed premises and
  units per H3 cell (resolution 8 by default, from WGS84 coordinates) and
  per area, with the least and the median ``distance_m``;
- :func:`plan_builds` groups unpassed premises into *gap clusters* (single
  linkage: two premises within ``link_m`` meters are in one cluster), sketches
  the new route of each (a minimum spanning tree over the cluster's premises,
  leaves within the drop of their parent left to drops, plus a join to the
  nearest lit span, straight or along an optional ``roads`` layer), prices it
  by placement and ranks the clusters by cost per unit;
- :func:`gap_analysis` runs all three on an :class:`~netgis.analysis.Analysis`.

The sketch comes back as planned ``nodes`` and ``spans`` layers in the data
contract's shape: append them to the dataset (with status ``in_service``)
and :func:`~netgis.analysis.analyze` shows the coverage after the build.

Distances between premises are 3-D chords between their WGS84 ellipsoid
positions (EPSG:4978), which agree with the geodesic to far better than 0.1 %
at the few-hundred-meter scale of a cluster and need no UTM zone; reported
lengths are WGS84 geodesic.

Examples
--------
>>> from netgis.analysis import analyze
>>> from netgis.io import read_dataset
>>> result = analyze(read_dataset("tests/examples/ring_spur/dataset.gpkg"))  # doctest: +SKIP
>>> gaps = gap_analysis(result)  # doctest: +SKIP
>>> gaps.clusters[["cluster_id", "units", "route_m"]].round(1).to_dict("records")  # doctest: +SKIP
[{'cluster_id': 'gap-p_far', 'units': 1, 'route_m': 300.1}]
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import h3
import networkx as nx
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree
from shapely import ops

from netgis.analysis import Analysis
from netgis.coverage import locate, lonlat
from netgis.dataset import Dataset, empty_layer
from netgis.errors import NotFoundError, Problem, ValidationError
from netgis.geodesy import WGS84, geodesic_distance_m, transform_geoms, transformer, utm_epsg
from netgis.io import atomic_dir
from netgis.schema import DEFAULT_DROP_M, PLACEMENTS

# the gap defaults, as the API and the maps import them from here
from netgis.schema import DEFAULT_H3_RES as DEFAULT_H3_RES
from netgis.schema import DEFAULT_LINK_M as DEFAULT_LINK_M
from netgis.schema import DEFAULT_PLACEMENT as DEFAULT_PLACEMENT

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Default cost of new route per meter by placement, in currency units (order of magnitude of
#: US 2024 contractor prices: aerial strand and lash, plowed, directional bore, marine).
COST_PER_M: Mapping[str, float] = {
    "aerial": 25.0,
    "buried": 45.0,
    "underground": 85.0,
    "submarine": 400.0,
    "other": 85.0,
}
#: Default snap distance, meters, from a road vertex to a lit span for a road join.
DEFAULT_ROAD_SNAP_M = 30.0
#: A leaf of the sketch is left to a drop only within this share of drop_m of its parent,
#: so that re-analysis passes it despite chord/projection differences.
_PRUNE_SHARE = 0.9

CLUSTER_COLUMNS = (
    "rank", "cluster_id", "premises", "units", "min_distance_m", "median_distance_m",
    "join_span_id", "join_straight_m", "join_road_m", "join_m", "distribution_m", "route_m",
    "placement", "cost_per_m", "cost", "units_per_km", "cost_per_unit", "h3_cell",
)


@dataclass
class BuildPlan:
    """Ranked gap clusters and the sketch of their new routes.

    ``clusters`` (dataset CRS, geometry: the cluster's convex hull buffered by
    the drop) has ``CLUSTER_COLUMNS``; ``premise_cluster`` maps each unpassed
    premise_id to its cluster_id; ``nodes`` and ``spans`` are the sketch as
    layers of the data contract (dataset CRS).
    """

    clusters: gpd.GeoDataFrame
    premise_cluster: pd.DataFrame
    nodes: gpd.GeoDataFrame
    spans: gpd.GeoDataFrame


@dataclass
class Gaps:
    """The result of :func:`gap_analysis`."""

    hexes: gpd.GeoDataFrame
    areas: pd.DataFrame
    plan: BuildPlan


def h3_cells(points: gpd.GeoSeries, *, res: int = DEFAULT_H3_RES) -> npt.NDArray[np.object_]:
    """H3 cell (hex string) of each point at resolution ``res``, from WGS84 coordinates.

    Examples
    --------
    >>> from shapely import Point
    >>> h3_cells(gpd.GeoSeries([Point(8.68, 50.11)], crs=4326)).tolist()
    ['881faeaa91fffff']
    """
    _check_res(res)
    if len(points) == 0:
        return np.zeros(0, dtype=object)
    ll = lonlat(points.to_numpy(), CRS(points.crs))
    to_cell = h3.api.basic_int.latlng_to_cell
    ints = np.fromiter((to_cell(y, x, res) for x, y in ll.tolist()), dtype=np.uint64,
                       count=len(ll))
    # H3 strings only for distinct cells: there are far fewer cells than points
    uniq, inv = np.unique(ints, return_inverse=True)
    names = np.asarray([h3.int_to_str(int(c)) for c in uniq.tolist()], dtype=object)
    return names[inv.reshape(-1)]


def _check_res(res: int) -> None:
    if not 0 <= int(res) <= 15:
        raise ValidationError([Problem("parameters", None, "h3_res",
                                       f"must be an H3 resolution 0..15, got {res}")])


def _gap_stats(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """premises, units, min/median distance_m of the unpassed rows, and totals, per ``key``."""
    gap = ~frame["passed"].to_numpy(dtype=bool)
    work = pd.DataFrame({
        key: frame[key].to_numpy(),
        "gap": gap,
        "units_all": frame["units"].to_numpy(dtype=np.int64),
        "units": np.where(gap, frame["units"].to_numpy(dtype=np.int64), 0),
        "dist": np.where(gap, frame["distance_m"].to_numpy(dtype=float), np.nan),
    })
    g = work.groupby(key, sort=True)
    return pd.DataFrame({
        "premises": g["gap"].sum().astype(np.int64),
        "units": g["units"].sum().astype(np.int64),
        "min_distance_m": g["dist"].min(),
        "median_distance_m": g["dist"].median(),
        "premises_total": g.size().astype(np.int64),
        "units_total": g["units_all"].sum().astype(np.int64),
    })


def rollup_h3(premises: gpd.GeoDataFrame, *, h3_res: int = DEFAULT_H3_RES) -> gpd.GeoDataFrame:
    """Unpassed premises per H3 cell.

    Parameters
    ----------
    premises
        Analysed premises (``units``, ``passed``, ``distance_m``, geometry).
    h3_res
        H3 resolution, 0..15 (default 8).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per cell holding at least one unpassed premise, in h3_cell
        order: ``h3_cell``, ``premises``, ``units`` (unpassed),
        ``min_distance_m``, ``median_distance_m`` (null when nothing is lit),
        ``premises_total``, ``units_total`` (all premises of the cell), and
        the hexagon as geometry (EPSG:4326).

    Examples
    --------
    >>> from shapely import Point
    >>> prem = gpd.GeoDataFrame({"units": [2, 1], "passed": [False, True],
    ...     "distance_m": [400.0, 10.0]}, geometry=[Point(8.68, 50.11)] * 2, crs=4326)
    >>> rollup_h3(prem)[["h3_cell", "premises", "units", "units_total"]].values.tolist()
    [['881faeaa91fffff', 1, 2, 3]]
    """
    frame = pd.DataFrame({"h3_cell": h3_cells(premises.geometry, res=h3_res),
                          "passed": premises["passed"].to_numpy(dtype=bool),
                          "units": premises["units"].to_numpy(dtype=np.int64),
                          "distance_m": premises["distance_m"].to_numpy(dtype=float)})
    stats = _gap_stats(frame, "h3_cell")
    stats = stats[stats["premises"] > 0].reset_index()
    hexes = [shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)])
             for c in stats["h3_cell"].tolist()]
    return gpd.GeoDataFrame(stats, geometry=gpd.GeoSeries(hexes, crs=WGS84), crs=WGS84)


def rollup_areas(premises: gpd.GeoDataFrame, areas: gpd.GeoDataFrame) -> pd.DataFrame:
    """Unpassed premises per area (boundary included; a premise counts in every area covering it).

    Returns
    -------
    pandas.DataFrame
        One row per area in area_id order: ``area_id``, ``name``,
        ``premises``, ``units``, ``min_distance_m``, ``median_distance_m``,
        ``premises_total``, ``units_total``.

    Examples
    --------
    >>> from shapely import Point, box
    >>> prem = gpd.GeoDataFrame({"units": [2, 1], "passed": [False, True],
    ...     "distance_m": [400.0, 10.0]}, geometry=[Point(0, 0), Point(5, 5)], crs=32632)
    >>> areas = gpd.GeoDataFrame({"area_id": ["a"], "name": ["A"]},
    ...     geometry=[box(0, 0, 10, 10)], crs=32632)
    >>> rollup_areas(prem, areas)[["area_id", "premises", "units", "units_total"]].values.tolist()
    [['a', 1, 2, 3]]
    """
    cols = ["area_id", "name", "premises", "units", "min_distance_m", "median_distance_m",
            "premises_total", "units_total"]
    if areas is None or len(areas) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    areas = areas.sort_values("area_id", kind="stable")
    area_crs, prem_crs = CRS(areas.crs), CRS(premises.crs)
    centers = shapely.get_coordinates(shapely.centroid(
        transform_geoms(areas.geometry.to_numpy(), area_crs, WGS84)))
    zones = np.asarray([utm_epsg(float(x), float(y)) for x, y in centers], dtype=np.int64)
    member_area: list[IntArray] = []
    member_prem: list[IntArray] = []
    for zone in np.unique(zones):
        # containment in each area's own UTM zone, polygon reprojected vertex by vertex
        w = CRS.from_epsg(int(zone))
        sel = np.flatnonzero(zones == zone)
        polys = transform_geoms(areas.geometry.to_numpy()[sel], area_crs, w)
        tree = shapely.STRtree(transform_geoms(premises.geometry.to_numpy(), prem_crs, w))
        a, p = tree.query(polys, predicate="covers")
        member_area.append(sel[a])
        member_prem.append(p)
    a_idx = np.concatenate(member_area) if member_area else np.zeros(0, dtype=np.int64)
    p_idx = np.concatenate(member_prem) if member_prem else np.zeros(0, dtype=np.int64)
    frame = pd.DataFrame({
        "area": a_idx,
        "passed": premises["passed"].to_numpy(dtype=bool)[p_idx],
        "units": premises["units"].to_numpy(dtype=np.int64)[p_idx],
        "distance_m": premises["distance_m"].to_numpy(dtype=float)[p_idx],
    })
    stats = _gap_stats(frame, "area").reindex(np.arange(len(areas)))
    for c in ("premises", "units", "premises_total", "units_total"):
        stats[c] = stats[c].fillna(0).astype(np.int64)
    stats.insert(0, "area_id", areas["area_id"].to_numpy())
    stats.insert(1, "name", areas["name"].to_numpy() if "name" in areas else None)
    return stats.reset_index(drop=True)[cols]


def _points(xy: FloatArray) -> npt.NDArray[np.object_]:
    return np.asarray(shapely.points(xy), dtype=object)


def _ecef(ll: FloatArray) -> FloatArray:
    """Earth-centred 3-D coordinates (m) of lon/lat positions on the ellipsoid."""
    t = transformer(CRS.from_epsg(4979), CRS.from_epsg(4978))
    x, y, z = t.transform(ll[:, 0], ll[:, 1], np.zeros(len(ll)))
    return np.column_stack([x, y, z])


def cluster_labels(premises: gpd.GeoSeries, *, link_m: float = DEFAULT_LINK_M
                   ) -> tuple[IntArray, IntArray, FloatArray]:
    """Single-linkage clusters of points: two points within ``link_m`` meters share a cluster.

    Returns
    -------
    labels, edges, edge_m
        Cluster number of each point (0..k-1), and the minimum spanning
        forest of the clusters as point index pairs with their chord lengths.

    Examples
    --------
    >>> from shapely import Point
    >>> pts = gpd.GeoSeries([Point(0, 0), Point(100, 0), Point(1000, 0)], crs=32632)
    >>> labels, edges, _ = cluster_labels(pts, link_m=150)
    >>> labels.tolist(), edges.tolist()
    ([0, 0, 1], [[0, 1]])
    """
    if not np.isfinite(link_m) or link_m <= 0:
        raise ValidationError([Problem("parameters", None, "link_m",
                                       f"must be a number > 0, got {link_m}")])
    n = len(premises)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    xyz = _ecef(lonlat(premises.to_numpy(), CRS(premises.crs)))
    pairs = cKDTree(xyz).query_pairs(link_m, output_type="ndarray").astype(np.int64)
    chord = np.linalg.norm(xyz[pairs[:, 0]] - xyz[pairs[:, 1]], axis=1)
    # scipy drops zero weights as "no edge": coincident premises get a tiny positive one
    weight = np.maximum(chord, 1e-6)
    graph = sparse.coo_matrix((weight, (pairs[:, 0], pairs[:, 1])), shape=(n, n)).tocsr()
    _, labels = csgraph.connected_components(graph, directed=False)
    forest = csgraph.minimum_spanning_tree(graph).tocoo()
    edges = np.column_stack([forest.row, forest.col]).astype(np.int64)
    edge_m = np.linalg.norm(xyz[edges[:, 0]] - xyz[edges[:, 1]], axis=1) if len(edges) \
        else np.zeros(0)
    return labels.astype(np.int64), edges, edge_m


def _cost_table(cost_per_m: Mapping[str, float] | None) -> dict[str, float]:
    table = dict(COST_PER_M)
    problems = []
    for key, value in (cost_per_m or {}).items():
        if key not in PLACEMENTS:
            problems.append(Problem("parameters", None, "cost_per_m",
                                    f"unknown placement {key!r}; one of {', '.join(PLACEMENTS)}"))
        elif not np.isfinite(value) or value < 0:
            problems.append(Problem("parameters", None, "cost_per_m",
                                    f"{key}: must be a number >= 0, got {value}"))
        else:
            table[key] = float(value)
    if problems:
        raise ValidationError(problems)
    return table


def _empty_plan(crs: CRS) -> BuildPlan:
    clusters = gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in CLUSTER_COLUMNS},
                                geometry=gpd.GeoSeries([], crs=crs), crs=crs)
    return BuildPlan(clusters, pd.DataFrame({"premise_id": pd.Series(dtype=object),
                                             "cluster_id": pd.Series(dtype=object)}),
                     empty_layer("nodes", crs), empty_layer("spans", crs))


def plan_builds(
    premises: gpd.GeoDataFrame,
    spans: gpd.GeoDataFrame,
    nodes: gpd.GeoDataFrame,
    *,
    drop_m: float = DEFAULT_DROP_M,
    link_m: float = DEFAULT_LINK_M,
    placement: str = DEFAULT_PLACEMENT,
    cost_per_m: Mapping[str, float] | None = None,
    roads: gpd.GeoDataFrame | None = None,
    road_snap_m: float = DEFAULT_ROAD_SNAP_M,
    h3_res: int = DEFAULT_H3_RES,
    id_prefix: str = "plan-",
    status: str = "planned",
) -> BuildPlan:
    """Cluster the unpassed premises, sketch and price a build for each, rank them.

    Parameters
    ----------
    premises
        Analysed premises (``premise_id``, ``units``, ``passed``, ``distance_m``).
    spans
        Analysed spans (``span_id``, ``from_node``, ``to_node``, ``lit``).
    nodes
        The nodes layer (positions of the spans' end nodes).
    drop_m
        The drop length the analysis used (leaves of the sketch within
        0.9 * drop_m of their parent are left to drops).
    link_m
        Premises within this many meters share a cluster (default 250).
    placement
        Placement of the new route, priced from ``cost_per_m`` (default underground).
    cost_per_m
        Overrides of :data:`COST_PER_M`, placement -> cost per meter.
    roads
        Optional road centre lines (any CRS, junctions as shared vertices): the join
        to the network then follows the roads, from the road vertex nearest the
        cluster to a road vertex within ``road_snap_m`` of a lit span.
    h3_res
        Resolution of the ``h3_cell`` reported for each cluster's first premise.
    id_prefix, status
        Id prefix and status of the sketched nodes and spans.

    Returns
    -------
    BuildPlan
        Clusters ranked by cost per unit (rank 1 first), most units first on
        ties; a cluster that cannot join (nothing lit) has no cost and ranks last.
        ``cluster_id`` is ``gap-`` plus the cluster's lowest premise_id.

    Examples
    --------
    >>> from netgis.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> r = analyze(read_dataset("tests/examples/ring_spur/dataset.gpkg"))  # doctest: +SKIP
    >>> plan = plan_builds(r.premises, r.spans, r.nodes)  # doctest: +SKIP
    >>> plan.clusters["cluster_id"].tolist()  # doctest: +SKIP
    ['gap-p_far']
    """
    table = _cost_table(cost_per_m)
    if placement not in PLACEMENTS:
        raise ValidationError([Problem("parameters", None, "placement",
                                       f"unknown placement {placement!r}")])
    crs = CRS(premises.crs)
    gap = premises[~premises["passed"].to_numpy(dtype=bool)]
    if len(gap) == 0:
        return _empty_plan(crs)
    ids = gap["premise_id"].to_numpy().astype(str)
    units = gap["units"].to_numpy(dtype=np.int64)
    dist = gap["distance_m"].to_numpy(dtype=float)
    labels, edges, _ = cluster_labels(gap.geometry, link_m=link_m)
    k = int(labels.max()) + 1
    ll = lonlat(gap.geometry.to_numpy(), crs)

    # cluster id: its lowest premise_id; root: its premise nearest the lit network
    order = np.lexsort((ids, labels))
    first = order[np.r_[True, labels[order][1:] != labels[order][:-1]]]
    cluster_id = np.asarray([f"gap-{s}" for s in ids[first].tolist()], dtype=object)
    order = np.lexsort((ids, np.where(np.isnan(dist), np.inf, dist), labels))
    root = order[np.r_[True, labels[order][1:] != labels[order][:-1]]]
    is_root = np.zeros(len(gap), dtype=bool)
    is_root[root] = True

    parent, edge_m = _orient(len(gap), edges, root, ll)
    degree = np.bincount(edges.reshape(-1), minlength=len(gap))
    has_parent = parent >= 0
    safe_parent = np.where(has_parent, parent, 0)
    pruned = (has_parent & (degree == 1) & (edge_m <= _PRUNE_SHARE * drop_m)
              & ((degree[safe_parent] >= 2) | is_root[safe_parent]))
    kept_edge = has_parent & ~pruned
    distribution_m = np.bincount(labels[kept_edge], weights=edge_m[kept_edge], minlength=k)

    lit = spans[spans["lit"].to_numpy(dtype=bool)] if "lit" in spans else spans.iloc[:0]
    join = _joins(gap.geometry.iloc[root], lit, nodes, roads=roads, road_snap_m=road_snap_m,
                  drop_m=drop_m)
    join_m = np.where(np.isnan(join["road_m"]), join["straight_m"], join["road_m"])
    route_m = join_m + distribution_m
    unit_sum = np.bincount(labels, weights=units, minlength=k).astype(np.int64)
    gap_dist = pd.DataFrame({"label": labels, "d": dist}).groupby("label")["d"]
    cost = route_m * table[placement]
    with np.errstate(divide="ignore", invalid="ignore"):
        units_per_km = np.where(route_m > 0, unit_sum / (route_m / 1000.0), np.nan)
        cost_per_unit = cost / unit_sum

    clusters = pd.DataFrame({
        "cluster_id": cluster_id,
        "premises": np.bincount(labels, minlength=k).astype(np.int64),
        "units": unit_sum,
        "min_distance_m": gap_dist.min().to_numpy(),
        "median_distance_m": gap_dist.median().to_numpy(),
        "join_span_id": join["span_id"],
        "join_straight_m": join["straight_m"],
        "join_road_m": join["road_m"],
        "join_m": join_m,
        "distribution_m": distribution_m,
        "route_m": route_m,
        "placement": placement,
        "cost_per_m": table[placement],
        "cost": cost,
        "units_per_km": units_per_km,
        "cost_per_unit": cost_per_unit,
        "h3_cell": h3_cells(gap.geometry.iloc[first], res=h3_res),
    })
    rank_order = np.lexsort((cluster_id.astype(str), -unit_sum,
                             np.where(np.isnan(cost_per_unit), np.inf, cost_per_unit)))
    rank = np.empty(k, dtype=np.int64)
    rank[rank_order] = np.arange(1, k + 1)
    clusters.insert(0, "rank", rank)
    hulls = _hulls(gap.geometry, labels, k, drop_m)
    clusters_gdf = gpd.GeoDataFrame(clusters, geometry=gpd.GeoSeries(hulls, crs=crs), crs=crs)
    clusters_gdf = clusters_gdf.iloc[rank_order].reset_index(drop=True)

    plan_nodes, plan_spans = _sketch(gap, parent, kept_edge, pruned, root, labels, join,
                                     crs=crs, placement=placement, id_prefix=id_prefix,
                                     status=status)
    premise_cluster = pd.DataFrame({"premise_id": gap["premise_id"].to_numpy(),
                                    "cluster_id": cluster_id[labels]})
    return BuildPlan(clusters_gdf, premise_cluster, plan_nodes, plan_spans)


def _orient(n: int, edges: IntArray, roots: IntArray, ll: FloatArray
            ) -> tuple[IntArray, FloatArray]:
    """Parent of each vertex of the forest rooted at ``roots`` (-1: root) and its edge length."""
    virtual = n
    rows = np.concatenate([edges[:, 0], np.full(len(roots), virtual)])
    cols = np.concatenate([edges[:, 1], roots])
    graph = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n + 1, n + 1)).tocsr()
    _, pred = csgraph.breadth_first_order(graph, virtual, directed=False,
                                          return_predecessors=True)
    parent = pred[:n].astype(np.int64)
    parent[parent == virtual] = -1
    has = parent >= 0
    edge_m = np.zeros(n)
    p = parent[has]
    edge_m[has] = geodesic_distance_m(ll[has, 0], ll[has, 1], ll[p, 0], ll[p, 1])
    return parent, edge_m


def _hulls(points: gpd.GeoSeries, labels: IntArray, k: int, drop_m: float
           ) -> npt.NDArray[np.object_]:
    """Each cluster's convex hull buffered by the drop, built in the clusters' UTM zone."""
    crs = CRS(points.crs)
    ll = lonlat(points.to_numpy(), crs)
    w = CRS.from_epsg(utm_epsg(float(np.median(ll[:, 0])), float(np.median(ll[:, 1]))))
    xy = shapely.get_coordinates(transform_geoms(points.to_numpy(), crs, w))
    order = np.argsort(labels, kind="stable")
    multi = shapely.multipoints(_points(xy[order]), indices=labels[order])
    hull = np.asarray(shapely.buffer(shapely.convex_hull(multi), max(drop_m, 1.0), quad_segs=4),
                      dtype=object)
    return transform_geoms(hull, w, crs)


def _joins(roots: gpd.GeoSeries, lit: gpd.GeoDataFrame, nodes: gpd.GeoDataFrame, *,
           roads: gpd.GeoDataFrame | None, road_snap_m: float, drop_m: float
           ) -> dict[str, npt.NDArray[np.generic]]:
    """Join of each cluster root to the lit network: straight, and along roads when given.

    Also returns, per root, the join's path in the dataset CRS (a list of
    coordinates ending on the lit span) and the end node it is spliced to.
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
    straight = locate(roots.reset_index(drop=True), lit, drop_m=0.0)
    out["straight_m"] = straight["distance_m"].to_numpy()
    span_ids = straight["nearest_span_id"].to_numpy(dtype=object)
    attach = np.column_stack([straight["attach_lon"], straight["attach_lat"]])
    road_path: list[FloatArray | None] = [None] * k
    if roads is not None and len(roads):
        road = _road_joins(roots, lit, roads, road_snap_m=road_snap_m)
        if road is not None:
            road_m, road_span, road_attach, road_path = road
            ok = ~np.isnan(road_m)
            out["road_m"] = road_m
            span_ids = np.where(ok, road_span, span_ids)
            attach = np.where(ok[:, None], road_attach, attach)
    out["span_id"] = span_ids
    attach_ds = shapely.get_coordinates(transform_geoms(_points(attach), WGS84, crs))
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


def _road_joins(roots: gpd.GeoSeries, lit: gpd.GeoDataFrame, roads: gpd.GeoDataFrame, *,
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
    ll = lonlat(_points(coords), road_crs)
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
    G = nx.Graph()
    G.add_weighted_edges_from(zip(a.tolist(), b.tolist(), seg_m.tolist(), strict=True))
    source = -1
    G.add_weighted_edges_from((source, int(v), float(d)) for v, d in
                              zip(src.tolist(), near["distance_m"].to_numpy()[src], strict=True))
    pred, dist = nx.dijkstra_predecessor_and_distance(G, source)
    root_ll = lonlat(roots.to_numpy(), crs)
    tree = cKDTree(_ecef(v_ll))
    _, entry = tree.query(_ecef(root_ll))
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
        paths[i] = shapely.get_coordinates(transform_geoms(_points(v_ll[walk]), WGS84, crs))
    return road_m, span, att, paths


def _sketch(gap: gpd.GeoDataFrame, parent: IntArray, kept_edge: npt.NDArray[np.bool_],
            pruned: npt.NDArray[np.bool_], root: IntArray, labels: IntArray,
            join: dict[str, npt.NDArray[np.generic]], *, crs: CRS, placement: str,
            id_prefix: str, status: str) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The sketch as contract layers: a node at each kept premise, a span up from each."""
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
        _points(xy[sel]), crs=crs), crs=crs)

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


def gap_analysis(
    analysis: Analysis,
    *,
    h3_res: int = DEFAULT_H3_RES,
    link_m: float = DEFAULT_LINK_M,
    placement: str = DEFAULT_PLACEMENT,
    cost_per_m: Mapping[str, float] | None = None,
    roads: gpd.GeoDataFrame | None = None,
    road_snap_m: float = DEFAULT_ROAD_SNAP_M,
) -> Gaps:
    """H3 and area roll-ups of the gaps and the ranked build plan of an analysis.

    Parameters
    ----------
    analysis
        A :class:`netgis.analysis.Analysis`.
    h3_res, link_m, placement, cost_per_m, roads, road_snap_m
        See :func:`rollup_h3` and :func:`plan_builds`.

    Examples
    --------
    >>> from netgis.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> gaps = gap_analysis(analyze(read_dataset("tests/examples/ring_spur/dataset.gpkg")))
    >>> gaps.hexes["units"].sum(), gaps.plan.clusters["cluster_id"].tolist()
    (np.int64(1), ['gap-p_far'])
    """
    premises = analysis.premises
    plan = plan_builds(premises, analysis.spans, analysis.nodes, drop_m=analysis.drop_m,
                       link_m=link_m, placement=placement, cost_per_m=cost_per_m, roads=roads,
                       road_snap_m=road_snap_m, h3_res=h3_res)
    return Gaps(hexes=rollup_h3(premises, h3_res=h3_res),
                areas=rollup_areas(premises, analysis.dataset.areas), plan=plan)


def _like(new: gpd.GeoDataFrame, old: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``new`` with ``old``'s columns and dtypes, so concatenation keeps nullable types.

    The dataset may carry columns beyond the contract: the sketch leaves them empty.
    """
    out = new.reindex(columns=old.columns)
    for col in old.columns:
        if col != old.geometry.name and out[col].dtype != old[col].dtype:
            out[col] = out[col].astype(old[col].dtype)
    return out


def apply_plan(dataset: Dataset, plan: BuildPlan, *, status: str = "in_service") -> Dataset:
    """``dataset`` with the plan's nodes and spans appended under ``status`` (a new Dataset).

    Examples
    --------
    >>> from netgis.analysis import analyze
    >>> from netgis.io import read_dataset
    >>> ds = read_dataset("tests/examples/ring_spur/dataset.gpkg")
    >>> plan = gap_analysis(analyze(ds)).plan
    >>> analyze(apply_plan(ds, plan)).kpis["network"]["coverage_pct"]
    100.0
    """
    crs = dataset.crs
    new_nodes = plan.nodes.to_crs(crs).assign(status=status)
    new_spans = plan.spans.to_crs(crs).assign(status=status)
    nodes = pd.concat([dataset.nodes, _like(new_nodes, dataset.nodes)], ignore_index=True)
    spans = pd.concat([dataset.spans, _like(new_spans, dataset.spans)], ignore_index=True)
    return Dataset(nodes=gpd.GeoDataFrame(nodes, geometry="geometry", crs=crs),
                   spans=gpd.GeoDataFrame(spans, geometry="geometry", crs=crs),
                   premises=dataset.premises, areas=dataset.areas,
                   warnings=list(dataset.warnings))


#: Files written by :func:`write_gaps`.
GAP_FILES = ("gaps_clusters.csv", "gaps_h3.csv", "gaps_h3.geojson", "gaps_areas.csv",
             "gaps_premises.csv", "gaps_plan.gpkg")


def write_gaps(gaps: Gaps, out_dir: str | os.PathLike[str]) -> Path:
    """Write the ranked build list, the roll-ups and the sketch into ``out_dir``, all or nothing.

    ``gaps_clusters.csv`` (ranked build list), ``gaps_h3.csv`` and
    ``gaps_h3.geojson`` (hexagons), ``gaps_areas.csv``, ``gaps_premises.csv``
    (premise_id, cluster_id) and ``gaps_plan.gpkg`` (layers ``nodes`` and
    ``spans``, status planned, dataset CRS).
    """
    out = Path(out_dir)
    with atomic_dir(out, merge=True) as tmp:
        gaps.plan.clusters.drop(columns="geometry").to_csv(tmp / "gaps_clusters.csv",
                                                           index=False)
        gaps.hexes.drop(columns="geometry").to_csv(tmp / "gaps_h3.csv", index=False)
        (tmp / "gaps_h3.geojson").write_text(gaps.hexes.to_json(na="null", drop_id=True))
        gaps.areas.to_csv(tmp / "gaps_areas.csv", index=False)
        gaps.plan.premise_cluster.to_csv(tmp / "gaps_premises.csv", index=False)
        for layer in ("nodes", "spans"):
            frame = getattr(gaps.plan, layer)
            # an empty layer still gets written so the file always has both layers
            pyogrio.write_dataframe(frame, tmp / "gaps_plan.gpkg", layer=layer, driver="GPKG",
                                    append=layer == "spans")
    return out


def in_area(premises: gpd.GeoDataFrame, areas: gpd.GeoDataFrame, area_id: str
            ) -> npt.NDArray[np.bool_]:
    """Which premises the area ``area_id`` covers (boundary included); unknown ids raise.

    Examples
    --------
    >>> from shapely import Point, box
    >>> prem = gpd.GeoDataFrame(geometry=[Point(0, 0), Point(50, 50)], crs=32632)
    >>> areas = gpd.GeoDataFrame({"area_id": ["a"]}, geometry=[box(0, 0, 10, 10)], crs=32632)
    >>> in_area(prem, areas, "a").tolist()
    [True, False]
    """
    hit = areas[areas["area_id"] == area_id] if areas is not None and len(areas) else areas
    if hit is None or len(hit) == 0:
        raise NotFoundError("areas", area_id)
    area_crs = CRS(hit.crs)
    c = shapely.get_coordinates(shapely.centroid(
        transform_geoms(hit.geometry.to_numpy(), area_crs, WGS84)))[0]
    w = CRS.from_epsg(utm_epsg(float(c[0]), float(c[1])))
    poly = transform_geoms(hit.geometry.to_numpy(), area_crs, w)[0]
    pts = transform_geoms(premises.geometry.to_numpy(), CRS(premises.crs), w)
    return np.asarray(shapely.covers(poly, pts), dtype=bool)


def in_cell(points: gpd.GeoSeries, cell: str) -> npt.NDArray[np.bool_]:
    """Which points lie in the H3 cell ``cell`` (any resolution); a malformed cell raises.

    Examples
    --------
    >>> from shapely import Point
    >>> in_cell(gpd.GeoSeries([Point(8.68, 50.11)], crs=4326), "871faeaa9ffffff").tolist()
    [True]
    """
    if not isinstance(cell, str) or not h3.is_valid_cell(cell):
        raise ValidationError([Problem("parameters", None, "h3_cell",
                                       f"not a valid H3 cell: {cell!r}")])
    return np.asarray(h3_cells(points, res=h3.get_resolution(cell)) == cell, dtype=bool)
