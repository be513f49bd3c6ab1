"""Coverage against a brute-force nearest search, on integer grids where ties are common."""

from __future__ import annotations

from collections.abc import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import LineString, Point

from netgis.dataset import Dataset
from netgis.engine.analysis import analyze, passed_premises
from netgis.engine.coverage import TIE_M, locate, working_zones
from netgis.geodesy import geodesic_distance_m, transform_geoms
from tests.netbuild import ORIGIN

coord = st.integers(0, 6).map(lambda v: v * 50.0)


@st.composite
def layouts(draw: st.DrawFn) -> tuple[list[LineString], list[Point], list[str]]:
    n = draw(st.integers(1, 8))
    lines = []
    for _ in range(n):
        a = (draw(coord), draw(coord))
        b = (draw(coord), draw(coord))
        if a == b:
            b = (a[0] + 50.0, a[1])
        lines.append(LineString([(a[0] + ORIGIN[0], a[1] + ORIGIN[1]),
                                 (b[0] + ORIGIN[0], b[1] + ORIGIN[1])]))
    pts = [Point(draw(coord) + ORIGIN[0] + draw(st.sampled_from([0.0, 25.0])),
                 draw(coord) + ORIGIN[1]) for _ in range(draw(st.integers(1, 6)))]
    ids = draw(st.permutations([f"s{i}" for i in range(n)]))
    return lines, pts, list(ids)


@settings(max_examples=200, deadline=None)
@given(layouts(), st.sampled_from([10.0, 60.0, 150.0]))
def test_locate_matches_brute_force(case: tuple[list[LineString], list[Point], list[str]],
                                    drop_m: float) -> None:
    lines, pts, ids = case
    spans = gpd.GeoDataFrame({"span_id": ids}, geometry=lines, crs=32632)
    out = locate(gpd.GeoSeries(pts, crs=32632), spans, drop_m=drop_m)
    for i, p in enumerate(pts):
        d = np.asarray([p.distance(line) for line in lines])
        tied = [ids[j] for j in np.flatnonzero(d <= d.min() + TIE_M)]
        winner = min(tied)  # Python compares str by code point
        j = ids.index(winner)
        attach = shapely.shortest_line(lines[j], p).coords[0]
        ll = transform_geoms(np.asarray([p, Point(attach)], dtype=object), 32632, 4326)
        geo = geodesic_distance_m([ll[0].x], [ll[0].y], [ll[1].x], [ll[1].y])[0]
        # beyond the drop an arbitrary tied span may be kept: same distance up to rounding
        assert out["distance_m"].iat[i] == pytest.approx(geo, rel=1e-7)
        assert out["nearest_span_id"].iat[i] == winner or geo > drop_m * 1.01 + 1
        assert out["passed"].iat[i] == (geo <= drop_m)
        assert out["served_span_id"].iat[i] == (winner if geo <= drop_m else None)


def test_one_zone_for_a_city_and_one_per_zone_for_a_continent() -> None:
    lon = np.array([8.6, 8.7, 8.8])
    lat = np.array([50.0, 50.1, 50.2])
    assert set(working_zones(lon, lat).tolist()) == {32632}
    wide = np.array([-120.0, -100.0, -80.0])
    assert working_zones(wide, np.array([40.0, 40.0, 40.0])).tolist() == [32611, 32614, 32617]


def test_distances_stay_geodesic_across_utm_zones() -> None:
    # spans and premises 20 degrees apart: each premise is measured in its own zone
    spans = gpd.GeoDataFrame({"span_id": ["w", "e"]}, geometry=[
        LineString([(-100.0, 40.0), (-100.0, 40.01)]),
        LineString([(-80.0, 40.0), (-80.0, 40.01)])], crs=4326)
    pts = gpd.GeoSeries([Point(-100.001, 40.005), Point(-79.999, 40.005)], crs=4326)
    out = locate(pts, spans)
    want = geodesic_distance_m([-100.001, -79.999], [40.005, 40.005], [-100.0, -80.0],
                               [40.005, 40.005])
    assert out["served_span_id"].tolist() == ["w", "e"]
    assert np.allclose(out["distance_m"].to_numpy(), want, rtol=1e-4)


def test_chunked_threaded_search_gives_the_same_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    from netgis.engine import coverage
    from netgis.generate import generate_city

    ds = generate_city(premises=3000, seed=3)
    lit = ds.spans[["span_id", "geometry"]]
    whole = locate(ds.premises.geometry, lit)
    monkeypatch.setattr(coverage, "_CHUNK", 97)  # about 30 chunks over the thread pool
    chunked = locate(ds.premises.geometry, lit)
    assert chunked["nearest_span_id"].tolist() == whole["nearest_span_id"].tolist()
    assert chunked["distance_m"].to_numpy() == pytest.approx(whole["distance_m"].to_numpy(),
                                                             rel=1e-12)


