"""Gap clusters stay buildable: bounded in units and extent, split at their natural breaks.

The hand-drawn case (EPSG:32632, drawn meters):

```
  blob A: 4 x 4 premises, 40 m apart        blob B: the same, 940 m to the east
  ::::  -- 190 -- c1 -- 200 -- c2 -- 210 -- c3 -- 220 -- ::::
```
(the chain runs at y = 60, between the blobs' middle rows, so its end edges are
191 m and 221 m long.)

With link 250 m single linkage makes one cluster of 35 premises. Bounded at 20
units, it must be cut on the chain (edges of 190-220 m), never inside a blob
(40 m), and each blob must stay whole.
"""

from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely import points

from netgis.engine.analysis import analyze
from netgis.errors import ValidationError
from netgis.generate import generate_city
from netgis.products.gaps import GapParams, bounded_clusters, cluster_labels, plan_builds

X0, Y0 = 478000.0, 5551000.0
UTM = 32632


def blobs_and_chain() -> tuple[gpd.GeoSeries, np.ndarray, np.ndarray]:
    """The drawing above: the points, which blob (0, 1; -1 on the chain) each is in."""
    grid = np.array(list(itertools.product(range(4), range(4))), dtype=float) * 40.0
    chain_x = 120.0 + np.cumsum([190.0, 200.0, 210.0])
    b_x0 = chain_x[-1] + 220.0
    xy = np.vstack([grid, np.column_stack([chain_x, np.full(3, 60.0)]),
                    grid + np.array([b_x0, 0.0])])
    blob = np.r_[np.zeros(16, int), np.full(3, -1), np.ones(16, int)]
    pts = gpd.GeoSeries(points(xy + np.array([X0, Y0])), crs=UTM)
    return pts, blob, xy


def test_the_hand_drawn_chain_is_one_cluster_unbounded() -> None:
    pts, _, _ = blobs_and_chain()
    labels, edges, edge_m = cluster_labels(pts, link_m=250)
    assert len(set(labels.tolist())) == 1 and len(edges) == len(pts) - 1
    assert edge_m.max() == pytest.approx(np.hypot(220.0, 20.0), rel=1e-3)  # c3 to B


def test_split_falls_on_the_chain_and_keeps_each_blob_whole() -> None:
    pts, blob, _ = blobs_and_chain()
    _, edges, edge_m = cluster_labels(pts, link_m=250)
    units = np.ones(len(pts), dtype=np.int64)
    new, kept_edges, _ = bounded_clusters(pts, units, link_m=250, max_units=20)
    # each blob in one cluster, the two blobs in different ones
    assert len(set(new[blob == 0].tolist())) == 1 and len(set(new[blob == 1].tolist())) == 1
    assert new[blob == 0][0] != new[blob == 1][0]
    assert np.bincount(new).max() <= 20
    # what was cut are chain edges only: every removed edge is longer than any blob edge
    key = {tuple(sorted(e)) for e in kept_edges.tolist()}
    cut = np.array([tuple(sorted(e)) not in key for e in edges.tolist()])
    assert cut.any() and edge_m[cut].min() > 150.0
    # the cut that bounded A to 20 was the longest edge (220 m, c3 to B) first
    assert edge_m[cut].max() == pytest.approx(np.hypot(220.0, 20.0), rel=1e-3)


def test_extent_bound_splits_by_width() -> None:
    pts, blob, _ = blobs_and_chain()
    units = np.ones(len(pts), dtype=np.int64)
    # the whole drawing is ~1.3 km wide, a blob 170 m across its diagonal
    new, _, _ = bounded_clusters(pts, units, link_m=250, max_units=10_000, max_extent_m=600)
    assert len(set(new[blob == 0].tolist())) == 1 and len(set(new[blob == 1].tolist())) == 1
    assert new[blob == 0][0] != new[blob == 1][0]
    _assert_within(pts, new, units, 10_000, 600)


