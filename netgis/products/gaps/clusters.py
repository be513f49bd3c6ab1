"""Gap clusters: single-linkage clustering of unpassed premises and the trees inside them.

Two premises within ``link_m`` meters are in one cluster. Distances are 3-D
chords between WGS84 ellipsoid positions (EPSG:4978), which agree with the
geodesic to far better than 0.1 % at the few-hundred-meter scale of a
cluster and need no UTM zone. The minimum spanning forest of the clusters,
rooted by :func:`orient_forest`, is the distribution route of a build.

Single linkage chains: on a city the dense fringe of unpassed premises can be
one cluster of tens of thousands. :func:`split_clusters` keeps clusters
buildable by cutting each one that is too large (units) or too wide (extent)
at the longest edge of its spanning tree, again and again, until every piece
fits: the cuts fall on the widest gaps between premises, the natural breaks.
Since a piece is never larger nor wider than what it was cut from, an edge is
cut exactly when the single-linkage cluster it completes breaks a bound, so
one union-find pass over the edges, shortest first, finds every cut.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from netgis.engine.coverage import lonlat
from netgis.errors import Problem, ValidationError
from netgis.geodesy import geodesic_distance_m, transform_geoms, transformer, utm_epsg
from netgis.schema import DEFAULT_LINK_M, DEFAULT_MAX_CLUSTER_EXTENT_M, DEFAULT_MAX_CLUSTER_UNITS

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def points_of(xy: FloatArray) -> npt.NDArray[np.object_]:
    """Points from an (n, 2) coordinate array, as an object array.

    Examples
    --------
    >>> [p.wkt for p in points_of(np.array([[1.0, 2.0]]))]
    ['POINT (1 2)']
    """
    return np.asarray(shapely.points(xy), dtype=object)


def ecef(ll: FloatArray) -> FloatArray:
    """Earth-centred 3-D coordinates (m) of lon/lat positions on the ellipsoid.

    Examples
    --------
    >>> ecef(np.array([[0.0, 0.0]])).round(1).tolist()  # on the equator, WGS84 a = 6378137 m
    [[6378137.0, 0.0, 0.0]]
    """
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
    xyz = ecef(lonlat(premises.to_numpy(), CRS(premises.crs)))
    return _single_linkage(xyz, link_m)


def _single_linkage(xyz: FloatArray, link_m: float) -> tuple[IntArray, IntArray, FloatArray]:
    n = len(xyz)
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


def bounded_clusters(
    premises: gpd.GeoSeries,
    units: IntArray,
    *,
    link_m: float = DEFAULT_LINK_M,
    max_units: float = DEFAULT_MAX_CLUSTER_UNITS,
    max_extent_m: float = DEFAULT_MAX_CLUSTER_EXTENT_M,
) -> tuple[IntArray, IntArray, FloatArray]:
    """Single-linkage clusters (:func:`cluster_labels`) split until each one fits the bounds.

    Returns the cluster of each point (0..k-1) and the spanning forest of the
    clusters (:func:`split_clusters`), as :func:`cluster_labels` does.

    Examples
    --------
    >>> from shapely import Point
    >>> pts = gpd.GeoSeries([Point(0, 0), Point(100, 0), Point(300, 0), Point(400, 0)],
    ...                     crs=32632)
    >>> labels, edges, _ = bounded_clusters(pts, np.ones(4, dtype=np.int64), max_units=2)
    >>> labels.tolist(), edges.tolist()
    ([0, 0, 1, 1], [[0, 1], [2, 3]])
    """
    check_bounds(max_units, max_extent_m)
    labels, edges, edge_m = cluster_labels(premises, link_m=link_m)
    if len(labels) == 0:
        return labels, edges, edge_m
    xyz = ecef(lonlat(premises.to_numpy(), CRS(premises.crs)))
    labels, kept = split_clusters(xyz, labels, edges, edge_m, units, max_units=max_units,
                                  max_extent_m=max_extent_m)
    return labels, edges[kept], edge_m[kept]


def check_bounds(max_units: float, max_extent_m: float) -> None:
    """Raise a ValidationError naming each cluster bound that is not a number > 0."""
    problems = [Problem("parameters", None, name, f"must be a number > 0, got {value}")
                for name, value in (("max_units", max_units), ("max_extent_m", max_extent_m))
                if not (np.isfinite(value) and value > 0)]
    if problems:
        raise ValidationError(problems)


def local_plane(xyz: FloatArray, labels: IntArray, k: int) -> FloatArray:
    """East/north meters of each point in the plane tangent to the ellipsoid under the mean
    position of its cluster (so the figures hold anywhere on Earth).

    Examples
    --------
    >>> xyz = ecef(np.array([[8.0, 50.0], [8.0, 50.009]]))
    >>> np.diff(local_plane(xyz, np.array([0, 0]), 1), axis=0).round(0).tolist()  # 0.009 deg north
    [[0.0, 1001.0]]
    """
    count = np.bincount(labels, minlength=k).astype(float)
    centre = np.column_stack([np.bincount(labels, weights=xyz[:, i], minlength=k)
                              for i in range(3)]) / np.maximum(count, 1.0)[:, None]
    up = centre / np.maximum(np.linalg.norm(centre, axis=1), 1e-9)[:, None]
    east = np.column_stack([-up[:, 1], up[:, 0], np.zeros(k)])  # (0, 0, 1) x up
    norm = np.linalg.norm(east, axis=1)
    east = np.where(norm[:, None] > 1e-9, east / np.maximum(norm, 1e-9)[:, None], [1.0, 0.0, 0.0])
    north = np.cross(up, east)
    rel = xyz - centre[labels]
    return np.column_stack([np.einsum("ij,ij->i", rel, east[labels]),
                            np.einsum("ij,ij->i", rel, north[labels])])


def cluster_extent_m(xyz: FloatArray, labels: IntArray, k: int) -> FloatArray:
    """Diagonal (m) of each cluster's bounding box in its own plane (:func:`local_plane`).

    Every two premises of a cluster are at most this far apart.

    Examples
    --------
    >>> xyz = ecef(np.array([[8.0, 50.0], [8.0, 50.009], [8.014, 50.0]]))
    >>> cluster_extent_m(xyz, np.array([0, 0, 0]), 1).round(-1).tolist()  # 1,002 m x 1,000 m
    [1420.0]
    """
    local = local_plane(xyz, labels, k)
    lo = np.full((k, 2), np.inf)
    hi = np.full((k, 2), -np.inf)
    np.minimum.at(lo, labels, local)
    np.maximum.at(hi, labels, local)
    extent: FloatArray = np.hypot(*(np.maximum(hi - lo, 0.0).T))
    return extent


def _unfit_merges(pairs: IntArray, local: FloatArray, units: IntArray, max_units: float,
                  max_extent_m: float) -> npt.NDArray[np.bool_]:
    """For tree edges in ascending order, whether the cluster each one completes (the node
    of the single-linkage dendrogram it makes) breaks a bound.

    One union-find pass over the edges, with each set's units and bounding box: the
    dendrogram has to be built edge by edge, which no array operation does.
    """
    n = len(local)
    parent = list(range(n))
    load = units.astype(float).tolist()
    x0 = local[:, 0].tolist()
    x1 = list(x0)
    y0 = local[:, 1].tolist()
    y1 = list(y0)
    out = []
    for a, b in pairs.tolist():
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        while parent[b] != b:
            parent[b] = parent[parent[b]]
            b = parent[b]
        parent[b] = a
        load[a] += load[b]
        x0[a], x1[a] = min(x0[a], x0[b]), max(x1[a], x1[b])
        y0[a], y1[a] = min(y0[a], y0[b]), max(y1[a], y1[b])
        out.append(load[a] > max_units
                   or math.hypot(x1[a] - x0[a], y1[a] - y0[a]) > max_extent_m)
    return np.asarray(out, dtype=bool)


def split_clusters(
    xyz: FloatArray,
    labels: IntArray,
    edges: IntArray,
    edge_m: FloatArray,
    units: IntArray,
    *,
    max_units: float = DEFAULT_MAX_CLUSTER_UNITS,
    max_extent_m: float = DEFAULT_MAX_CLUSTER_EXTENT_M,
) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Clusters cut at the longest edges of their spanning trees until each one fits.

    A cluster of more than ``max_units`` units or wider than ``max_extent_m``
    (its bounding box diagonal in the plane of its single-linkage cluster, see
    :func:`local_plane`) loses the longest edge of its spanning tree (ties: the
    later edge) and falls into two; each piece is checked again, and so on. This
    undoes the top of the single-linkage dendrogram: as a piece is never larger
    nor wider than the cluster it came from, an edge is cut exactly when the
    dendrogram node it makes breaks a bound, which one pass over the edges
    finds. What is left of each tree is the spanning tree of its piece. A single
    premise is never cut, so it may stand alone above ``max_units``.

    Parameters
    ----------
    xyz
        Earth-centred positions (:func:`ecef`) of the points.
    labels, edges, edge_m
        What :func:`cluster_labels` returns for them.
    units
        Units of each point.
    max_units, max_extent_m
        The bounds (> 0).

    Returns
    -------
    labels, kept
        The cluster (0..k-1) of each point, and which of ``edges`` are kept.

    Examples
    --------
    >>> ll = np.array([[8.0, 50.0], [8.0005, 50.0], [8.003, 50.0], [8.0035, 50.0]])
    >>> xyz = ecef(ll)
    >>> labels, edges, edge_m = _single_linkage(xyz, 250.0)
    >>> new, kept = split_clusters(xyz, labels, edges, edge_m, np.ones(4, dtype=np.int64),
    ...                            max_units=2)
    >>> new.tolist(), int(kept.sum())
    ([0, 0, 1, 1], 2)
    """
    check_bounds(max_units, max_extent_m)
    n = len(labels)
    kept = np.ones(len(edges), dtype=bool)
    if n == 0 or len(edges) == 0:
        return labels, kept
    k = int(labels.max()) + 1
    local = local_plane(xyz, labels, k)
    size = np.bincount(labels, minlength=k)
    load = np.bincount(labels, weights=units.astype(float), minlength=k)
    lo = np.full((k, 2), np.inf)
    hi = np.full((k, 2), -np.inf)
    np.minimum.at(lo, labels, local)
    np.maximum.at(hi, labels, local)
    over = (size > 1) & ((load > max_units) | (np.hypot(*(hi - lo).T) > max_extent_m))
    # only the trees of clusters that break a bound are walked, shortest edge first
    sel = np.flatnonzero(over[labels[edges[:, 0]]])
    if len(sel) == 0:
        return labels, kept
    order = sel[np.lexsort((sel, edge_m[sel]))]
    kept[order[_unfit_merges(edges[order], local, units, max_units, max_extent_m)]] = False
    live = edges[kept]
    graph = sparse.coo_matrix((np.ones(len(live)), (live[:, 0], live[:, 1])),
                              shape=(n, n)).tocsr()
    _, comp = csgraph.connected_components(graph, directed=False)
    return comp.astype(np.int64), kept


