"""The km KPIs and utilization kept span by span, for a live analysis.

:func:`netgis.engine.kpis.line_kpis` projects and unions every in-service span
(seconds at 100 k spans). :class:`LineTotals` gives the same numbers after a
change of spans by what the change touches:

- ``cable_km``, ``fiber_km`` and utilization are sums over the in-service spans,
  taken again each time (vectorized, milliseconds); each span's length inside
  each area is kept, computed once per span geometry.
- ``route_km`` is the length of the union of the in-service lines, where a
  segment shared exactly by several spans counts once. Spans that share a
  stretch of line (their interiors meet in a line) are kept in *overlap
  groups*; a span in no group adds its own length, and each group adds the
  length of the union of its in-service members, computed again only when one
  of them changes. Spans of different groups meet at most in points, so the
  union of all lines is the sum over groups.

Lengths are the same geodesic lengths as :func:`~netgis.engine.kpis.line_kpis`
measures; sums may be taken in another order, so they agree to rounding
(far below 1e-9 relative).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from netgis.engine.graph import id_index
from netgis.engine.kpis import AreaIndex, LineKpis, _home_zone, _lengths_km
from netgis.geodesy import geodesic_lengths_m, transform_geoms
from netgis.schema import IN_SERVICE

FloatArray = npt.NDArray[np.float64]


@dataclass
class _Rows:
    """The kept per-span values laid out on one order of the span rows."""

    ids: npt.NDArray[np.object_]
    at: dict[str, int]                       #: row of each span id
    grouped: npt.NDArray[np.bool_]           #: per row: in an overlap group
    area_pos: list[npt.NDArray[np.int64]]    #: per area: rows of the spans meeting it, sorted
    area_inside: list[FloatArray]            #: per area: their lengths inside it


def _utilization(count: FloatArray, used: FloatArray) -> float | None:
    """:func:`~netgis.engine.kpis.utilization_pct` of spans given by their two columns."""
    ok = ~np.isnan(count) & ~np.isnan(used) & (np.nan_to_num(count) > 0)
    total = float(count[ok].sum())
    return None if total == 0 else 100.0 * float(used[ok].sum()) / total

#: DE-9IM pattern of two lines whose interiors share a stretch of line.
_SHARE_LINE = "1********"


class LineTotals:
    """The :func:`~netgis.engine.kpis.line_kpis` answer of some spans, kept current.

    Parameters
    ----------
    spans
        The spans layer.
    lengths_m
        The geodesic length of each span row.
    areas
        The areas (their polygons in their own UTM zones).
    home_zone
        As for :func:`~netgis.engine.kpis.line_kpis`.
    """

    def __init__(self, spans: gpd.GeoDataFrame, lengths_m: FloatArray, areas: AreaIndex,
                 home_zone: int | None) -> None:
        self.areas = areas
        self.crs = CRS(spans.crs)
        ids = spans["span_id"].to_numpy(dtype=object)
        self.geom: dict[str, shapely.Geometry] = dict(zip(ids.tolist(),
                                                          spans.geometry.to_numpy().tolist(),
                                                          strict=True))
        in_service = spans[(spans["status"] == IN_SERVICE).to_numpy()]
        self.home = home_zone or _home_zone(in_service)
        #: per area: span id -> its geodesic length inside the area (spans meeting it)
        self.inside: list[dict[str, float]] = [{} for _ in range(len(areas))]
        self._clip(ids, spans.geometry.to_numpy(), np.asarray(lengths_m, dtype=float))
        self.group_of: dict[str, int] = {}
        self.members: dict[int, set[str]] = {}
        self._next_group = 0
        self._group_km: dict[int, tuple[float, list[float]]] = {}
        self._area_boxes: shapely.STRtree | None = None
        self._rows: _Rows | None = None
        self._dirty = True
        self._group(ids.tolist())
        in_service_ids = set(in_service["span_id"].tolist())
        for gid in self.members:
            self._group_lengths(gid, in_service_ids)

    # ------------------------------------------------------------ building

    def _clip(self, ids: npt.NDArray[np.object_], geoms: npt.NDArray[np.object_],
              lengths_m: FloatArray) -> None:
        """Each span's length inside each area it meets (as ``line_kpis`` clips them)."""
        for i in range(len(self.areas)):
            self._clip_area(i, ids, geoms, lengths_m)

    def _clip_area(self, i: int, ids: npt.NDArray[np.object_], geoms: npt.NDArray[np.object_],
                   lengths_m: FloatArray) -> None:
        if not len(ids):
            return
        zone = CRS.from_epsg(int(self.areas.zones[i]))
        poly = self.areas.polys[i]
        lines = transform_geoms(geoms, self.crs, zone)
        hit = np.flatnonzero(shapely.intersects(lines, poly))
        inside = lengths_m[hit].copy()
        crossing = ~shapely.covers(poly, lines[hit])
        if crossing.any():
            inside[crossing] = geodesic_lengths_m(
                shapely.intersection(lines[hit[crossing]], poly), crs=zone)
        kept = self.inside[i]
        for k, m in zip(ids[hit].tolist(), inside.tolist(), strict=True):
            kept[k] = m

    def _group(self, ids: list[str]) -> None:
        """Put ``ids`` (and the spans sharing a stretch of line with them) in overlap groups."""
        if not ids:
            return
        every = list(self.geom)
        where = {k: n for n, k in enumerate(every)}
        geoms = np.asarray([self.geom[k] for k in every], dtype=object)
        tree = shapely.STRtree(geoms)
        ask = np.asarray([where[k] for k in ids if k in where], dtype=np.int64)
        if not len(ask):
            return
        src, dst = tree.query(geoms[ask], predicate="intersects")
        src = ask[src]
        other = src != dst
        src, dst = src[other], dst[other]
        share = shapely.relate_pattern(geoms[src], geoms[dst], _SHARE_LINE)
        # a line that runs over itself counts its shared stretch once as well
        alone = ask[~shapely.is_simple(geoms[ask])]
        nodes = np.unique(np.concatenate([src[share], dst[share], alone]))
        if not len(nodes):
            return
        # the groups the found spans were in before join the new ones
        for k in [every[n] for n in nodes.tolist()]:
            old = self.group_of.get(k)
            if old is not None:
                nodes = np.union1d(nodes, [where[m] for m in self.members[old] if m in where])
        local = {int(n): j for j, n in enumerate(nodes.tolist())}
        pairs = [(local[int(a)], local[int(b)]) for a, b in
                 zip(src[share].tolist(), dst[share].tolist(), strict=True)]
        # pairs inside old groups, so that a group only splits where its links are gone
        old_groups = {self.group_of[every[n]] for n in nodes.tolist() if every[n] in self.group_of}
        for gid in old_groups:
            inner = [where[m] for m in self.members.pop(gid) if m in where]
            self._group_km.pop(gid, None)
            if len(inner) > 1:
                g = geoms[inner]
                a, b = shapely.STRtree(g).query(g, predicate="intersects")
                keep = a != b
                a, b = a[keep], b[keep]
                ok = shapely.relate_pattern(g[a], g[b], _SHARE_LINE)
                pairs += [(local[inner[x]], local[inner[y]]) for x, y in
                          zip(a[ok].tolist(), b[ok].tolist(), strict=True)]
        for n in nodes.tolist():
            self.group_of.pop(every[n], None)
        size = len(nodes)
        rows = np.asarray([p[0] for p in pairs] + list(range(size)), dtype=np.int64)
        cols = np.asarray([p[1] for p in pairs] + list(range(size)), dtype=np.int64)
        graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(size, size))
        _, label = connected_components(graph, directed=False)
        is_alone = set(alone.tolist())
        for lab in np.unique(label).tolist():
            part = nodes[label == lab].tolist()
            if len(part) == 1 and part[0] not in is_alone:
                continue
            gid = self._next_group
            self._next_group += 1
            self.members[gid] = {every[n] for n in part}
            for n in part:
                self.group_of[every[n]] = gid

    def _areas_near(self, geom: shapely.Geometry) -> list[int]:
        """The areas whose box (in the spans' CRS, with a margin) meets that of ``geom``."""
        if self._area_boxes is None:
            boxes = transform_geoms(self.areas.areas.geometry.to_numpy(),
                                    CRS(self.areas.areas.crs), self.crs) \
                if len(self.areas) else np.empty(0, dtype=object)
            # each area's box grown by 5 % of its size: an edge straight in the area's UTM
            # zone bows far less than that away from its vertices' box in another CRS
            b = shapely.bounds(boxes).reshape(-1, 4)
            grow = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])[:, None] * 0.05
            self._area_boxes = shapely.STRtree(shapely.box(b[:, 0] - grow[:, 0],
                                                           b[:, 1] - grow[:, 0],
                                                           b[:, 2] + grow[:, 0],
                                                           b[:, 3] + grow[:, 0]))
        if not len(self.areas):
            return []
        x0, y0, x1, y1 = shapely.bounds(geom)
        pad = max(x1 - x0, y1 - y0, 1.0) * 0.01 + 1e-6
        box = shapely.box(x0 - pad, y0 - pad, x1 + pad, y1 + pad)
        return sorted(int(i) for i in self._area_boxes.query(box, predicate="intersects"))

    # ------------------------------------------------------------- changes

    def update(self, spans: gpd.GeoDataFrame, lengths_m: FloatArray,
               changed: Iterable[str]) -> None:
        """Take the spans ``changed`` (written or deleted since) from ``spans`` as they are now."""
        changed = set(changed)
        if not changed:
            return
        ids = spans["span_id"].to_numpy(dtype=object)
        index = id_index(ids)
        at = index.get_indexer(id_index(sorted(changed)))
        dirty_groups = {self.group_of[k] for k in changed if k in self.group_of}
        moved: list[str] = []
        for k, pos in zip(sorted(changed), at.tolist(), strict=True):
            old = self.geom.get(k)
            new = spans.geometry.iloc[pos] if pos >= 0 else None
            if old is not None and new is not None and shapely.equals_identical(old, new):
                continue
            moved.append(k)
            for kept in self.inside:
                kept.pop(k, None)
            if new is None:
                self.geom.pop(k, None)
            else:
                self.geom[k] = new
        if moved:
            # the rows of per-span values (_rows_of) change only with lines: a change of
            # status, ducts or fibers keeps them
            self._dirty = True
            there = [k for k in moved if k in self.geom]
            rows = index.get_indexer(id_index(there))
            self._clip(np.asarray(there, dtype=object), spans.geometry.to_numpy()[rows],
                       np.asarray(lengths_m, dtype=float)[rows])
            gone = [k for k in moved if k not in self.geom]
            for k in gone:
                gid = self.group_of.pop(k, None)
                if gid is not None:
                    self.members[gid].discard(k)
                    dirty_groups.add(gid)
            regroup = set(there)
            for gid in dirty_groups:
                regroup |= self.members.get(gid, set())
            self._group(sorted(regroup))
        for gid in dirty_groups:
            self._group_km.pop(gid, None)
        for k in changed:
            gid = self.group_of.get(k)
            if gid is not None:
                self._group_km.pop(gid, None)

    # -------------------------------------------------------------- answer

    def kpis(self, spans: gpd.GeoDataFrame, lengths_m: FloatArray) -> LineKpis:
        """The :func:`~netgis.engine.kpis.line_kpis` answer of ``spans`` as they are now."""
        ids = spans["span_id"].to_numpy(dtype=object)
        rows = self._rows_of(ids)
        is_in = (spans["status"] == IN_SERVICE).to_numpy()
        lengths_all = np.asarray(lengths_m, dtype=float)
        count = spans["fiber_count"].to_numpy(dtype=float, na_value=np.nan)
        used = spans["fibers_used"].to_numpy(dtype=float, na_value=np.nan)
        lone = is_in & ~rows.grouped
        # kept group lengths are taken as they are (a set of members per group otherwise)
        groups = {gid: self._group_km[gid] if gid in self._group_km else self._group_lengths(
            gid, {k for k in self.members[gid] if k in rows.at and is_in[rows.at[k]]})
            for gid in self.members}
        route_m = (float(lengths_all[lone].sum()) + sum(v[0] for v in groups.values())) \
            if self.home else 0.0
        network: dict[str, object] = dict(_lengths_km(lengths_all[is_in], count[is_in], route_m))
        network["utilization_pct"] = _utilization(count[is_in], used[is_in])
        per_area: list[dict[str, object]] = []
        for i in range(len(self.inside)):
            pos, inside = rows.area_pos[i], rows.area_inside[i]
            keep = is_in[pos]
            hit, cable_m = pos[keep], inside[keep]
            route_in = float(cable_m[~rows.grouped[hit]].sum()) + sum(v[1][i]
                                                                      for v in groups.values())
            row: dict[str, object] = dict(_lengths_km(cable_m, count[hit], route_in))
            row["utilization_pct"] = _utilization(count[hit], used[hit])
            per_area.append(row)
        return network, per_area

    def _rows_of(self, ids: npt.NDArray[np.object_]) -> _Rows:
        """Where the kept per-span values sit in the span rows ``ids`` (kept while the rows and
        the values stay)."""
        kept = self._rows
        if kept is not None and not self._dirty and len(kept.ids) == len(ids) \
                and bool((kept.ids == ids).all()):
            return kept
        at = {k: n for n, k in enumerate(ids.tolist())}
        index = id_index(ids)  # one hash table for every lookup below
        grouped = np.zeros(len(ids), dtype=bool)
        pos = index.get_indexer(id_index(list(self.group_of)))
        grouped[pos[pos >= 0]] = True
        area_pos, area_inside = [], []
        for kept_area in self.inside:
            keys = np.fromiter(kept_area.keys(), dtype=object, count=len(kept_area))
            meters = np.fromiter(kept_area.values(), dtype=float, count=len(kept_area))
            pos = index.get_indexer(id_index(keys))
            ok = np.flatnonzero(pos >= 0)
            order = ok[np.argsort(pos[ok], kind="stable")]  # in span row order
            area_pos.append(pos[order].astype(np.int64))
            area_inside.append(meters[order])
        self._rows = _Rows(ids, at, grouped, area_pos, area_inside)
        self._dirty = False
        return self._rows

    def _group_lengths(self, gid: int, in_service: set[str] | dict[str, bool]
                       ) -> tuple[float, list[float]]:
        """Length of the union of a group's in-service lines: in all and inside each area."""
        if gid in self._group_km:
            return self._group_km[gid]
        lines = [self.geom[k] for k in sorted(self.members[gid]) if k in in_service]
        out: tuple[float, list[float]]
        inside = [0.0] * len(self.areas)
        if not lines or not self.home:
            out = (0.0, inside)
        else:
            geoms = np.asarray(lines, dtype=object)
            unions: dict[int, shapely.Geometry] = {}

            def union_in(epsg: int) -> shapely.Geometry:
                if epsg not in unions:
                    unions[epsg] = shapely.union_all(transform_geoms(geoms, self.crs,
                                                                     CRS.from_epsg(epsg)))
                return unions[epsg]

            home = union_in(int(self.home))
            total = float(geodesic_lengths_m(shapely.get_parts(home),
                                             crs=CRS.from_epsg(int(self.home))).sum())
            for i in self._areas_near(shapely.union_all(geoms)):
                epsg = int(self.areas.zones[i])
                u = union_in(epsg)
                poly = self.areas.polys[i]
                if not shapely.intersects(u, poly):
                    continue
                az = CRS.from_epsg(epsg)
                parts = shapely.get_parts(u)
                covered = shapely.covers(poly, parts)
                part_in = np.where(covered, geodesic_lengths_m(parts, crs=az), 0.0)
                cross = ~covered & shapely.intersects(parts, poly)
                if cross.any():
                    part_in[cross] = geodesic_lengths_m(
                        shapely.intersection(parts[cross], poly), crs=az)
                inside[i] = float(part_in.sum())
            out = (total, inside)
        self._group_km[gid] = out
        return out
