"""What makes chunked analysis exact: zone choice and KPI sums that add up over chunks."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from netgis.engine.coverage import ZoneStats, working_zones
from netgis.engine.kpis import premise_kpis, premise_kpis_from_sums, premise_sums

LON = st.floats(-180, 180, allow_nan=False)
LAT = st.floats(-85, 85, allow_nan=False)


@st.composite
def positions(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, list[int]]:
    n = draw(st.integers(1, 30))
    center = draw(LON)
    width = draw(st.sampled_from([0.01, 2.0, 5.0, 40.0, 400.0]))
    lon = np.array([draw(st.floats(-width, width)) for _ in range(n)]) + center
    lon = np.clip(lon, -180, 180)
    if draw(st.booleans()):
        lon = np.round(lon / 6) * 6  # right on zone edges
    lat = np.array([draw(LAT) for _ in range(n)])
    if draw(st.booleans()):
        lat = np.round(lat / 50)  # near and on the equator
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
    return lon, lat, cuts


@settings(max_examples=100, deadline=None)
@given(positions())
def test_zone_stats_of_chunks_choose_the_zones_of_all_positions(
        data: tuple[np.ndarray, np.ndarray, list[int]]) -> None:
    lon, lat, cuts = data
    want = working_zones(lon, lat)
    stats = ZoneStats.of(np.zeros(0), np.zeros(0))
    for part in np.split(np.arange(len(lon)), cuts):
        stats = stats + ZoneStats.of(lon[part], lat[part])
    plan = stats.plan()
    assert plan.zones(lon).tolist() == want.tolist()
    assert plan.home == (int(want[0]) if (want == want[0]).all() else None)


def _spread_over_all(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Every zone's spread, the plain way: one pass over all positions per zone."""
    cos = np.cos(np.radians(lat))
    return np.array([(np.abs(((lon - ((z + 1) * 6 - 183) + 180) % 360) - 180) * cos).max()
                     for z in range(60)])


@st.composite
def crowds(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Many positions, some crowding the half-zone edges (where offsets turn)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(1, 5000))
    center = draw(LON)
    width = draw(st.sampled_from([1e-9, 0.01, 2.0, 5.0, 40.0, 400.0]))
    lon = center + rng.uniform(-width, width, n)
    if draw(st.booleans()):
        edge = np.round(lon / 3) * 3
        lon = np.where(rng.random(n) < 0.5, edge + rng.choice([0, 1e-13, -1e-13, 2e-9], n), lon)
    lat = rng.uniform(-90, 90, n)
    if draw(st.booleans()):
        lat = np.round(lat, draw(st.integers(0, 2)))  # ties in cos
    return np.clip(lon, -180, 180), lat


@settings(max_examples=200, deadline=None)
@given(crowds())
def test_zone_spread_is_the_maximum_over_all_positions_to_the_last_bit(
        data: tuple[np.ndarray, np.ndarray]) -> None:
    lon, lat = data
    assert ZoneStats.of(lon, lat).spread.tolist() == _spread_over_all(lon, lat).tolist()


def test_premise_sums_add_up_to_the_kpis_of_all_premises() -> None:
    rng = np.random.default_rng(3)
    n = 1000
    cols = {"units": rng.integers(1, 5, n), "passed": rng.random(n) < 0.7,
            "connected": rng.random(n) < 0.3, "span_protected": rng.random(n) < 0.5,
            "node_protected": rng.random(n) < 0.4, "duct_protected": rng.random(n) < 0.4,
            "in_budget": rng.random(n) < 0.6}
    parts = np.split(np.arange(n), [10, 400, 401, 999])
    total = sum(premise_sums({k: v[p] for k, v in cols.items()}) for p in parts)
    assert premise_kpis_from_sums(total) == premise_kpis(cols)
