"""Geodesy helpers against pyproj's own geodesic solver, computed directly."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import CRS, Geod
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info
from shapely import LineString, MultiLineString, Point

from netgis.geodesy import (
    WGS84,
    geodesic_distance_m,
    geodesic_lengths_m,
    transform_geoms,
    utm_epsg,
    utm_zone_numbers,
    working_crs_for,
)

GEOD = Geod(ellps="WGS84")


def random_lonlat(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.uniform(-180, 180, n), rng.uniform(-89.9, 89.9, n)


def test_distances_match_pyproj_geod() -> None:
    rng = np.random.default_rng(7)
    lon1, lat1 = random_lonlat(rng, 500)
    lon2, lat2 = random_lonlat(rng, 500)
    got = geodesic_distance_m(lon1, lat1, lon2, lat2)
    want = [GEOD.inv(a, b, c, d)[2] for a, b, c, d in zip(lon1, lat1, lon2, lat2, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-6)


def test_distance_special_cases() -> None:
    # across the antimeridian: the short way round, ~111 km per degree at the equator
    d = geodesic_distance_m([179.5], [0.0], [-179.5], [0.0])[0]
    assert d == pytest.approx(GEOD.inv(179.5, 0, -179.5, 0)[2]) and d < 112_000
    assert geodesic_distance_m([8.0], [50.0], [8.0], [50.0])[0] == 0.0
    assert geodesic_distance_m([], [], [], []).shape == (0,)


def test_lengths_match_segment_sums() -> None:
    rng = np.random.default_rng(11)
    lines = []
    for _ in range(200):
        k = int(rng.integers(2, 12))
        lon0, lat0 = rng.uniform(-170, 170), rng.uniform(-80, 80)
        lines.append(LineString(np.column_stack([lon0 + rng.normal(0, 0.05, k).cumsum(),
                                                 lat0 + rng.normal(0, 0.05, k).cumsum()])))
    got = geodesic_lengths_m(lines)
    want = [GEOD.line_length(*line.xy) for line in lines]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_lengths_of_multi_missing_and_empty() -> None:
    a = LineString([(8, 50), (8, 50.01)])
    b = LineString([(9, 50), (9.01, 50), (9.01, 50.02)])
    got = geodesic_lengths_m([MultiLineString([a, b]), None, LineString(), a, b])
    la, lb = GEOD.line_length(*a.xy), GEOD.line_length(*b.xy)
    np.testing.assert_allclose(got, [la + lb, 0, 0, la, lb], rtol=1e-12)
    assert geodesic_lengths_m([]).shape == (0,)


@pytest.mark.parametrize("epsg", [3857, 32632, 25832])
def test_same_geodesic_length_in_any_crs(epsg: int) -> None:
    line = LineString([(8.60, 50.05), (8.65, 50.10), (8.75, 50.12), (8.80, 50.20)])
    want = GEOD.line_length(*line.xy)
    projected = transform_geoms([line], WGS84, CRS.from_epsg(epsg))
    got = geodesic_lengths_m(projected, crs=epsg)[0]
    assert got == pytest.approx(want, rel=1e-9)
    if epsg == 3857:
        # planar web-mercator meters are far off at this latitude: that is why this exists
        assert projected[0].length / want > 1.5


def test_length_across_utm_zones_and_hemispheres() -> None:
    line = LineString([(5.0, -1.0), (7.0, 0.5), (13.0, 1.0)])  # zones 31..33, both hemispheres
    assert geodesic_lengths_m([line])[0] == pytest.approx(GEOD.line_length(*line.xy), rel=1e-12)


@pytest.mark.parametrize(("lon", "lat", "epsg"), [
    (8.68, 50.11, 32632),      # Frankfurt
    (-74.0, 40.7, 32618),      # New York
    (-43.2, -22.9, 32723),     # Rio de Janeiro
    (151.2, -33.9, 32756),     # Sydney
    (18.4, -33.9, 32734),      # Cape Town
    (-180.0, 10.0, 32601),
    (179.99, -10.0, 32760),
    (0.0, 0.0, 32631),         # the equator counts as north
])
def test_utm_epsg(lon: float, lat: float, epsg: int) -> None:
    assert utm_epsg(lon, lat) == epsg
    assert utm_zone_numbers([lon])[0] == epsg % 100


@pytest.mark.parametrize("zone", [1, 17, 31, 32, 45, 60])
@pytest.mark.parametrize("lat", [-45.0, 45.0])
def test_utm_epsg_agrees_with_the_epsg_database(zone: int, lat: float) -> None:
    lon = -180.0 + 6.0 * zone - 3.0  # the zone's central meridian
    infos = query_utm_crs_info(
        datum_name="WGS 84",
        area_of_interest=AreaOfInterest(lon - 0.1, lat - 0.1, lon + 0.1, lat + 0.1))
    assert utm_epsg(lon, lat) in {int(i.code) for i in infos}


def test_working_crs_is_the_utm_zone_of_the_median() -> None:
    lon = np.array([8.5, 8.6, 8.7, 30.0])  # one outlier does not move it
    lat = np.array([50.0, 50.1, 50.2, -10.0])
    assert working_crs_for(lon, lat).to_epsg() == 32632
    assert working_crs_for([-58.4], [-34.6]).to_epsg() == 32721  # Buenos Aires
    assert working_crs_for([], []).is_projected


def test_transform_geoms_matches_geopandas_and_keeps_missing() -> None:
    geoms = np.array([Point(8.68, 50.11), None, LineString([(8, 50), (9, 51)])], dtype=object)
    got = transform_geoms(geoms, WGS84, CRS.from_epsg(32632))
    want = gpd.GeoSeries(geoms, crs=4326).to_crs(32632).to_numpy()
    assert got[1] is None
    assert shapely.equals_exact(got[[0, 2]], want[[0, 2]], 1e-6).all()
    same = transform_geoms(geoms, WGS84, CRS.from_epsg(4326))
    assert same[0].equals(geoms[0])
