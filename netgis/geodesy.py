"""Meters done right: working CRS choice, geodesic lengths and distances.

Metric work happens in a local conformal CRS (the data's UTM zone), never in
degrees or web mercator. Reported lengths and distances are WGS84 geodesic.

Examples
--------
>>> utm_epsg(8.68, 50.1)
32632
>>> round(float(geodesic_distance_m([8.0], [50.0], [8.0], [50.001])[0]), 2)
111.23
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyproj
import shapely
from pyproj import CRS, Geod, Transformer

WGS84 = CRS.from_epsg(4326)
_GEOD = Geod(ellps="WGS84")

FloatArray = npt.NDArray[np.float64]


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the UTM zone holding ``lon``/``lat`` (WGS84 datum).

    Zones follow the regular 6-degree grid (no Norway/Svalbard exceptions);
    the equator itself counts as north.

    Examples
    --------
    >>> utm_epsg(-43.2, -22.9)  # Rio de Janeiro
    32723
    """
    zone = int(np.floor((lon + 180.0) / 6.0)) % 60 + 1
    return (32600 if lat >= 0 else 32700) + zone


def utm_zone_numbers(lon: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """UTM zone number (1..60) of each longitude."""
    lon_arr = np.asarray(lon, dtype=float)
    return (np.floor((lon_arr + 180.0) / 6.0).astype(np.int64) % 60) + 1


def working_crs_for(lon: npt.ArrayLike, lat: npt.ArrayLike) -> CRS:
    """The UTM CRS of the median position of the given WGS84 coordinates."""
    lon_arr = np.asarray(lon, dtype=float)
    lat_arr = np.asarray(lat, dtype=float)
    if lon_arr.size == 0:
        return CRS.from_epsg(32631)
    return CRS.from_epsg(utm_epsg(float(np.median(lon_arr)), float(np.median(lat_arr))))


#: Transformers made by this thread, by (source, target): making one costs ~1 ms, which
#: every small edit and single-premise answer paid several times.
_THREAD = threading.local()
_TRANSFORMERS_KEPT = 64


def transformer(src: CRS | str | int, dst: CRS | str | int) -> Transformer:
    """An always_xy transformer between two CRSs (made once per thread and pair)."""
    kept: dict[tuple[object, object], Transformer] | None = getattr(_THREAD, "kept", None)
    if kept is None:
        kept = _THREAD.kept = {}
    key = (src, dst)
    made = kept.get(key)
    if made is None:
        if len(kept) >= _TRANSFORMERS_KEPT:
            kept.clear()
        made = kept[key] = Transformer.from_crs(pyproj.CRS(src), pyproj.CRS(dst),
                                                always_xy=True)
    return made


def transform_geoms(
    geoms: npt.ArrayLike | Sequence[object], src: CRS | str | int, dst: CRS | str | int
) -> npt.NDArray[np.object_]:
    """Reproject shapely geometries vertex by vertex (edges stay straight in ``dst``).

    Missing geometries stay missing.

    Examples
    --------
    >>> from shapely import Point
    >>> p = transform_geoms([Point(0, 0)], 4326, 3857)[0]
    >>> (round(p.x, 6), round(p.y, 6))
    (0.0, 0.0)
    """
    arr = np.asarray(geoms, dtype=object)
    if pyproj.CRS(src) == pyproj.CRS(dst):
        return arr
    t = transformer(src, dst)
    return np.asarray(
        shapely.transform(arr, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1]))),
        dtype=object,
    )


def lonlat(geoms: npt.ArrayLike, crs: CRS) -> npt.NDArray[np.float64]:
    """WGS84 lon/lat of point geometries given in ``crs``."""
    arr = np.asarray(geoms, dtype=object)
    xy = np.asarray(shapely.get_coordinates(arr), dtype=float)
    if len(xy) != len(arr):  # missing or empty points: transform the geometries themselves
        return np.asarray(shapely.get_coordinates(transform_geoms(arr, CRS(crs), WGS84)),
                          dtype=float)
    return xy_lonlat(xy, crs)


def xy_lonlat(xy: npt.NDArray[np.float64], crs: CRS) -> npt.NDArray[np.float64]:
    """WGS84 lon/lat of coordinates (n x 2) given in ``crs``; no geometry is built."""
    if CRS(crs) == WGS84:
        return np.asarray(xy, dtype=float)
    lon, lat = transformer(crs, WGS84).transform(xy[:, 0], xy[:, 1])
    return np.column_stack([lon, lat]).astype(float)


def geodesic_distance_m(
    lon1: npt.ArrayLike, lat1: npt.ArrayLike, lon2: npt.ArrayLike, lat2: npt.ArrayLike
) -> FloatArray:
    """WGS84 geodesic distance between point pairs, in meters."""
    a = [np.asarray(v, dtype=float) for v in (lon1, lat1, lon2, lat2)]
    if a[0].size == 0:
        return np.zeros(0)
    _, _, dist = _GEOD.inv(a[0], a[1], a[2], a[3])
    return np.asarray(dist, dtype=float)


