"""Gap clusters: single-linkage clustering of unpassed premises and the trees inside them.

Two premises within ``link_m`` meters are in one cluster. Distances are 3-D
chords between WGS84 ellipsoid positions (EPSG:4978), which agree with the
geodesic to far better than 0.1 % at the few-hundred-meter scale of a
cluster and need no UTM zone. The minimum spanning forest of the clusters,
rooted by :func:`orient_forest`, is the distribution route of a build.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from netgis.coverage import lonlat
from netgis.errors import Problem, ValidationError
from netgis.geodesy import geodesic_distance_m, transform_geoms, transformer, utm_epsg
from netgis.schema import DEFAULT_LINK_M

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