def _bent_lines(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Lines of 1..6 segments on a 10 m grid and points: random, at vertices, on bisectors."""
    count = rng.integers(1, 7, n)
    coords = (rng.integers(0, 40, (int(count.sum()) + n, 2)) * 10.0) + ORIGIN
    owner = np.repeat(np.arange(n), count + 1)
    lines = np.asarray(shapely.linestrings(coords, indices=owner), dtype=object)
    start = np.cumsum(count + 1) - count - 1
    xy = rng.uniform(-50, 450, (n, 2)) + ORIGIN
    xy[1::6] = coords[start + count][1::6]                 # last vertex
    xy[2::6] = coords[start + rng.integers(0, 2, n)][2::6]  # first or second vertex
    bent = np.flatnonzero((count >= 2) & (np.arange(n) % 6 == 3))
    v = start[bent] + 1
    ua, ub = coords[v - 1] - coords[v], coords[v + 1] - coords[v]
    ok = (np.hypot(*ua.T) > 0) & (np.hypot(*ub.T) > 0)
    bent, v, ua, ub = bent[ok], v[ok], ua[ok], ub[ok]
    ua /= np.hypot(*ua.T)[:, None]
    ub /= np.hypot(*ub.T)[:, None]
    xy[bent] = coords[v] + (ua + ub) * rng.uniform(0.1, 5, (len(bent), 1))
    return lines, xy


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_nearest_on_spans_is_geos_bit_for_bit(seed: int) -> None:
    """The numpy attachment point and fraction are the doubles GEOS computes.

    GEOS's shortest_line and line_locate_point on the same lines and points:
    zero-length segments, points on vertices and points as near one segment
    as the next included (where the last bit of a distance picks the segment).
    """
    from netgis.engine.coverage import SpanSegments, nearest_on_spans

    rng = np.random.default_rng(seed)
    lines, xy = _bent_lines(rng, 3000)
    valid = shapely.is_valid(lines)
    lines, xy = lines[valid], xy[valid]
    att, frac = nearest_on_spans(SpanSegments(lines), xy, np.arange(len(lines)),
                                 frac_within_m=100.0)
    shortest = shapely.shortest_line(lines, shapely.points(xy))
    attach = shapely.get_point(shortest, 0)
    assert np.array_equal(att, shapely.get_coordinates(attach))
    near = shapely.length(shortest) <= 100.0
    assert near.any() and (~near).any()
    want = np.full(len(lines), np.nan)
    want[near] = shapely.line_locate_point(lines[near], attach[near], normalized=True)
    assert np.array_equal(frac, want, equal_nan=True)


def test_points_cover_is_shapely_covers() -> None:
    """Points a polygon covers, boundary included; NaN coordinates are never covered."""
    from netgis.geodesy import PointsCover

    rng = np.random.default_rng(5)
    xy = rng.integers(0, 200, (20_000, 2)).astype(float)   # many on polygon boundaries
    xy[::97] = np.nan
    polys = [shapely.box(*sorted(rng.integers(0, 200, 2)), *sorted(rng.integers(0, 200, 2)))
             for _ in range(20)]
    polys += [shapely.Polygon([(10, 10), (150, 30), (60, 190)]), shapely.box(-50, -50, -1, -1)]
    cover = PointsCover(xy[:, 0], xy[:, 1])
    among = rng.random(len(xy)) < 0.5
    for poly in polys:
        if poly.is_empty or not poly.is_valid:
            continue
        want = np.flatnonzero(shapely.covers(poly, shapely.points(xy)))
        assert np.array_equal(np.sort(cover.covered(poly)), want)
        assert np.array_equal(np.sort(cover.covered(poly, among=among)), want[among[want]])


def test_an_index_adopts_the_projections_of_unchanged_spans() -> None:
    """The lit-span index after an edit takes the projected spans of the one before where
    a span kept its geometry, projects the rest, and answers as a fresh index."""
    from netgis.engine.coverage import SpanIndex
    from netgis.generate import generate_city

    spans = generate_city(premises=400, seed=3).spans.to_crs(4326)
    lit = spans[spans["status"] == "in_service"][["span_id", "geometry"]].reset_index(drop=True)
    before = SpanIndex(lit)
    zone = int(working_zones(*shapely.get_coordinates(
        shapely.get_point(lit.geometry.to_numpy()[:1], 0)).T)[0])
    before.projected(zone)
    after = lit.iloc[3:].copy()  # three spans gone
    after.loc[after.index[0], "geometry"] = shapely.affinity.translate(  # one redrawn
        after.geometry.iloc[0], xoff=0.0001)
    after = gpd.GeoDataFrame(pd.concat([after, gpd.GeoDataFrame(  # one new
        {"span_id": ["zz-new"]}, geometry=[LineString([(8.70, 50.10), (8.71, 50.11)])],
        crs=4326)], ignore_index=True), crs=4326)
    adopted, fresh = SpanIndex(after), SpanIndex(after)
    adopted.adopt(before)
    assert zone in adopted._projected  # taken over, not projected on demand
    got, want = adopted.projected(zone), fresh.projected(zone)
    assert bool(shapely.equals_identical(got[0], want[0]).all())
    np.testing.assert_array_equal(got[1], want[1])
    points = gpd.GeoSeries(shapely.get_point(after.geometry.to_numpy()[::5], 1), crs=4326)
    pd.testing.assert_frame_equal(locate(points, adopted, halo_m=50.0),
                                  locate(points, SpanIndex(after)))


def _passed_cases() -> list[tuple[str, Callable[[], Dataset]]]:
    from netgis.generate import generate_city
    from netgis.io import read_dataset
    from tests.degenerate import CASES
    from tests.helpers import EXAMPLES_DIR

    cases: list[tuple[str, Callable[[], Dataset]]] = [
        (d.name, lambda path=d: read_dataset(path / "dataset.gpkg"))
        for d in sorted(EXAMPLES_DIR.iterdir()) if (d / "dataset.gpkg").exists()]
    cases += [(c.name, c.dataset) for c in CASES]
    cases.append(("generated", lambda: generate_city(premises=3000, seed=11)))
    return cases


@pytest.mark.parametrize(("name", "make"), _passed_cases(),
                         ids=[name for name, _ in _passed_cases()])
@pytest.mark.parametrize("drop_m", [0.0, 40.0, 150.0])
def test_passed_alone_is_the_analysis_passed(name: str, make: Callable[[], Dataset],
                                             drop_m: float) -> None:
    """passed_premises (lit spans by a breadth-first search, nothing else) gives exactly
    analyze's passed column, on the examples, the degenerate networks and a city."""
    dataset = make()
    want = analyze(dataset, drop_m=drop_m).premises.set_index("premise_id")["passed"]
    got = passed_premises(dataset, drop_m=drop_m)
    assert got.index.tolist() == want.index.tolist()
    assert got.tolist() == want.astype(bool).tolist()
    if name == "generated" and drop_m == 150.0:
        assert 0 < int(got.sum()) < len(got)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_far_points_are_settled_by_a_halo_as_wide_as_their_found_span(seed: int) -> None:
    """Points farther from every lit span than both halos are searched a third time over
    the spans within the farthest distance found for them: the same answers as the index
    of all spans, ties included, without building it when that search covers part of
    the network."""
    from netgis.engine.coverage import SpanIndex

    rng = np.random.default_rng(seed)
    # a grid of short spans over ~20 x 20 km near (8.6, 50.1), some parallel (ties)
    n = 40
    x0, y0 = rng.uniform(0, 0.28, n * n // 4), rng.uniform(0, 0.18, n * n // 4)
    dx = rng.choice([0.002, 0.0], len(x0))
    dy = np.where(dx == 0, 0.002, 0.0)
    lines = shapely.linestrings(np.stack([np.column_stack([8.6 + x0, 50.1 + y0]),
                                          np.column_stack([8.6 + x0 + dx, 50.1 + y0 + dy])],
                                         axis=1))
    lines = np.concatenate([lines, lines[:25]])  # 25 exact duplicates: ties by span_id
    lit = gpd.GeoDataFrame({"span_id": [f"s{i:05d}" for i in range(len(lines))]},
                           geometry=lines, crs=4326)
    # clusters of points beyond the east edge, 2-6 km away, and a few within the grid
    far = np.column_stack([8.6 + 0.28 + rng.uniform(0.03, 0.08, 300),
                           50.1 + rng.uniform(0.0, 0.05, 300)])
    near = np.column_stack([8.6 + rng.uniform(0, 0.28, 50), 50.1 + rng.uniform(0, 0.18, 50)])
    points = gpd.GeoSeries(shapely.points(np.vstack([far, near])), crs=4326)
    want = locate(points, SpanIndex(lit))
    index = SpanIndex(lit)
    got = locate(points.iloc[:300], index, halo_m=50.0)
    pd.testing.assert_frame_equal(got, want.iloc[:300])
    zone = int(working_zones(far[:1, 0], far[:1, 1])[0])
    assert not index.built(zone)  # settled over a part of the network
    pd.testing.assert_frame_equal(locate(points, SpanIndex(lit), halo_m=50.0), want)
