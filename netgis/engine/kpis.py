"""Coverage KPIs of docs/spec.md §2.9, network-wide and per area.

``premises_*`` count records; ``units_*`` and every ``*_pct`` weigh premises
by units. Zero denominators give ``None``. Lengths are WGS84 geodesic; area
clipping happens in the area's UTM zone with the polygon reprojected vertex
by vertex.

Examples
--------
>>> import pandas as pd
>>> prem = pd.DataFrame({"units": [2, 1], "passed": [True, False], "connected": [True, True],
...     "span_protected": [True, False], "node_protected": [True, False],
...     "duct_protected": [False, False], "in_budget": [True, False]})
>>> k = premise_kpis(prem)
>>> k["coverage_pct"], k["take_rate_pct"], k["duct_protected_pct"]
(66.66666666666667, 100.0, 0.0)
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, TypedDict, cast

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import CRS

from netgis.geodesy import (
    WGS84,
    PointsCover,
    geodesic_lengths_m,
    transform_geoms,
    transformer,
    utm_epsg,
)
from netgis.schema import AREA_KPIS, IN_SERVICE, NETWORK_KPIS


class ScopeKpis(TypedDict):
    """The KPIs of :data:`netgis.schema.AREA_KPIS`: those of the network and of each area.

    One ``int`` per ``"int"`` KPI of :data:`netgis.schema.KPI_FIELDS`, ``float | None``
    per ``"float"`` one (tests/test_result_contract.py holds the two lists together).
    """

    premises_total: int
    units_total: int
    premises_passed: int
    units_passed: int
    coverage_pct: float | None
    units_connected: int
    take_rate_pct: float | None
    span_protected_pct: float | None
    node_protected_pct: float | None
    duct_protected_pct: float | None
    cable_km: float
    route_km: float
    fiber_km: float
    utilization_pct: float | None
    units_in_budget: int
    budget_coverage_pct: float | None


class NetworkKpis(ScopeKpis):
    """``kpis.json["network"]``: every KPI of :data:`netgis.schema.NETWORK_KPIS`, the
    network-only spof counts with the others."""

    spof_spans: int
    spof_nodes: int


class AreaKpis(ScopeKpis):
    """One entry of ``kpis.json["areas"]``: the area and its KPIs (no spof counts)."""

    area_id: str
    name: str | None


class Kpis(TypedDict):
    """The ``kpis.json`` object."""

    network: NetworkKpis
    areas: list[AreaKpis]


def _pct(num: float, den: float) -> float | None:
    return None if den == 0 else 100.0 * float(num) / float(den)


_PREMISE_INPUTS = ("units", "passed", "connected", "span_protected", "node_protected",
                   "duct_protected", "in_budget")
#: The integer sums the premise KPIs follow from; sums of chunks of premises add up.
PREMISE_SUMS = ("premises_total", "units_total", "premises_passed", "units_passed",
                "units_connected", "units_span_protected", "units_node_protected",
                "units_duct_protected", "units_in_budget")


def premise_sums(premises: pd.DataFrame | Mapping[str, npt.ArrayLike]) -> npt.NDArray[np.int64]:
    """The :data:`PREMISE_SUMS` of some premises (a frame or a mapping of columns).

    Examples
    --------
    >>> prem = {"units": [2, 1], "passed": [True, False], "connected": [True, True],
    ...     "span_protected": [True, False], "node_protected": [False, False],
    ...     "duct_protected": [False, False], "in_budget": [True, False]}
    >>> premise_sums(prem).tolist()
    [2, 3, 1, 2, 2, 2, 0, 0, 2]
    """
    units = np.asarray(premises["units"], dtype=np.int64)
    passed = np.asarray(premises["passed"], dtype=bool)
    flags = [np.asarray(premises[c], dtype=bool) for c in _PREMISE_INPUTS[2:]]
    return np.asarray([len(units), int(units.sum()), int(passed.sum()), int(units[passed].sum()),
                       *(int(units[passed & f].sum()) for f in flags)], dtype=np.int64)


def premise_kpis_from_sums(sums: npt.ArrayLike) -> dict[str, Any]:
    """The premise KPIs from :func:`premise_sums` (of all premises in scope, added up)."""
    v = dict(zip(PREMISE_SUMS, (int(x) for x in np.asarray(sums).tolist()), strict=True))
    units_total, units_passed = v["units_total"], v["units_passed"]
    out: dict[str, Any] = {
        "premises_total": v["premises_total"],
        "units_total": units_total,
        "premises_passed": v["premises_passed"],
        "units_passed": units_passed,
        "coverage_pct": _pct(units_passed, units_total),
        "units_connected": v["units_connected"],
        "take_rate_pct": _pct(v["units_connected"], units_passed),
    }
    for flag in ("span_protected", "node_protected", "duct_protected"):
        out[f"{flag}_pct"] = _pct(v[f"units_{flag}"], units_passed)
    out["units_in_budget"] = v["units_in_budget"]
    out["budget_coverage_pct"] = _pct(v["units_in_budget"], units_total)
    return out


def premise_kpis(premises: pd.DataFrame | Mapping[str, npt.ArrayLike]) -> dict[str, Any]:
    """Premise KPIs from units, passed, connected, the three protection flags and in_budget.

    ``premises`` is a frame or a mapping of column name to array.
    """
    return premise_kpis_from_sums(premise_sums(premises))


def utilization_pct(spans: pd.DataFrame) -> float | None:
    """100 * sum fibers_used / sum fiber_count over spans with fiber_count > 0 and fibers_used."""
    count = spans["fiber_count"].to_numpy(dtype=float, na_value=np.nan)
    used = spans["fibers_used"].to_numpy(dtype=float, na_value=np.nan)
    ok = ~np.isnan(count) & ~np.isnan(used) & (np.nan_to_num(count) > 0)
    return _pct(float(used[ok].sum()), float(count[ok].sum()))


def _lengths_km(lengths_m: npt.NDArray[np.float64], fibers: npt.NDArray[np.float64],
                route_m: float) -> dict[str, float]:
    has = ~np.isnan(fibers)
    return {
        "cable_km": float(lengths_m.sum()) / 1000.0,
        "route_km": route_m / 1000.0,
        "fiber_km": float((lengths_m[has] * fibers[has]).sum()) / 1000.0,
    }


class _LineZone:
    """In-service lines and their union, projected once to one UTM zone.

    The union of all in-service lines is computed once per zone: its pieces
    give ``route_km`` for the network and, clipped, for every area (exactly
    shared segments count once; no snapping).
    """

    def __init__(self, epsg: int, in_service: gpd.GeoDataFrame) -> None:
        self.crs = CRS.from_epsg(epsg)
        self.lines = transform_geoms(in_service.geometry.to_numpy(), CRS(in_service.crs),
                                     self.crs)
        self.line_tree = shapely.STRtree(self.lines)
        union = shapely.union_all(self.lines) if len(self.lines) else None
        self.pieces = np.asarray(shapely.get_parts(union), dtype=object) \
            if union is not None else np.empty(0, dtype=object)
        self.piece_tree = shapely.STRtree(self.pieces)
        self.piece_lengths_m = geodesic_lengths_m(self.pieces, crs=self.crs)

    def clip(self, tree: shapely.STRtree, geoms: npt.NDArray[np.object_],
             whole_m: npt.NDArray[np.float64], poly: shapely.Geometry
             ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Indices of ``geoms`` meeting ``poly`` and their geodesic length inside it.

        Only geometries that cross the boundary are clipped; the rest keep
        their whole length.
        """
        hit = np.sort(tree.query(poly, predicate="intersects"))
        inside_m = whole_m[hit].copy()
        crossing = ~shapely.covers(poly, geoms[hit])
        if crossing.any():
            clipped = shapely.intersection(geoms[hit[crossing]], poly)
            inside_m[crossing] = geodesic_lengths_m(clipped, crs=self.crs)
        return hit, inside_m


