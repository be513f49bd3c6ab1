"""Coverage: which premises are passed, how far, by which span.

For every premise the nearest lit span is found in the working CRS (the UTM
zone of the data, or of each premise when the data spans several zones) with
a shapely STRtree over spatially sorted query points. Spans within 1e-6 m of
the least distance tie and the lowest span_id (Unicode code-point order) wins.
``distance_m`` is the WGS84 geodesic distance from the premise to its
attachment point.

Examples
--------
>>> import geopandas as gpd
>>> from shapely import LineString, Point
>>> spans = gpd.GeoDataFrame({"span_id": ["s9", "s10"]},
...     geometry=[LineString([(0, 0), (100, 0)]), LineString([(0, 20), (100, 20)])],
...     crs=32632)
>>> pts = gpd.GeoSeries([Point(50, 10), Point(50, 500)], crs=32632)
>>> out = locate(pts, spans, drop_m=150)
>>> out["served_span_id"].tolist(), out["passed"].tolist()
(['s10', None], [True, False])
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import CRS
from scipy.spatial import cKDTree

from netgis.engine.graph import id_index
from netgis.geodesy import (
    geodesic_distance_m,
    transform_geoms,
    utm_epsg,
    utm_zone_numbers,
)

# lonlat and xy_lonlat moved to netgis.geodesy; the engine and products import them from here
from netgis.geodesy import lonlat as lonlat
from netgis.geodesy import xy_lonlat as xy_lonlat
from netgis.schema import DEFAULT_DROP_M

#: Spans whose distances differ by less than this (meters) tie.
TIE_M = 1e-6
#: Largest |longitude offset| * cos(latitude), in degrees, for one UTM zone to stay
#: within 0.1 % scale error over the data.
_ONE_ZONE_DEG = 3.0


def working_zones(lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64]) -> npt.NDArray[
        np.int64]:
    """EPSG code of the working CRS for each position.

    One UTM zone (that of the median position) when its scale error stays
    below 0.1 % over all positions, else each position's own zone. Chunks of
    positions reach the same choice through :class:`ZoneStats`.
    """
    if lon.size == 0:
        return np.zeros(0, dtype=np.int64)
    mid_lon, mid_lat = float(np.median(lon)), float(np.median(lat))
    epsg = utm_epsg(mid_lon, mid_lat)
    central = (epsg % 100) * 6 - 183
    spread = np.abs(((lon - central + 180) % 360) - 180) * np.cos(np.radians(lat))
    if float(spread.max()) <= _ONE_ZONE_DEG:
        return np.full(lon.size, epsg, dtype=np.int64)
    base = 32600 if mid_lat >= 0 else 32700
    return (base + utm_zone_numbers(lon)).astype(np.int64)


@dataclass(frozen=True)
class ZonePlan:
    """The working CRS choice of :func:`working_zones` for a whole set of positions.

    ``epsg`` is the UTM zone of the median position; ``single`` says whether it
    serves every position (else each position takes its own zone number, in
    the median's hemisphere). ``home`` is the one zone all positions use, if any.
    """

    epsg: int
    single: bool
    home: int | None

    def zones(self, lon: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """EPSG code of the working CRS of each position (by its longitude)."""
        if self.single:
            return np.full(len(lon), self.epsg, dtype=np.int64)
        return (self.epsg - self.epsg % 100 + utm_zone_numbers(lon)).astype(np.int64)


#: Longitude bins of :class:`ZoneStats`: one per UTM zone, and one for longitude 180 itself.
_LON_BINS = 61


#: Half a UTM zone in degrees: every central meridian and its antimeridian lie on a
#: multiple of it (offset by 3 from -180), so an offset from any of them grows or shrinks
#: monotonically across one such strip.
_HALF_ZONE_DEG = 3.0
#: Bins per half zone of the first, coarse filter of :func:`_spread_candidates`.
_FINE_BINS = 4096


def _spread_candidates(lon: npt.NDArray[np.float64], cos: npt.NDArray[np.float64]
                       ) -> npt.NDArray[np.intp]:
    """Indices of the positions among which every zone's spread maximum lies.

    The spread about a central meridian is ``|offset(lon)| * cos(lat)``; within a
    strip of half a zone the offset is monotone in the longitude for every zone, so
    a position with another at least as far west and at least as large ``cos``, and
    another such to the east, never beats both. What is left is the two staircases
    of each strip (most ``cos`` so far from the west, and from the east), and, for
    rounding's sake, every position within 1e-9 degrees of a strip's edge. The
    maxima computed over them are the same doubles as over all positions.
    """
    # first, cheaply: drop positions whose cos is below the best of some finer bin
    # strictly to the west and of one strictly to the east in the same strip
    fine = np.floor((lon + 180.0) * (_FINE_BINS / _HALF_ZONE_DEG)).astype(np.int64)
    flat = np.full((int(fine.max()) // _FINE_BINS + 1) * _FINE_BINS, -np.inf)
    np.maximum.at(flat, fine, cos)
    best = flat.reshape(-1, _FINE_BINS)
    west = np.maximum.accumulate(best, axis=1)
    west = np.concatenate([np.full((len(best), 1), -np.inf), west[:, :-1]], axis=1).ravel()
    east = np.maximum.accumulate(best[:, ::-1], axis=1)[:, ::-1]
    east = np.concatenate([east[:, 1:], np.full((len(best), 1), -np.inf)], axis=1).ravel()
    rel = (lon + 180.0) / _HALF_ZONE_DEG
    edge = np.abs(rel - np.round(rel)) * _HALF_ZONE_DEG < 1e-9
    left = np.flatnonzero((cos >= west[fine]) | (cos >= east[fine]) | edge)
    # then exactly: the staircases of each strip among those left
    strip = fine[left] // _FINE_BINS
    order = left[np.lexsort((lon[left], strip))]
    s = fine[order] // _FINE_BINS
    keep = edge.copy()
    for part in np.split(order, np.flatnonzero(s[1:] != s[:-1]) + 1):
        c = cos[part]
        from_west = np.maximum.accumulate(c)
        keep[part[np.append(True, c[1:] > from_west[:-1])]] = True
        c = c[::-1]
        from_east = np.maximum.accumulate(c)
        keep[part[::-1][np.append(True, c[1:] > from_east[:-1])]] = True
    return np.flatnonzero(keep)


@dataclass(frozen=True)
class ZoneStats:
    """What :func:`working_zones` needs to know of positions, in sums that chunks add up.

    The median longitude's zone follows from counts per zone and the least and
    greatest longitude in each; the median latitude's hemisphere from the count
    south of the equator and the latitudes nearest to it on both sides; the
    scale error test from the largest spread about every central meridian. So
    chunks of premises (or Dask partitions) choose exactly the zones that all
    premises at once would.
    """

    n: int
    lon_count: npt.NDArray[np.int64]
    lon_min: npt.NDArray[np.float64]
    lon_max: npt.NDArray[np.float64]
    south: int
    south_max: float
    north_min: float
    spread: npt.NDArray[np.float64]   #: per UTM zone: max |lon - central| * cos(lat)

    @classmethod
    def of(cls, lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64]) -> ZoneStats:
        """The statistics of some positions (WGS84)."""
        lon = np.asarray(lon, dtype=float)
        lat = np.asarray(lat, dtype=float)
        b = np.floor((lon + 180.0) / 6.0).astype(np.int64)
        count = np.bincount(b, minlength=_LON_BINS).astype(np.int64)
        lo = np.full(_LON_BINS, np.inf)
        hi = np.full(_LON_BINS, -np.inf)
        np.minimum.at(lo, b, lon)
        np.maximum.at(hi, b, lon)
        south = lat < 0
        cos = np.cos(np.radians(lat))
        spread = np.full(60, -np.inf)
        if lon.size:
            # the positions that can hold some zone's largest spread: a few hundred of a
            # million, so that 60 zones cost 60 passes over them, not over all
            can = _spread_candidates(lon, cos)
            lon_c, cos_c = lon[can], cos[can]
            for z in range(60):
                central = (z + 1) * 6 - 183
                spread[z] = float((np.abs(((lon_c - central + 180) % 360) - 180) * cos_c).max())
        return cls(n=int(lon.size), lon_count=count, lon_min=lo, lon_max=hi,
                   south=int(south.sum()),
                   south_max=float(lat[south].max()) if south.any() else -np.inf,
                   north_min=float(lat[~south].min()) if (~south).any() else np.inf,
                   spread=spread)

    def __add__(self, other: ZoneStats) -> ZoneStats:
        return ZoneStats(n=self.n + other.n, lon_count=self.lon_count + other.lon_count,
                         lon_min=np.minimum(self.lon_min, other.lon_min),
                         lon_max=np.maximum(self.lon_max, other.lon_max),
                         south=self.south + other.south,
                         south_max=max(self.south_max, other.south_max),
                         north_min=min(self.north_min, other.north_min),
                         spread=np.maximum(self.spread, other.spread))

    def _median_lon(self) -> float:
        """``np.median`` of all longitudes, from the bins (exactly)."""
        cum = np.cumsum(self.lon_count)
        ranks = (self.n // 2,) if self.n % 2 else (self.n // 2 - 1, self.n // 2)
        bins = [int(np.searchsorted(cum, r, side="right")) for r in ranks]
        if len(bins) == 1 or bins[0] == bins[1]:
            # both middle values, and their mean, lie in one bin: any value of it tells the zone
            return float(self.lon_min[bins[0]])
        return (float(self.lon_max[bins[0]]) + float(self.lon_min[bins[1]])) / 2

    def _median_lat_north(self) -> bool:
        """Is ``np.median`` of all latitudes >= 0?"""
        ranks = (self.n // 2,) if self.n % 2 else (self.n // 2 - 1, self.n // 2)
        if all(r >= self.south for r in ranks):
            return True
        if all(r < self.south for r in ranks):
            return False
        return (self.south_max + self.north_min) / 2 >= 0

    def plan(self) -> ZonePlan:
        """The working zone choice for all positions counted."""
        if self.n == 0:
            return ZonePlan(epsg=32631, single=True, home=None)
        epsg = utm_epsg(self._median_lon(), 0.0 if self._median_lat_north() else -1.0)
        if float(self.spread[epsg % 100 - 1]) <= _ONE_ZONE_DEG:
            return ZonePlan(epsg=epsg, single=True, home=epsg)
        used = np.flatnonzero(self.lon_count)
        numbers = np.unique(used % 60 + 1)
        home = epsg - epsg % 100 + int(numbers[0]) if len(numbers) == 1 else None
        return ZonePlan(epsg=epsg, single=False, home=home)


class SpanIndex:
    """The lit spans, sorted by span_id, projected and indexed once per working zone.

    Build it once and pass it to :func:`locate` for many queries (the API's
    serviceability lookups); a plain GeoDataFrame works too but is indexed anew.
    """

    def __init__(self, lit_spans: gpd.GeoDataFrame, *,
                 order: npt.NDArray[np.int64] | None = None,
                 rows: npt.NDArray[np.int64] | None = None) -> None:
        if order is None:
            order = np.argsort(lit_spans["span_id"].to_numpy().astype(str), kind="stable")
        #: the row of ``lit_spans`` of each span here (``order``, when the caller knows it:
        #: sorting a hundred thousand ids as text takes ~20 ms)
        self.order = np.asarray(order, dtype=np.int64)
        #: per span here, its row in the larger frame ``lit_spans`` was taken from (``rows``:
        #: that row of each row of ``lit_spans``, when the builder gives it): what lets the
        #: index of the next edit find its spans here by row (:meth:`adopt`)
        self.source_rows = None if rows is None else np.asarray(rows, np.int64)[self.order]
        self.span_ids = lit_spans["span_id"].to_numpy()[order]
        self.geoms = lit_spans.geometry.to_numpy()[order]
        self.crs = CRS(lit_spans.crs)
        self._zones: dict[int, ZoneIndex] = {}
        self._projected: dict[int, tuple[npt.NDArray[np.object_], npt.NDArray[np.float64]]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.span_ids)

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        del state["_lock"]  # a lock does not travel (Dask scatters the index to workers)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def in_zone(self, zone: int) -> ZoneIndex:
        """The spans projected to UTM ``zone`` (an EPSG code) and their indexes.

        Built once per zone; a thread asking while another builds it waits.
        """
        with self._lock:
            if zone not in self._zones:
                self._zones[zone] = ZoneIndex(self._project(zone)[0])
            return self._zones[zone]

    def adopt(self, other: SpanIndex, *, at: npt.NDArray[np.int64] | None = None) -> None:
        """Take from ``other`` (the index of the lit spans before an edit) the projections of
        the spans both hold with identical geometry: only the others are projected again.

        ``at``: the entry of ``other`` holding each span here (-1: none), when the caller
        knows it; otherwise the span ids are looked up."""
        if self.crs != other.crs or not len(self) or not len(other):
            return
        with other._lock:
            projected = dict(other._projected)
        if not projected:
            return
        if at is None:
            at = id_index(other.span_ids).get_indexer(id_index(self.span_ids))
        same = at >= 0
        same[same] = shapely.equals_identical(other.geoms[at[same]], self.geoms[same])
        todo = np.flatnonzero(~same)
        with self._lock:
            for zone, (geoms, bounds) in projected.items():
                if zone in self._projected:
                    continue
                g = np.empty(len(self), dtype=object)
                b = np.empty((len(self), 4))
                g[same], b[same] = geoms[at[same]], bounds[at[same]]
                if len(todo):
                    g[todo] = transform_geoms(self.geoms[todo], self.crs, CRS.from_epsg(zone))
                    b[todo] = shapely.bounds(g[todo])
                self._projected[zone] = (g, b)

    def built(self, zone: int) -> bool:
        """Whether the index of ``zone`` (:meth:`in_zone`) is already built."""
        return zone in self._zones

    def projected(self, zone: int) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.float64]]:
        """The spans projected to UTM ``zone`` and their bounds (n x 4), without the
        indexes of :meth:`in_zone` (a search near a few points needs only these)."""
        with self._lock:
            return self._project(zone)

    def _project(self, zone: int) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.float64]]:
        if zone not in self._projected:
            geoms = transform_geoms(self.geoms, self.crs, CRS.from_epsg(zone))
            self._projected[zone] = (geoms, shapely.bounds(geoms))
        return self._projected[zone]

    def warm(self) -> None:
        """Build the index of the spans' own working zone (see :func:`working_zones`).

        Premises in the same zone as their network (the usual case) then find
        it built; others build their own zones as usual.
        """
        if not len(self):
            return
        ll = lonlat(shapely.get_point(self.geoms, 0), self.crs)
        zones = np.unique(working_zones(ll[:, 0], ll[:, 1]))
        if len(zones) == 1:
            self.in_zone(int(zones[0]))


#: Longest piece of a span segment in the KD-tree of :class:`ZoneIndex`, meters: a piece's
#: midpoint is at most half of it from any point of the piece.
PIECE_M = 20.0
#: Nearest piece midpoints looked at per point before the exact fallback.
_K = 12
#: Slack (meters) for the KD-tree's bounds, far above the ~1e-9 m by which numpy's and
#: GEOS's point-segment distances differ.
_SLACK_M = 1e-3
#: Slack (meters) around the tie limit ``TIE_M``: a span this close to it goes to GEOS.
_TIE_SLACK_M = 1e-7


class SpanSegments:
    """The segments of some lines (in one CRS), in order: what numpy searches through.

    Segment ``k`` runs from ``seg_a[k]`` to ``seg_b[k]`` on line ``seg_span[k]``;
    the segments of line ``s`` are ``seg_first[s]`` to ``seg_first[s] + seg_count[s] - 1``.
    """

    def __init__(self, lines: npt.NDArray[np.object_]) -> None:
        self.spans = lines
        coords, owner = shapely.get_coordinates(lines, return_index=True)
        same = owner[1:] == owner[:-1]
        self.seg_a = np.ascontiguousarray(coords[:-1][same])
        self.seg_b = np.ascontiguousarray(coords[1:][same])
        self.seg_span = owner[:-1][same].astype(np.int64)
        self.seg_count = np.bincount(self.seg_span, minlength=len(lines)).astype(np.int64)
        self.seg_first = np.cumsum(self.seg_count) - self.seg_count


class ZoneIndex(SpanSegments):
    """Projected lit spans with two indexes for exact nearest searches.

    A KD-tree (scipy ``cKDTree``) over the midpoints of short pieces of every
    span segment finds candidate segments; their exact distances (numpy) give
    an upper bound of the least distance, and the K-th midpoint distance less
    half a piece a lower bound for every segment not looked at. When the
    bounds separate and one span alone lies at the least distance, it is the
    answer; otherwise (rare: far points, or several spans at one distance
    such as two spans meeting at a node) the shapely STRtree decides as
    before, so every answer equals that of ``STRtree.query_nearest`` with the
    lowest span_id winning ties.
    """

    def __init__(self, spans_w: npt.NDArray[np.object_]) -> None:
        super().__init__(spans_w)
        length = np.hypot(*(self.seg_b - self.seg_a).T)
        pieces = np.maximum(np.ceil(length / PIECE_M), 1).astype(np.int64)
        self.piece_seg = np.repeat(np.arange(len(length)), pieces)
        k = np.arange(len(self.piece_seg)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
        t = (k + 0.5) / pieces[self.piece_seg]
        mid = self.seg_a[self.piece_seg] + (self.seg_b - self.seg_a)[self.piece_seg] * t[:, None]
        self.half_piece_m = float((length / pieces).max() / 2) if len(length) else 0.0
        self.kd = cKDTree(mid) if len(mid) else None
        self._tree: shapely.STRtree | None = None

    @property
    def tree(self) -> shapely.STRtree:
        """The STRtree of the spans (built on first use: only the exact fallback needs it)."""
        if self._tree is None:
            # small nodes make nearest searches over short street spans ~35 % faster
            # than the default capacity of 10 (measured: benchmarks/RESULTS.md)
            self._tree = shapely.STRtree(self.spans, node_capacity=4)
        return self._tree

    def candidates(self, xy: npt.NDArray[np.float64], *, tie_within_m: float
                   ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """Winning span per point where the KD-tree settles it, and where it does.

        Settled: the bounds prove that no segment outside the K nearest pieces
        comes within ``_SLACK_M`` of the least distance; no span lies so close
        to the tie limit (``TIE_M``) that numpy and GEOS could disagree about
        it; and the tied spans (those within ``TIE_M``) are one span, or the
        point can be passed (ties go to the lowest span_id), or they all
        attach it at one point (two spans meeting at a node).
        """
        n = len(xy)
        best = np.full(n, -1, dtype=np.int64)
        if self.kd is None or n == 0:
            return best, np.zeros(n, dtype=bool)
        k = min(_K, self.kd.n)
        dk, ik = self.kd.query(xy, k=k)
        if k == 1:
            dk, ik = dk[:, None], ik[:, None]
        seg = self.piece_seg[ik]
        a = self.seg_a[seg]
        d = self.seg_b[seg] - a
        px = xy[:, 0, None] - a[..., 0]
        py = xy[:, 1, None] - a[..., 1]
        dd = d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1]
        t = np.clip((px * d[..., 0] + py * d[..., 1]) / np.where(dd > 0, dd, 1.0), 0.0, 1.0)
        ax, ay = t * d[..., 0], t * d[..., 1]
        dist = np.hypot(px - ax, py - ay)
        least = dist.min(axis=1)
        settled = (dk[:, -1] - self.half_piece_m > least + _SLACK_M) | (k == self.kd.n)
        gap = dist - least[:, None]
        tied = gap <= TIE_M - _TIE_SLACK_M
        settled &= ~((gap > TIE_M - _TIE_SLACK_M) & (gap <= TIE_M + _TIE_SLACK_M)).any(axis=1)
        span = self.seg_span[seg]
        big = np.iinfo(np.int64).max
        lo = np.where(tied, span, big).min(axis=1)
        hi = np.where(tied, span, -1).max(axis=1)
        ok = (lo == hi) | (least <= tie_within_m - _SLACK_M)
        # the rest is settled when the tied candidates attach it at one point: looked at
        # only where that decides (far points with spans tied)
        need = np.flatnonzero(settled & ~ok)
        if len(need):
            on = tied[need]
            rx = np.where(on, ax[need] - px[need], np.nan)
            ry = np.where(on, ay[need] - py[need], np.nan)
            ok[need] = ((np.nanmax(rx, axis=1) - np.nanmin(rx, axis=1) <= _TIE_SLACK_M)
                        & (np.nanmax(ry, axis=1) - np.nanmin(ry, axis=1) <= _TIE_SLACK_M))
        settled &= ok
        best[settled] = lo[settled]
        return best, settled


def zones_near(lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64],
               home: int | None) -> npt.NDArray[np.int64]:
    """Working zone per position: ``home`` where its scale error stays small, else the own zone.

    Locating single addresses with the zone the whole dataset used keeps their
    answers identical to the premises' answers.
    """
    if home is None:
        return working_zones(lon, lat)
    central = (home % 100) * 6 - 183
    spread = np.abs(((lon - central + 180) % 360) - 180) * np.cos(np.radians(lat))
    own = np.where(lat >= 0, 32600, 32700) + utm_zone_numbers(lon)
    return np.where(spread <= _ONE_ZONE_DEG, home, own).astype(np.int64)


def locate(
    points: gpd.GeoSeries,
    lit_spans: gpd.GeoDataFrame | SpanIndex,
    *,
    drop_m: float = DEFAULT_DROP_M,
    zones: npt.NDArray[np.int64] | None = None,
    points_lonlat: npt.NDArray[np.float64] | None = None,
    halo_m: float | None = None,
) -> pd.DataFrame:
    """Nearest lit span, attachment point and geodesic distance for each point.

    Parameters
    ----------
    points
        Point geometries (any CRS) to locate, e.g. premises or FCC locations.
    lit_spans
        The lit spans with a ``span_id`` column (any CRS), or a :class:`SpanIndex`.
    drop_m
        A point is passed when its distance is at most ``drop_m`` meters.
    zones
        EPSG code of the working CRS per point (default: :func:`working_zones`).
    points_lonlat
        The points' WGS84 lon/lat (n x 2) when the caller already has them.
    halo_m
        When given, only the spans within ``halo_m`` (at least the tie limit,
        just over ``drop_m``) of the points' bounding box are searched first, and
        points with none of them that near are searched against all spans: the
        answers stay the same, the work follows the points' extent (a Dask
        partition of premises).

    Returns
    -------
    pandas.DataFrame
        Indexed like ``points``: ``nearest_span_id``, ``distance_m`` (NaN when
        nothing is lit), ``passed``, ``served_span_id`` (None unless passed),
        ``attach_lon``, ``attach_lat`` and ``attach_frac``: where the
        attachment point lies along the span's geometry, as a fraction of its
        length from its first vertex, measured in the working CRS (NaN unless
        the point can be passed).
    """
    n = len(points)
    index = lit_spans if isinstance(lit_spans, SpanIndex) else SpanIndex(lit_spans)
    found = locate_arrays(points, index, drop_m=drop_m, zones=zones,
                          points_lonlat=points_lonlat, halo_m=halo_m)
    ids = np.full(n, None, dtype=object)
    has = found.nearest >= 0
    ids[has] = index.span_ids[found.nearest[has]]
    served = ids.copy()
    served[~found.passed] = None
    return pd.DataFrame(
        {
            "nearest_span_id": pd.Series(ids, dtype=object),
            "distance_m": found.distance_m,
            "passed": found.passed,
            "served_span_id": pd.Series(served, dtype=object),
            "attach_lon": found.attach_lonlat[:, 0],
            "attach_lat": found.attach_lonlat[:, 1],
            "attach_frac": found.frac,
        },
    ).set_axis(points.index)


@dataclass(frozen=True)
class Located:
    """What :func:`locate_arrays` finds for each point, as arrays.

    ``nearest`` is the position of the nearest lit span in the
    :class:`SpanIndex` (sorted by span_id; -1 when nothing is lit); the rest
    as the columns of :func:`locate`.
    """

    nearest: npt.NDArray[np.int64]
    distance_m: npt.NDArray[np.float64]
    passed: npt.NDArray[np.bool_]
    attach_lonlat: npt.NDArray[np.float64]
    frac: npt.NDArray[np.float64]


def locate_arrays(
    points: gpd.GeoSeries,
    index: SpanIndex,
    *,
    drop_m: float = DEFAULT_DROP_M,
    zones: npt.NDArray[np.int64] | None = None,
    points_lonlat: npt.NDArray[np.float64] | None = None,
    halo_m: float | None = None,
) -> Located:
    """:func:`locate` without the frame: span positions in ``index`` instead of ids."""
    n = len(points)
    nearest = np.full(n, -1, dtype=np.int64)
    attach = np.full((n, 2), np.nan)
    frac = np.full(n, np.nan)
    if n == 0 or len(index) == 0:
        return Located(nearest, np.full(n, np.nan), np.zeros(n, dtype=bool), attach, frac)
    pt_ll = lonlat(points.to_numpy(), CRS(points.crs)) if points_lonlat is None \
        else points_lonlat
    if zones is None:
        zones = working_zones(pt_ll[:, 0], pt_ll[:, 1])
    for zone in np.unique(zones):
        sel = np.flatnonzero(zones == zone)
        wcrs = CRS.from_epsg(int(zone))
        pts_w = transform_geoms(points.to_numpy()[sel], CRS(points.crs), wcrs)
        tie_within_m = drop_m * 1.01 + 1.0
        if halo_m is None:
            idx, xy, frac[sel] = _nearest_in_zone(pts_w, index.in_zone(int(zone)),
                                                  tie_within_m=tie_within_m)
        else:
            idx, xy, frac[sel] = _nearest_with_halo(pts_w, index, int(zone),
                                                    halo_m=max(halo_m, tie_within_m + 1.0),
                                                    tie_within_m=tie_within_m)
        nearest[sel] = idx
        attach[sel] = xy_lonlat(xy, wcrs)
    dist = geodesic_distance_m(pt_ll[:, 0], pt_ll[:, 1], attach[:, 0], attach[:, 1])
    return Located(nearest, dist, dist <= drop_m, attach, frac)


#: Points per task of the nearest search; chunks keep memory bounded and feed the threads.
_CHUNK = 65_536


def _nearest_in_zone(
    pts: npt.NDArray[np.object_], zone: ZoneIndex, *, tie_within_m: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Winning span, attachment point (working coords) and its fraction along the span.

    The points are sorted in Z-order (spatially close queries keep the tree walk
    cache-friendly, about 2x faster) and cut into contiguous chunks that run on
    a thread per core: shapely releases the GIL inside GEOS.
    """
    _numpy_is_geos()  # checked once, before the threads
    xy = np.asarray(shapely.get_coordinates(pts), dtype=float)
    sort = np.argsort(_morton(xy), kind="stable")
    q, xy = pts[sort], xy[sort]
    chunks = [(q[a:a + _CHUNK], xy[a:a + _CHUNK]) for a in range(0, len(q), _CHUNK)]
    workers = min(len(chunks), os.cpu_count() or 1)
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(
                lambda c: _nearest_chunk(c[0], c[1], zone, tie_within_m=tie_within_m), chunks))
    else:
        parts = [_nearest_chunk(q, xy, zone, tie_within_m=tie_within_m) for q, xy in chunks]
    idx = np.empty(len(q), dtype=np.int64)
    att = np.empty((len(q), 2))
    frac = np.empty(len(q))
    if parts:
        idx[sort] = np.concatenate([p[0] for p in parts])
        att[sort] = np.concatenate([p[1] for p in parts])
        frac[sort] = np.concatenate([p[2] for p in parts])
    return idx, att, frac


