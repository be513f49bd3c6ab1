"""Validation speed: ``validate_raw`` on a synthetic city with 1 M premises.

Premises are points scattered over a 10 x 10 km UTM square with clean
contract columns (the common case) and, in a second run, with the messy but
forgivable columns a GeoJSON export gives (numeric ids, "1"/"0" text
booleans, float counts with nulls, upper-case enums). Spans form a grid of
straight lines between grid nodes; one district area covers everything.

Run: ``.venv/bin/python -m benchmarks.bench_validate [n_premises]``
"""

from __future__ import annotations

import os
import sys
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from benchmarks._record import peak_rss_mb, record
from netgis.dataset import RawLayer
from netgis.validate import validate_raw

CRS = 32632
X0, Y0 = 470_000.0, 5_540_000.0


def city(n_premises: int, *, messy: bool, seed: int = 1) -> dict[str, RawLayer]:
    """Raw layers of a grid city; ``messy`` uses the forgivable spellings."""
    rng = np.random.default_rng(seed)
    side = 100  # 100 x 100 nodes, 100 m apart
    mx, my = np.meshgrid(np.arange(side), np.arange(side))
    gx, gy = mx.ravel(), my.ravel()
    node_ids = np.char.add("n", np.arange(side * side).astype(str)).astype(object)
    node_pts = np.asarray(shapely.points(X0 + gx * 100.0, Y0 + gy * 100.0), dtype=object)
    kinds = np.where(np.arange(side * side) == 0, "core", "cabinet").astype(object)
    nodes = gpd.GeoDataFrame({"node_id": node_ids, "kind": kinds, "status": "in_service"},
                             geometry=node_pts, crs=CRS)
    right = np.flatnonzero(gx < side - 1)
    up = np.flatnonzero(gy < side - 1)
    a = np.concatenate([right, up])
    b = np.concatenate([right + 1, up + side])
    coords = np.stack([shapely.get_coordinates(node_pts[a]),
                       shapely.get_coordinates(node_pts[b])], axis=1)
    spans = gpd.GeoDataFrame({
        "span_id": np.char.add("s", np.arange(len(a)).astype(str)).astype(object),
        "from_node": node_ids[a], "to_node": node_ids[b],
        "fiber_count": np.full(len(a), 48), "fibers_used": rng.integers(0, 48, len(a)),
    }, geometry=shapely.linestrings(coords), crs=CRS)
    px = X0 + rng.uniform(0, (side - 1) * 100.0, n_premises)
    py = Y0 + rng.uniform(0, (side - 1) * 100.0, n_premises)
    units = rng.integers(1, 6, n_premises)
    connected = rng.random(n_premises) < 0.4
    kind = np.where(rng.random(n_premises) < 0.9, "residential", "business").astype(object)
    if messy:
        premise_cols: dict[str, object] = {
            "premise_id": np.arange(n_premises) + 1_000_000,
            "units": np.where(rng.random(n_premises) < 0.1, np.nan, units.astype(float)),
            "kind": pd.Series(kind).str.upper().to_numpy(dtype=object),
            "connected": np.where(connected, "1", "0").astype(object),
        }
    else:
        premise_cols = {
            "premise_id": np.char.add("p", np.arange(n_premises).astype(str)).astype(object),
            "units": units, "kind": kind, "connected": connected,
        }
    premises = gpd.GeoDataFrame(premise_cols, geometry=shapely.points(px, py), crs=CRS)
    areas = gpd.GeoDataFrame({"area_id": ["all"]}, geometry=[shapely.box(
        X0 - 10, Y0 - 10, X0 + side * 100.0, Y0 + side * 100.0)], crs=CRS)
    return {name: RawLayer(name, frame, "memory", "parquet") for name, frame in
            {"nodes": nodes, "spans": spans, "premises": premises, "areas": areas}.items()}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rows = []
    for messy in (False, True):
        raw = city(n, messy=messy)
        t0 = time.perf_counter()
        report = validate_raw(raw)
        dt = time.perf_counter() - t0
        assert not report.errors, report.errors[:3]
        label = "messy (numeric ids, '1'/'0', floats, UPPER enums)" if messy else "clean"
        rows.append(f"| {n:,} | {len(raw['spans'].frame):,} | {label} | {dt:.2f} s "
                    f"| {n / dt / 1e3:,.0f} k |")
    md = "\n".join([
        "## validate",
        "",
        "`validate_raw` on a synthetic grid city (one area, every check on), "
        "`python -m benchmarks.bench_validate`:",
        "",
        "| premises | spans | columns | time | premises/s |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"Peak RSS {peak_rss_mb():,.0f} MiB (both runs, data included); 1-minute load "
        f"average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other jobs "
        "sharing the machine slow these figures down).",
    ])
    record("validate", md)


if __name__ == "__main__":
    main()