def orient_forest(n: int, edges: IntArray, roots: IntArray, ll: FloatArray
                  ) -> tuple[IntArray, FloatArray]:
    """Parent of each vertex of the forest rooted at ``roots`` (-1: root) and its edge length.

    ``edges`` are vertex index pairs, ``ll`` the lon/lat of each vertex; the
    lengths are WGS84 geodesic meters.

    Examples
    --------
    >>> ll = np.array([[8.0, 50.0], [8.001, 50.0], [8.002, 50.0]])
    >>> parent, edge_m = orient_forest(3, np.array([[0, 1], [1, 2]]), np.array([2]), ll)
    >>> parent.tolist(), edge_m.round(0).tolist()
    ([1, 2, -1], [72.0, 72.0, 0.0])
    """
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


def cluster_hulls(points: gpd.GeoSeries, labels: IntArray, k: int, drop_m: float
                  ) -> npt.NDArray[np.object_]:
    """Each cluster's convex hull buffered by the drop, built in the clusters' UTM zone.

    ``k`` is the number of clusters (labels 0..k-1); the hulls are in the
    CRS of ``points``.

    Examples
    --------
    >>> from shapely import Point
    >>> pts = gpd.GeoSeries([Point(477_000, 5_550_000), Point(477_100, 5_550_000)], crs=32632)
    >>> hull = cluster_hulls(pts, np.array([0, 0]), 1, 10.0)
    >>> round(hull[0].area)  # 100 m x 20 m with round ends (4 segments a quarter circle)
    2306
    """
    crs = CRS(points.crs)
    ll = lonlat(points.to_numpy(), crs)
    w = CRS.from_epsg(utm_epsg(float(np.median(ll[:, 0])), float(np.median(ll[:, 1]))))
    xy = shapely.get_coordinates(transform_geoms(points.to_numpy(), crs, w))
    order = np.argsort(labels, kind="stable")
    multi = shapely.multipoints(points_of(xy[order]), indices=labels[order])
    hull = np.asarray(shapely.buffer(shapely.convex_hull(multi), max(drop_m, 1.0), quad_segs=4),
                      dtype=object)
    return transform_geoms(hull, w, crs)
