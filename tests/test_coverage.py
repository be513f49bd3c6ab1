"""Coverage against a brute-force nearest search, on integer grids where ties are common."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import LineString, Point

from netgis.coverage import TIE_M, locate, working_zones
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
    from netgis import coverage
    from netgis.generate import generate_city

    ds = generate_city(premises=3000, seed=3)
    lit = ds.spans[["span_id", "geometry"]]
    whole = locate(ds.premises.geometry, lit)
    monkeypatch.setattr(coverage, "_CHUNK", 97)  # about 30 chunks over the thread pool
    chunked = locate(ds.premises.geometry, lit)
    assert chunked["nearest_span_id"].tolist() == whole["nearest_span_id"].tolist()
    assert chunked["distance_m"].to_numpy() == pytest.approx(whole["distance_m"].to_numpy(),
                                                             rel=1e-12)
