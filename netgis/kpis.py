"""Coverage KPIs of SPEC section 2, network-wide and per area.

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

from collections.abc import Callable, Mapping
from typing import Any, TypedDict, cast

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import CRS

from netgis.geodesy import WGS84, geodesic_lengths_m, transform_geoms, utm_epsg
from netgis.schema import AREA_KPIS, IN_SERVICE, NETWORK_KPIS


class NetworkKpis(TypedDict):
    """``kpis.json["network"]``: every KPI of :data:`netgis.schema.KPI_FIELDS`."""

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
    spof_spans: int
    spof_nodes: int
    units_in_budget: int
    budget_coverage_pct: float | None


class AreaKpis(TypedDict):
    """One entry of ``kpis.json["areas"]``: the per-area KPIs, no spof counts."""

    area_id: str
    name: str | None
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


class Kpis(TypedDict):
    """The ``kpis.json`` object."""

    network: NetworkKpis
    areas: list[AreaKpis]


def _pct(num: float, den: float) -> float | None:
    return None if den == 0 else 100.0 * float(num) / float(den)


_PREMISE_INPUTS = ("units", "passed", "connected", "span_protected", "node_protected",
                   "duct_protected", "in_budget")


def premise_kpis(premises: pd.DataFrame | Mapping[str, npt.NDArray[Any]]) -> dict[str, Any]:
    """Premise KPIs from units, passed, connected and the three protection flags.

    ``premises`` is a frame or a mapping of column name to array.
    """
    units = np.asarray(premises["units"], dtype=np.int64)
    passed = np.asarray(premises["passed"], dtype=bool)
    connected = np.asarray(premises["connected"], dtype=bool)
    units_total = int(units.sum())
    units_passed = int(units[passed].sum())
    units_connected = int(units[passed & connected].sum())
    out: dict[str, Any] = {
        "premises_total": len(units),
        "units_total": units_total,
        "premises_passed": int(passed.sum()),
        "units_passed": units_passed,
        "coverage_pct": _pct(units_passed, units_total),
        "units_connected": units_connected,
        "take_rate_pct": _pct(units_connected, units_passed),
    }
    for flag in ("span_protected", "node_protected", "duct_protected"):
        mask = passed & np.asarray(premises[flag], dtype=bool)
        out[f"{flag}_pct"] = _pct(int(units[mask].sum()), units_passed)
    units_in_budget = int(units[passed & np.asarray(premises["in_budget"], dtype=bool)].sum())
    out["units_in_budget"] = units_in_budget
    out["budget_coverage_pct"] = _pct(units_in_budget, units_total)
    return out


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


class _Zone:
    """In-service lines, their union and the premises, projected once to one UTM zone.

    The union of all in-service lines is computed once per zone: its pieces
    give ``route_km`` for the network and, clipped, for every area (exactly
    shared segments count once; no snapping).
    """

    def __init__(self, epsg: int, premises: gpd.GeoDataFrame, in_service: gpd.GeoDataFrame,
                 lengths_m: npt.NDArray[np.float64]) -> None:
        self.crs = CRS.from_epsg(epsg)
        self.lines = transform_geoms(in_service.geometry.to_numpy(), CRS(in_service.crs),
                                     self.crs)
        self.line_tree = shapely.STRtree(self.lines)
        self.lengths_m = lengths_m
        union = shapely.union_all(self.lines) if len(self.lines) else None
        self.pieces = np.asarray(shapely.get_parts(union), dtype=object) \
            if union is not None else np.empty(0, dtype=object)
        self.piece_tree = shapely.STRtree(self.pieces)
        self.piece_lengths_m = geodesic_lengths_m(self.pieces, crs=self.crs)
        self.points = transform_geoms(premises.geometry.to_numpy(), CRS(premises.crs), self.crs)
        self.point_tree = shapely.STRtree(self.points)

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
    is_in = (spans["status"] == IN_SERVICE).to_numpy()
    in_service = spans[is_in]
    lengths_m = geodesic_lengths_m(in_service.geometry.to_numpy(), crs=CRS(spans.crs)) \
        if span_lengths_m is None else np.asarray(span_lengths_m, dtype=float)[is_in]
    zones: dict[int, _Zone] = {}

    def zone(epsg: int) -> _Zone:
        if epsg not in zones:
            zones[epsg] = _Zone(epsg, premises, in_service, lengths_m)
        return zones[epsg]

    home = home_zone or _home_zone(in_service)
    network = premise_kpis(premises)
    fibers = in_service["fiber_count"].to_numpy(dtype=float, na_value=np.nan)
    route_m = float(zone(home).piece_lengths_m.sum()) if home else 0.0
    network.update(_lengths_km(lengths_m, fibers, route_m))
    network["utilization_pct"] = utilization_pct(in_service)
    network["spof_spans"] = int(spof_spans)
    network["spof_nodes"] = int(spof_nodes)
    return {
        "network": cast(NetworkKpis, {k: network[k] for k in NETWORK_KPIS}),
        "areas": area_kpis(premises, in_service, areas, zone=zone, fibers=fibers),
    }


def _home_zone(lines: gpd.GeoDataFrame) -> int:
    """UTM zone of the median span vertex (0 when there is no line)."""
    if len(lines) == 0:
        return 0
    ll = shapely.get_coordinates(transform_geoms(lines.geometry.to_numpy(), CRS(lines.crs),
                                                 WGS84))
    return utm_epsg(float(np.median(ll[:, 0])), float(np.median(ll[:, 1])))


def area_kpis(premises: gpd.GeoDataFrame, in_service: gpd.GeoDataFrame,
              areas: gpd.GeoDataFrame, *, zone: Callable[[int], _Zone],
              fibers: npt.NDArray[np.float64]) -> list[AreaKpis]:
    """Per-area KPIs in the dataset's area order; no spof keys.

    SPEC asks for area_id order while its reference output keeps the dataset's
    order (``west`` before ``east``); we follow the reference output. Each area
    is clipped in the UTM zone of its centroid.
    """
    if areas is None or len(areas) == 0:
        return []
    area_crs = CRS(areas.crs)
    cxy = shapely.get_coordinates(shapely.centroid(
        transform_geoms(areas.geometry.to_numpy(), area_crs, WGS84)))
    columns = {c: premises[c].to_numpy() for c in _PREMISE_INPUTS}
    out: list[AreaKpis] = []
    for (_, area), (x, y) in zip(areas.iterrows(), cxy, strict=True):
        z = zone(utm_epsg(float(x), float(y)))
        poly = transform_geoms(np.asarray([area.geometry], dtype=object), area_crs, z.crs)[0]
        shapely.prepare(poly)
        inside = np.sort(z.point_tree.query(poly, predicate="covers"))
        row: dict[str, Any] = {"area_id": area["area_id"], "name": area.get("name")}
        row.update(premise_kpis({c: v[inside] for c, v in columns.items()}))
        hit, cable_m = z.clip(z.line_tree, z.lines, z.lengths_m, poly)
        _, route_m = z.clip(z.piece_tree, z.pieces, z.piece_lengths_m, poly)
        row.update(_lengths_km(cable_m, fibers[hit], float(route_m.sum())))
        row["utilization_pct"] = utilization_pct(in_service.iloc[hit])
        out.append(cast(AreaKpis, {"area_id": row["area_id"], "name": row["name"],
                                   **{k: row[k] for k in AREA_KPIS}}))
    return out
