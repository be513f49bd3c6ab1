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
...     "duct_protected": [False, False]})
>>> k = premise_kpis(prem)
>>> k["coverage_pct"], k["take_rate_pct"], k["duct_protected_pct"]
(66.66666666666667, 100.0, 0.0)
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import CRS

from netgis.geodesy import WGS84, geodesic_lengths_m, transform_geoms, utm_epsg
from netgis.schema import IN_SERVICE

NETWORK_KEYS = (
    "premises_total", "units_total", "premises_passed", "units_passed", "coverage_pct",
    "units_connected", "take_rate_pct", "span_protected_pct", "node_protected_pct",
    "duct_protected_pct", "cable_km", "route_km", "fiber_km", "utilization_pct",
    "spof_spans", "spof_nodes",
)
AREA_KEYS = NETWORK_KEYS[:-2]


def _pct(num: float, den: float) -> float | None:
    return None if den == 0 else 100.0 * float(num) / float(den)


def premise_kpis(premises: pd.DataFrame) -> dict[str, Any]:
    """Premise KPIs from a frame with units, passed, connected and the three protection flags."""
    units = premises["units"].to_numpy(dtype=np.int64)
    passed = premises["passed"].to_numpy(dtype=bool)
    connected = premises["connected"].to_numpy(dtype=bool)
    units_total = int(units.sum())
    units_passed = int(units[passed].sum())
    units_connected = int(units[passed & connected].sum())
    out: dict[str, Any] = {
        "premises_total": len(premises),
        "units_total": units_total,
        "premises_passed": int(passed.sum()),
        "units_passed": units_passed,
        "coverage_pct": _pct(units_passed, units_total),
        "units_connected": units_connected,
        "take_rate_pct": _pct(units_connected, units_passed),
    }
    for flag in ("span_protected", "node_protected", "duct_protected"):
        mask = passed & premises[flag].to_numpy(dtype=bool)
        out[f"{flag}_pct"] = _pct(int(units[mask].sum()), units_passed)
    return out


def length_kpis(lines_wgs84: npt.NDArray[np.object_], fiber_count: pd.Series,
                union_wgs84: object) -> dict[str, float]:
    """cable_km, route_km and fiber_km of in-service span geometries (lon/lat)."""
    lengths = geodesic_lengths_m(lines_wgs84)
    fibers = fiber_count.to_numpy(dtype=float, na_value=np.nan)
    has = ~np.isnan(fibers)
    route = float(geodesic_lengths_m(np.asarray([union_wgs84], dtype=object))[0]) \
        if union_wgs84 is not None else 0.0
    return {
        "cable_km": float(lengths.sum()) / 1000.0,
        "route_km": route / 1000.0,
        "fiber_km": float((lengths[has] * fibers[has]).sum()) / 1000.0,
    }


def utilization_pct(spans: pd.DataFrame) -> float | None:
    """100 * sum fibers_used / sum fiber_count over spans with fiber_count > 0 and fibers_used."""
    count = spans["fiber_count"].to_numpy(dtype=float, na_value=np.nan)
    used = spans["fibers_used"].to_numpy(dtype=float, na_value=np.nan)
    ok = ~np.isnan(count) & ~np.isnan(used) & (np.nan_to_num(count) > 0)
    return _pct(float(used[ok].sum()), float(count[ok].sum()))


def _union(lines: npt.NDArray[np.object_]) -> object:
    if len(lines) == 0:
        return None
    # noding merges exactly shared segments; no snapping (grid_size None)
    return shapely.union_all(lines)


def compute_kpis(
    premises: gpd.GeoDataFrame,
    spans: gpd.GeoDataFrame,
    areas: gpd.GeoDataFrame,
    *,
    spof_spans: int,
    spof_nodes: int,
) -> dict[str, Any]:
    """The ``kpis.json`` object: ``{"network": {...}, "areas": [...]}``.

    ``premises`` carries the analysis columns (passed, protection flags) and
    ``units``/``connected``; ``spans`` is the whole spans layer.
    """
    in_service = spans[spans["status"] == IN_SERVICE]
    crs = CRS(spans.crs)
    lines_ll = transform_geoms(in_service.geometry.to_numpy(), crs, WGS84)
    network = premise_kpis(premises)
    network.update(length_kpis(lines_ll, in_service["fiber_count"],
                               _union_as_lonlat(in_service.geometry.to_numpy(), crs)))
    network["utilization_pct"] = utilization_pct(in_service)
    network["spof_spans"] = int(spof_spans)
    network["spof_nodes"] = int(spof_nodes)
    return {
        "network": {k: network[k] for k in NETWORK_KEYS},
        "areas": area_kpis(premises, in_service, areas),
    }


def _union_as_lonlat(lines: npt.NDArray[np.object_], crs: CRS) -> object:
    union = _union(lines)
    if union is None:
        return None
    return transform_geoms(np.asarray([union], dtype=object), crs, WGS84)[0]


def area_kpis(premises: gpd.GeoDataFrame, in_service: gpd.GeoDataFrame,
              areas: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    """Per-area KPIs in the dataset's area order; no spof keys.

    SPEC asks for area_id order while its reference output keeps the dataset's
    order (``west`` before ``east``); we follow the reference output.
    """
    if areas is None or len(areas) == 0:
        return []
    area_crs = CRS(areas.crs)
    cxy = shapely.get_coordinates(shapely.centroid(
        transform_geoms(areas.geometry.to_numpy(), area_crs, WGS84)))
    zones = [utm_epsg(float(x), float(y)) for x, y in cxy]
    cache: dict[int, tuple[shapely.STRtree, npt.NDArray[np.object_],
                           shapely.STRtree, npt.NDArray[np.object_]]] = {}
    out: list[dict[str, Any]] = []
    for (_, area), zone in zip(areas.iterrows(), zones, strict=True):
        if zone not in cache:
            w = CRS.from_epsg(zone)
            pts = transform_geoms(premises.geometry.to_numpy(), CRS(premises.crs), w)
            lines = transform_geoms(in_service.geometry.to_numpy(), CRS(in_service.crs), w)
            cache[zone] = (shapely.STRtree(pts), pts, shapely.STRtree(lines), lines)
        ptree, _, ltree, lines = cache[zone]
        w = CRS.from_epsg(zone)
        poly = transform_geoms(np.asarray([area.geometry], dtype=object), area_crs, w)[0]
        inside = np.sort(ptree.query(poly, predicate="covers"))
        row: dict[str, Any] = {"area_id": area["area_id"], "name": area.get("name")}
        row.update(premise_kpis(premises.iloc[inside]))
        hit = np.sort(ltree.query(poly, predicate="intersects"))
        clipped = shapely.intersection(lines[hit], poly)
        clipped_ll = transform_geoms(clipped, w, WGS84)
        union_ll = transform_geoms(np.asarray([_union(clipped)], dtype=object), w, WGS84)[0] \
            if len(clipped) else None
        row.update(length_kpis(clipped_ll, in_service["fiber_count"].iloc[hit], union_ll))
        row["utilization_pct"] = utilization_pct(in_service.iloc[hit])
        out.append({"area_id": row["area_id"], "name": row["name"],
                    **{k: row[k] for k in AREA_KEYS}})
    return out