def distance_to_box_m(lon: npt.ArrayLike, lat: npt.ArrayLike,
                      box: tuple[float, float, float, float]) -> FloatArray:
    """Geodesic meters from each WGS84 ``lon``/``lat`` to a (west, south, east, north) box.

    0 inside; outside, the distance to the box's point nearest in lon/lat, which is
    close to the true distance at the scale of kilometers. A box across the
    antimeridian (west > east) is taken as spanning every longitude.

    Examples
    --------
    >>> distance_to_box_m([8.5, 8.5], [50.5, 49.0], (8.0, 50.0, 9.0, 51.0)).round(-3).tolist()
    [0.0, 111000.0]
    """
    lon_a, lat_a = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    west, south, east, north = box
    near_lon = lon_a if west > east else np.clip(lon_a, west, east)
    near_lat = np.clip(lat_a, south, north)
    out = np.zeros(lon_a.shape)
    off = (near_lon != lon_a) | (near_lat != lat_a)
    out[off] = geodesic_distance_m(lon_a[off], lat_a[off], near_lon[off], near_lat[off])
    return out


def geodesic_lengths_m(
    lines_wgs84: Sequence[object] | npt.NDArray[np.object_], *, crs: CRS | str | int | None = None
) -> FloatArray:
    """Geodesic length of each (Multi)LineString, in meters.

    The lines are in WGS84 lon/lat unless ``crs`` names their CRS; they are
    then reprojected vertex by vertex first, so a line in EPSG:3857 measures
    the same as its WGS84 copy. Missing or empty geometries measure 0.
    Vectorized: one call to the geodesic solver for all vertex pairs.

    Examples
    --------
    >>> from shapely import LineString
    >>> round(float(geodesic_lengths_m([LineString([(8, 50), (8, 50.001)])])[0]), 2)
    111.23
    """
    arr = np.asarray(lines_wgs84, dtype=object).reshape(-1)
    n = arr.size
    if n == 0:
        return np.zeros(0)
    if (shapely.get_type_id(arr) == 1).all():  # plain LineStrings: no parts to split
        parts, part_of = arr, np.arange(n)
    else:
        parts, part_of = shapely.get_parts(arr, return_index=True)
    coords, idx = shapely.get_coordinates(parts, return_index=True)
    if len(coords) < 2:
        return np.zeros(n)
    if crs is not None and pyproj.CRS(crs) != WGS84:
        # transform the coordinate arrays only: no geometry is rebuilt
        lon, lat = transformer(crs, WGS84).transform(coords[:, 0], coords[:, 1])
        coords = np.column_stack([lon, lat])
    same = idx[1:] == idx[:-1]
    seg = _GEOD.inv(coords[:-1, 0][same], coords[:-1, 1][same], coords[1:, 0][same],
                    coords[1:, 1][same])[2]
    per_part = np.bincount(idx[1:][same], weights=np.asarray(seg), minlength=len(parts))
    return np.bincount(part_of, weights=per_part, minlength=n).astype(float)


class PointsCover:
    """Points in strips of x, to find those a polygon covers (boundary included).

    A polygon tests only the points of its bounding box: the strips it spans,
    narrowed by x and y, then GEOS's prepared point-in-polygon test on bare
    coordinates (``shapely.intersects_xy``: a point meets a polygon exactly when
    the polygon covers it). No STRtree of the points is built; points with NaN
    coordinates are never found.
    """

    def __init__(self, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> None:
        self.x, self.y = x, y
        finite = np.isfinite(x)
        self.strips = int(min(4096, max(1, finite.sum() // 256)))
        self.x0 = float(x[finite].min()) if finite.any() else 0.0
        width = float(x[finite].max()) - self.x0 if finite.any() else 0.0
        self.width = width / self.strips if width > 0 else 1.0
        strip = np.full(len(x), self.strips, dtype=np.int16)   # NaN: a strip past the last
        strip[finite] = self._strip(x[finite])
        # a stable sort of 16-bit keys is a radix sort: linear in the points
        self.order = np.argsort(strip, kind="stable")
        self.start = np.searchsorted(strip[self.order], np.arange(self.strips + 2))

    def _strip(self, x: npt.NDArray[np.float64] | float) -> npt.NDArray[np.int16]:
        k = np.floor((np.asarray(x, dtype=float) - self.x0) / self.width)
        return np.clip(k, 0, self.strips - 1).astype(np.int16)

    def candidates(self, poly: shapely.Geometry) -> npt.NDArray[np.intp]:
        """Indices of the points in the bounding box of ``poly`` (in no particular order)."""
        x0, y0, x1, y1 = shapely.bounds(poly)
        cand = self.order[self.start[int(self._strip(x0))]:self.start[int(self._strip(x1)) + 1]]
        x, y = self.x[cand], self.y[cand]
        out: npt.NDArray[np.intp] = cand[(x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)]
        return out

    def covered(self, poly: shapely.Geometry,
                among: npt.NDArray[np.bool_] | None = None) -> npt.NDArray[np.intp]:
        """Indices of the points ``poly`` covers; only where ``among`` when given."""
        cand = self.candidates(poly)
        if among is not None:
            cand = cand[among[cand]]
        if not len(cand):
            return cand
        shapely.prepare(poly)
        return cand[shapely.intersects_xy(poly, self.x[cand], self.y[cand])]
