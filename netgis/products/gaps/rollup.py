"""Gap roll-ups: unpassed premises and units per H3 cell and per area, and the selectors.

:func:`rollup_h3` and :func:`rollup_areas` count, per H3 cell (from WGS84
coordinates) or per area, the premises the plant does not pass, their units
and the least and median ``distance_m``; :func:`in_cell` and :func:`in_area`
pick the premises of one cell or area.
"""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import CRS

from netgis.engine.coverage import lonlat
from netgis.errors import NotFoundError, Problem, ValidationError
from netgis.geodesy import WGS84, transform_geoms, utm_epsg
from netgis.schema import DEFAULT_H3_RES

IntArray = npt.NDArray[np.int64]


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
    a_idx, p_idx = area_members(premises, areas)
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


def area_members(premises: gpd.GeoDataFrame, areas: gpd.GeoDataFrame
                 ) -> tuple[IntArray, IntArray]:
    """Which premises each area covers (boundary included), as pairs of row positions.

    Each area is tested in the UTM zone of its centroid, its polygon reprojected vertex
    by vertex (docs/spec.md §2); a premise covered by several areas is in several pairs.

    Returns
    -------
    tuple of numpy.ndarray
        ``(area_rows, premise_rows)``: positions in ``areas`` and in ``premises``.

    Examples
    --------
    >>> from shapely import Point, box
    >>> prem = gpd.GeoDataFrame(geometry=[Point(0, 0), Point(50, 50), Point(5, 5)], crs=32632)
    >>> areas = gpd.GeoDataFrame({"area_id": ["a"]}, geometry=[box(0, 0, 10, 10)], crs=32632)
    >>> [v.tolist() for v in area_members(prem, areas)]
    [[0, 0], [0, 2]]
    """
    if areas is None or len(areas) == 0 or len(premises) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    area_crs, prem_crs = CRS(areas.crs), CRS(premises.crs)
    centers = shapely.get_coordinates(shapely.centroid(
        transform_geoms(areas.geometry.to_numpy(), area_crs, WGS84)))
    zones = np.asarray([utm_epsg(float(x), float(y)) for x, y in centers], dtype=np.int64)
    member_area: list[IntArray] = []
    member_prem: list[IntArray] = []
    for zone in np.unique(zones):
        w = CRS.from_epsg(int(zone))
        sel = np.flatnonzero(zones == zone)
        polys = transform_geoms(areas.geometry.to_numpy()[sel], area_crs, w)
        tree = shapely.STRtree(transform_geoms(premises.geometry.to_numpy(), prem_crs, w))
        a, p = tree.query(polys, predicate="covers")
        member_area.append(sel[a])
        member_prem.append(p)
    a_idx = np.concatenate(member_area).astype(np.int64)
    p_idx = np.concatenate(member_prem).astype(np.int64)
    order = np.lexsort((p_idx, a_idx))
    return a_idx[order], p_idx[order]


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