def test_a_premise_above_the_bound_stands_alone() -> None:
    pts = gpd.GeoSeries(points([[X0, Y0], [X0 + 50, Y0], [X0 + 100, Y0]]), crs=UTM)
    units = np.array([1, 900, 1], dtype=np.int64)
    new, _, _ = bounded_clusters(pts, units, max_units=10)
    assert len(set(new.tolist())) == 3


def test_bad_bounds_are_named() -> None:
    pts, _, _ = blobs_and_chain()
    units = np.ones(len(pts), dtype=np.int64)
    for name, kwargs in (("max_units", {"max_units": 0}),
                         ("max_extent_m", {"max_extent_m": float("nan")})):
        with pytest.raises(ValidationError, match=name):
            bounded_clusters(pts, units, **kwargs)  # type: ignore[arg-type]


def _assert_within(pts: gpd.GeoSeries, labels: np.ndarray, units: np.ndarray,
                   max_units: float, max_extent_m: float) -> None:
    """Every cluster within the bounds (a lone premise may carry more units): every two of its
    premises at most ``max_extent_m`` apart (UTM meters; the bound is a bounding box
    diagonal in a local plane, so a 0.1 % tolerance covers the projections' scale)."""
    xy = np.column_stack([pts.x, pts.y])
    for c in np.unique(labels):
        member = labels == c
        if member.sum() > 1:
            assert units[member].sum() <= max_units
        p = xy[member]
        if len(p) > 1:
            d = np.hypot(*(p[:, None, :] - p[None, :, :]).transpose(2, 0, 1))
            assert d.max() <= max_extent_m * 1.001


def _refines(fine: np.ndarray, coarse: np.ndarray) -> bool:
    """Whether every cluster of ``fine`` lies inside one cluster of ``coarse``."""
    pairs = {(int(a), int(b)) for a, b in zip(fine, coarse, strict=True)}
    return len({a for a, _ in pairs}) == len(pairs)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 120), seed=st.integers(0, 10_000),
       max_units=st.sampled_from([1, 5, 20, 60]), max_extent_m=st.sampled_from([50.0, 300.0,
                                                                               2000.0]))
def test_property_bounds_hold_and_refine_single_linkage(n: int, seed: int, max_units: int,
                                                         max_extent_m: float) -> None:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 1500, (n, 2)) + np.array([X0, Y0])
    pts = gpd.GeoSeries(points(xy), crs=UTM)
    units = rng.integers(1, 6, n)
    coarse, _, _ = cluster_labels(pts, link_m=250)
    fine, edges, _ = bounded_clusters(pts, units, link_m=250, max_units=max_units,
                                      max_extent_m=max_extent_m)
    _assert_within(pts, fine, units, max_units, max_extent_m)
    assert _refines(fine, coarse)
    # a forest: one tree per cluster, so each is still connected by its own spanning tree
    assert len(edges) == n - len(np.unique(fine))


def test_bounds_hold_on_a_generated_city() -> None:
    result = analyze(generate_city(premises=1500, seed=5))
    gap = result.premises[~result.premises["passed"].to_numpy(bool)]
    assert len(gap) > 100
    unbounded = plan_builds(result.premises, result.spans, result.nodes,
                            params=GapParams(max_units=1e9, max_extent_m=1e9))
    plan = plan_builds(result.premises, result.spans, result.nodes,
                       params=GapParams(max_units=40, max_extent_m=500))
    assert int(unbounded.clusters["units"].max()) > 40  # the bound has work to do
    assert len(plan.clusters) > len(unbounded.clusters)
    assert int(plan.clusters["units"].sum()) == int(gap["units"].sum())
    cluster_of = plan.premise_cluster.set_index("premise_id")["cluster_id"]
    labels = cluster_of.loc[gap["premise_id"]].astype("category").cat.codes.to_numpy()
    pts = gpd.GeoSeries(gap.geometry.to_crs(UTM).to_numpy(), crs=UTM)
    _assert_within(pts, labels, gap["units"].to_numpy(), 40, 500)
    # each piece has its own estimate
    assert plan.clusters["route_m"].notna().all() and (plan.clusters["cost"] > 0).all()
    assert plan.clusters["cluster_id"].is_unique