def _nearest_with_halo(
    pts: npt.NDArray[np.object_], index: SpanIndex, zone: int, *, halo_m: float,
    tie_within_m: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """:func:`_nearest_in_zone` over the spans near the points, then all spans for the rest.

    A span within ``halo_m`` of a point meets the points' bounding box grown
    by ``halo_m``; a point whose nearest span there lies within ``halo_m``
    therefore has it as its nearest span of all, with every tie (the tie
    limit is below ``halo_m``). The spans keep their order (span_id), so ties
    go the same way. Points with no span that near are searched again with a
    halo 8 times wider, then with a halo as wide as the farthest span found for
    them (which bounds each one's nearest span), then against all spans; the
    index of all spans (:meth:`SpanIndex.in_zone`) is built only when the spans
    to search are most of the network, or used when it is built already.
    """
    spans, b = index.projected(zone)
    xy_pts = np.asarray(shapely.get_coordinates(pts), dtype=float)
    idx = np.full(len(pts), -1, dtype=np.int64)
    att = np.full((len(pts), 2), np.nan)
    frac = np.full(len(pts), np.nan)
    rest = np.arange(len(pts))
    halos: list[float] = [halo_m, 8 * halo_m]
    while halos:
        halo = halos.pop(0)
        x0, y0 = xy_pts[rest].min(axis=0) - halo
        x1, y1 = xy_pts[rest].max(axis=0) + halo
        near = np.flatnonzero((b[:, 0] <= x1) & (b[:, 2] >= x0)
                              & (b[:, 1] <= y1) & (b[:, 3] >= y0))
        if len(near) > len(spans) // 2 and (index.built(zone) or not halos):
            break  # points spread over most of the network: its own index serves them best
        if not len(near):
            if not halos:
                halos.append(8 * halo)  # no span yet to bound the search: wider still
            continue
        sub, att[rest], frac[rest] = _nearest_in_zone(pts[rest], ZoneIndex(spans[near]),
                                                      tie_within_m=tie_within_m)
        idx[rest] = near[sub]
        gap = np.hypot(*(att[rest] - xy_pts[rest]).T)
        far = gap > halo
        if not halos and far.any():
            # the last halo: each point left has a span found at gap[p], so its nearest
            # span (and every tie of it) lies within max(gap) + the tie limit of it: one
            # more search over the spans that near the points' box settles them all,
            # usually over a part of the network rather than all of it
            halos.append(float(gap[far].max()) + tie_within_m + 1.0)
        rest = rest[far]
        if not len(rest):
            return idx, att, frac
    idx[rest], att[rest], frac[rest] = _nearest_in_zone(pts[rest], index.in_zone(zone),
                                                        tie_within_m=tie_within_m)
    return idx, att, frac


def _nearest_chunk(
    q: npt.NDArray[np.object_], xy: npt.NDArray[np.float64], zone: ZoneIndex, *,
    tie_within_m: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Winning span, attachment point and its fraction along the span, for one chunk.

    ``xy`` are the coordinates of the points ``q``. The KD-tree settles most
    points (:meth:`ZoneIndex.candidates`); the rest go through the STRtree
    (:func:`_nearest_exact`). The attachment point and its fraction are GEOS's
    (``shortest_line``, ``line_locate_point``), computed by
    :func:`nearest_on_spans` from the segments where numpy reproduces GEOS.
    """
    best, settled = zone.candidates(xy, tie_within_m=tie_within_m)
    rest = np.flatnonzero(~settled)
    if len(rest):
        best[rest] = _nearest_exact(q[rest], zone.tree, tie_within_m=tie_within_m)
    if _numpy_is_geos():
        att, frac = nearest_on_spans(zone, xy, best, frac_within_m=tie_within_m)
        return best, att, frac
    spans = zone.spans
    line = shapely.shortest_line(spans[best], q)
    attach = shapely.get_point(line, 0)
    att = np.asarray(shapely.get_coordinates(attach), dtype=float)
    # only points that can be passed need the fraction (optical loss along the span)
    near = np.flatnonzero(shapely.length(line) <= tie_within_m)
    frac = np.full(len(q), np.nan)
    frac[near] = shapely.line_locate_point(spans[best[near]], attach[near], normalized=True)
    return best, att, frac


FloatArray = npt.NDArray[np.float64]


def _point_segment_distance(px: FloatArray, py: FloatArray, ax: FloatArray, ay: FloatArray,
                            bx: FloatArray, by: FloatArray) -> FloatArray:
    """Distance from p to segment ab, operation for operation as GEOS's
    ``Distance::pointToSegment`` (so bit for bit the same double)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        dx, dy = bx - ax, by - ay
        len2 = dx * dx + dy * dy
        r = ((px - ax) * dx + (py - ay) * dy) / len2
        s = ((ay - py) * dx - (ax - px) * dy) / len2
        to_a = np.sqrt((px - ax) * (px - ax) + (py - ay) * (py - ay))
        to_b = np.sqrt((px - bx) * (px - bx) + (py - by) * (py - by))
        inner = np.abs(s) * np.sqrt(len2)
    out: FloatArray = np.where((ax == bx) & (ay == by) | (r <= 0.0), to_a,
                               np.where(r >= 1.0, to_b, inner))
    return out


def _projection_factor(px: FloatArray, py: FloatArray, ax: FloatArray, ay: FloatArray,
                       bx: FloatArray, by: FloatArray) -> FloatArray:
    """GEOS's ``LineSegment::projectionFactor`` of p on segment ab."""
    with np.errstate(divide="ignore", invalid="ignore"):
        dx, dy = bx - ax, by - ay
        r = ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)
    out: FloatArray = np.where((px == ax) & (py == ay), 0.0,
                               np.where((px == bx) & (py == by), 1.0, r))
    return out


def nearest_on_spans(zone: SpanSegments, xy: FloatArray, span: npt.NDArray[np.int64], *,
                     frac_within_m: float) -> tuple[FloatArray, FloatArray]:
    """Nearest point of span ``span[i]`` to ``xy[i]`` and its fraction along the span.

    Numpy replays what GEOS does, in its order of operations: ``shortest_line``
    (``DistanceOp``: the first segment at the least ``pointToSegment`` distance,
    then ``LineSegment::closestPoint`` on it) and ``line_locate_point``
    normalized (``LengthIndexOfPoint``: the measure along the first segment
    nearest to the attachment point, over the line's length summed segment by
    segment). The fraction is NaN where the attachment lies farther than
    ``frac_within_m`` from the point (it cannot be passed).
    """
    n = len(xy)
    px, py = xy[:, 0], xy[:, 1]
    first, count = zone.seg_first[span], zone.seg_count[span]
    sa, sb = zone.seg_a, zone.seg_b
    least = np.full(n, np.inf)
    seg = first.copy()
    rounds = int(count.max()) if n else 0
    for j in range(rounds):
        sel = np.flatnonzero(count > j) if j else np.arange(n)
        s = first[sel] + j
        d = _point_segment_distance(px[sel], py[sel], sa[s, 0], sa[s, 1], sb[s, 0], sb[s, 1])
        better = d < least[sel]
        least[sel[better]] = d[better]
        seg[sel[better]] = s[better]
    ax, ay, bx, by = sa[seg, 0], sa[seg, 1], sb[seg, 0], sb[seg, 1]
    r = _projection_factor(px, py, ax, ay, bx, by)
    to_a = np.sqrt((ax - px) * (ax - px) + (ay - py) * (ay - py))
    to_b = np.sqrt((bx - px) * (bx - px) + (by - py) * (by - py))
    inside = (r > 0) & (r < 1)
    att = np.empty((n, 2))
    att[:, 0] = np.where(inside, ax + r * (bx - ax), np.where(to_a < to_b, ax, bx))
    att[:, 1] = np.where(inside, ay + r * (by - ay), np.where(to_a < to_b, ay, by))
    # the length of the shortest line, from the attachment point to the point
    ex, ey = px - att[:, 0], py - att[:, 1]
    near = np.flatnonzero(np.sqrt(ex * ex + ey * ey) <= frac_within_m)
    frac = np.full(n, np.nan)
    if not len(near):
        return att, frac
    qx, qy = att[near, 0], att[near, 1]
    first, count = first[near], count[near]
    least = np.full(len(near), np.inf)
    measure = np.full(len(near), -1.0)
    start = np.zeros(len(near))
    for j in range(int(count.max())):
        sel = np.flatnonzero(count > j) if j else np.arange(len(near))
        s = first[sel] + j
        ax, ay, bx, by = sa[s, 0], sa[s, 1], sb[s, 0], sb[s, 1]
        d = _point_segment_distance(qx[sel], qy[sel], ax, ay, bx, by)
        length = np.sqrt((ax - bx) * (ax - bx) + (ay - by) * (ay - by))
        r = _projection_factor(qx[sel], qy[sel], ax, ay, bx, by)
        at = start[sel]
        m = np.where(r <= 0.0, at, np.where(r <= 1.0, at + r * length, at + length))
        better = (d < least[sel]) & (m > -1.0)
        least[sel[better]] = d[better]
        measure[sel[better]] = m[better]
        start[sel] = at + length
    frac[near] = measure / start
    return att, frac


_NUMPY_IS_GEOS: list[bool] = []


def _numpy_is_geos() -> bool:
    """Does :func:`nearest_on_spans` give GEOS's doubles on this machine?

    Checked once per process on random lines and points (points on the
    lines, at their vertices and far off included): a build of GEOS with fused
    multiply-adds would round differently, and then GEOS itself is used.
    """
    if not _NUMPY_IS_GEOS:
        rng = np.random.default_rng(17)
        n = 10_000
        coords = rng.uniform(0, 1000, (n, 4, 2)).round(2)    # lines of three segments
        lines = np.asarray(shapely.linestrings(coords), dtype=object)
        xy = rng.uniform(-200, 1200, (n, 2))
        xy[1::8] = coords[1::8, -1]                          # at a line's last vertex
        xy[5::8] = coords[5::8, 0]                           # at its first vertex
        # on the bisector at a line's second vertex: (nearly) as near one segment as the
        # next, where the least distance's last bit picks the attachment point
        bent = np.flatnonzero(np.arange(n) % 4 > 1)
        coords = coords.reshape(-1, 2)
        v = 4 * bent + 1
        ua, ub = coords[v - 1] - coords[v], coords[v + 1] - coords[v]
        ua /= np.hypot(*ua.T)[:, None]
        ub /= np.hypot(*ub.T)[:, None]
        xy[bent] = coords[v] + (ua + ub) * rng.uniform(0.1, 5, (len(bent), 1))
        pts = shapely.points(xy)
        att, frac = nearest_on_spans(SpanSegments(lines), xy, np.arange(n), frac_within_m=np.inf)
        line = shapely.shortest_line(lines, pts)
        attach = shapely.get_point(line, 0)
        want = shapely.get_coordinates(attach)
        want_frac = shapely.line_locate_point(lines, attach, normalized=True)
        _NUMPY_IS_GEOS.append(bool(np.array_equal(att, want)
                                   and np.array_equal(frac, want_frac)))
    return _NUMPY_IS_GEOS[0]


def _nearest_exact(q: npt.NDArray[np.object_], tree: shapely.STRtree, *,
                   tie_within_m: float) -> npt.NDArray[np.int64]:
    """Winning span of each point by the STRtree: its nearest, ties to the lowest index.

    Ties are resolved for points nearer than ``tie_within_m`` (those that can be
    passed); farther points keep an arbitrary nearest span, which changes
    neither their distance nor any output.
    """
    (qi, si), dist = tree.query_nearest(q, return_distance=True, all_matches=False)
    best = np.empty(len(q), dtype=np.int64)
    best[qi] = si
    least = np.full(len(q), np.inf)
    least[qi] = dist
    near = np.flatnonzero(least <= tie_within_m)
    # all spans within TIE_M of the least distance tie; the lowest index (span_id order) wins
    qi2, si2 = tree.query(q[near], predicate="dwithin", distance=least[near] + TIE_M)
    tied = np.full(len(near), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(tied, qi2, si2)
    # rounding can keep the nearest out of the dwithin test: then query_nearest's pick stays
    found = tied != np.iinfo(np.int64).max
    best[near[found]] = tied[found]
    return best


def _morton(xy: npt.NDArray[np.float64]) -> npt.NDArray[np.uint64]:
    """Z-order key of 2-D coordinates (16 bits per axis)."""
    if len(xy) == 0:
        return np.zeros(0, dtype=np.uint64)
    lo = xy.min(axis=0)
    span = np.maximum(xy.max(axis=0) - lo, 1e-9)
    q = ((xy - lo) / span * 65535).astype(np.uint64)
    key = np.zeros(len(xy), dtype=np.uint64)
    for bit in range(16):
        key |= ((q[:, 0] >> np.uint64(bit)) & np.uint64(1)) << np.uint64(2 * bit)
        key |= ((q[:, 1] >> np.uint64(bit)) & np.uint64(1)) << np.uint64(2 * bit + 1)
    return key