class AreaIndex:
    """The areas, each reprojected vertex by vertex to the UTM zone of its centroid.

    Premises are rolled up per area chunk by chunk (:meth:`premise_sums`); the
    sums of the chunks add up to those of all premises.
    """

    def __init__(self, areas: gpd.GeoDataFrame | None) -> None:
        self.areas = areas if areas is not None else gpd.GeoDataFrame(geometry=[])
        n = len(self.areas)
        self.zones = np.zeros(n, dtype=np.int64)
        self.polys = np.empty(n, dtype=object)
        if not n:
            return
        area_crs = CRS(self.areas.crs)
        cxy = shapely.get_coordinates(shapely.centroid(
            transform_geoms(self.areas.geometry.to_numpy(), area_crs, WGS84)))
        self.zones = np.asarray([utm_epsg(float(x), float(y)) for x, y in cxy], dtype=np.int64)
        for zone in np.unique(self.zones):
            sel = np.flatnonzero(self.zones == zone)
            self.polys[sel] = transform_geoms(self.areas.geometry.to_numpy()[sel], area_crs,
                                              CRS.from_epsg(int(zone)))
        shapely.prepare(self.polys)

    def __len__(self) -> int:
        return len(self.areas)

    def premise_sums(self, premises: gpd.GeoDataFrame) -> npt.NDArray[np.int64]:
        """:func:`premise_sums` of the premises each area covers (one row per area)."""
        out = np.zeros((len(self), len(PREMISE_SUMS)), dtype=np.int64)
        if not len(self) or not len(premises):
            return out
        columns = {c: premises[c].to_numpy() for c in _PREMISE_INPUTS}
        xy = np.asarray(shapely.get_coordinates(premises.geometry.to_numpy()), dtype=float)
        for zone in np.unique(self.zones):
            # the points' coordinates transformed as transform_geoms would: no geometry is built
            x, y = xy[:, 0], xy[:, 1]
            if CRS(premises.crs) != CRS.from_epsg(int(zone)):
                x, y = transformer(CRS(premises.crs), CRS.from_epsg(int(zone))).transform(x, y)
            covers = PointsCover(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
            for i in np.flatnonzero(self.zones == zone):
                inside = covers.covered(self.polys[i])
                out[i] = premise_sums({c: v[inside] for c, v in columns.items()})
        return out


def compute_kpis(
    premises: gpd.GeoDataFrame,
    spans: gpd.GeoDataFrame,
    areas: gpd.GeoDataFrame,
    *,
    spof_spans: int,
    spof_nodes: int,
    span_lengths_m: npt.ArrayLike | None = None,
    home_zone: int | None = None,
) -> Kpis:
    """The ``kpis.json`` object: ``{"network": {...}, "areas": [...]}``.

    ``premises`` carries the analysis columns (passed, protection flags) and
    ``units``/``connected``; ``spans`` is the whole spans layer.
    ``span_lengths_m`` (geodesic, one per row of ``spans``) and ``home_zone``
    (EPSG code of the data's UTM zone) are computed when not given.
    """
    index = AreaIndex(areas)
    lines = line_kpis(spans, index, span_lengths_m=span_lengths_m, home_zone=home_zone)
    return assemble_kpis(premise_sums(premises), index.premise_sums(premises), lines, index,
                         spof_spans=spof_spans, spof_nodes=spof_nodes)


#: The km KPIs and utilization of the network and of each area (:func:`line_kpis`).
LineKpis = tuple[dict[str, Any], list[dict[str, Any]]]


class LineZones:
    """The in-service spans projected and unioned per UTM zone (:class:`_LineZone`).

    Each zone is built once, on first use; the lock lets a background thread
    build the zones the areas need (:meth:`warm`, GEOS works without the GIL)
    while the premises are located, and :func:`line_kpis` then finds them done.
    """

    def __init__(self, spans: gpd.GeoDataFrame) -> None:
        self.is_in = (spans["status"] == IN_SERVICE).to_numpy()
        self.in_service = spans[self.is_in]
        self._zones: dict[int, _LineZone] = {}
        self._lock = threading.Lock()

    def zone(self, epsg: int) -> _LineZone:
        """The lines in UTM zone ``epsg`` (an EPSG code), with their union."""
        with self._lock:
            if epsg not in self._zones:
                self._zones[epsg] = _LineZone(epsg, self.in_service)
            return self._zones[epsg]

    def warm(self, areas: AreaIndex) -> None:
        """Build the zones of ``areas`` and of the spans' median vertex."""
        for epsg in dict.fromkeys([_home_zone(self.in_service), *areas.zones.tolist()]):
            if epsg:
                self.zone(int(epsg))


def line_kpis(spans: gpd.GeoDataFrame, areas: AreaIndex, *,
              span_lengths_m: npt.ArrayLike | None = None,
              home_zone: int | None = None, zones: LineZones | None = None) -> LineKpis:
    """The km KPIs and utilization of the network and of each area (no premise needed).

    Each area is clipped in the UTM zone of its centroid. ``zones`` are the
    projected lines of ``spans`` when already built (:class:`LineZones`).
    """
    lines = zones if zones is not None else LineZones(spans)
    is_in = lines.is_in
    in_service = lines.in_service
    lengths_m = geodesic_lengths_m(in_service.geometry.to_numpy(), crs=CRS(spans.crs)) \
        if span_lengths_m is None else np.asarray(span_lengths_m, dtype=float)[is_in]
    home = home_zone or _home_zone(in_service)
    fibers = in_service["fiber_count"].to_numpy(dtype=float, na_value=np.nan)
    route_m = float(lines.zone(home).piece_lengths_m.sum()) if home else 0.0
    network: dict[str, Any] = dict(_lengths_km(lengths_m, fibers, route_m))
    network["utilization_pct"] = utilization_pct(in_service)
    per_area: list[dict[str, Any]] = []
    for i in range(len(areas)):
        z = lines.zone(int(areas.zones[i]))
        poly = areas.polys[i]
        hit, cable_m = z.clip(z.line_tree, z.lines, lengths_m, poly)
        _, route_in_m = z.clip(z.piece_tree, z.pieces, z.piece_lengths_m, poly)
        row: dict[str, Any] = dict(_lengths_km(cable_m, fibers[hit], float(route_in_m.sum())))
        row["utilization_pct"] = utilization_pct(in_service.iloc[hit])
        per_area.append(row)
    return network, per_area


def assemble_kpis(network_sums: npt.ArrayLike, area_sums: npt.ArrayLike, lines: LineKpis,
                  areas: AreaIndex, *, spof_spans: int, spof_nodes: int) -> Kpis:
    """``kpis.json`` from the premise sums (network and per area) and :func:`line_kpis`.

    docs/spec.md §2.9 asks for area_id order while the reference output
    (``tests/examples/ring_spur``) keeps the dataset's order (``west`` before
    ``east``); we follow the reference output.
    """
    network = premise_kpis_from_sums(network_sums)
    network.update(lines[0])
    network["spof_spans"] = int(spof_spans)
    network["spof_nodes"] = int(spof_nodes)
    rows: list[AreaKpis] = []
    sums = np.asarray(area_sums, dtype=np.int64)
    for i, (_, area) in enumerate(areas.areas.iterrows()):
        row: dict[str, Any] = {"area_id": area["area_id"], "name": area.get("name")}
        row.update(premise_kpis_from_sums(sums[i]))
        row.update(lines[1][i])
        rows.append(cast(AreaKpis, {"area_id": row["area_id"], "name": row["name"],
                                    **{k: row[k] for k in AREA_KPIS}}))
    return {"network": cast(NetworkKpis, {k: network[k] for k in NETWORK_KPIS}), "areas": rows}


def _home_zone(lines: gpd.GeoDataFrame) -> int:
    """UTM zone of the median span vertex (0 when there is no line)."""
    if len(lines) == 0:
        return 0
    ll = shapely.get_coordinates(transform_geoms(lines.geometry.to_numpy(), CRS(lines.crs),
                                                 WGS84))
    return utm_epsg(float(np.median(ll[:, 0])), float(np.median(ll[:, 1])))
