"""Gap clusters on a city: single linkage alone (chains) against clusters bounded in size.

``python -m benchmarks.bench_clusters [N]`` (default 200k premises) generates a
city (seed 61), analyses it, then times the clustering of its unpassed premises
and the whole build plan, unbounded (``max_units`` and ``max_extent_m`` out of
reach: single linkage as before) and with the default bounds, and reports the
largest cluster of each.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np

from benchmarks._record import peak_rss_mb, record
from netgis.schema import DEFAULT_LINK_M, DEFAULT_MAX_CLUSTER_EXTENT_M, DEFAULT_MAX_CLUSTER_UNITS

if TYPE_CHECKING:
    from netgis.engine.analysis import Analysis

N_PREMISES = 200_000
SEED = 61
UNBOUNDED = 1e15


def _sizes(labels: np.ndarray, units: np.ndarray, xyz: np.ndarray) -> tuple[int, int, int, float]:
    from netgis.products.gaps.clusters import cluster_extent_m

    k = int(labels.max()) + 1
    extent = cluster_extent_m(xyz, labels, k)
    return (k, int(np.bincount(labels).max()), int(np.bincount(labels, weights=units).max()),
            float(extent.max()))


def main(argv: list[str]) -> int:
    from netgis.engine.analysis import analyze
    from netgis.generate import generate_city

    n = int(argv[0]) if argv else N_PREMISES
    t = time.perf_counter()
    result = analyze(generate_city(premises=n, seed=SEED))
    prep_s = time.perf_counter() - t
    lines = measure(result, f"`.venv/bin/python -m benchmarks.bench_clusters {n}` (through "
                    f"`flock /tmp/netgis-heavy.lock`): `generate_city(premises={n:,}, "
                    f"seed={SEED})`, analysed ({prep_s:.0f} s)")
    record("clusters", "\n".join(lines))
    return 0


def measure(result: Analysis, how: str) -> list[str]:
    """Cluster and plan the gaps of ``result`` unbounded and bounded; the section's lines."""
    from netgis.engine.coverage import lonlat
    from netgis.products.gaps import GapParams, bounded_clusters, plan_builds
    from netgis.products.gaps.clusters import ecef

    gap = result.premises[~result.premises["passed"].to_numpy(bool)]
    points = gpd.GeoSeries(gap.geometry.to_numpy(), crs=gap.crs)
    units = gap["units"].to_numpy(np.int64)
    xyz = ecef(lonlat(points.to_numpy(), gap.crs))
    rows = []
    for label, max_units, max_extent in (("single linkage (unbounded)", UNBOUNDED, UNBOUNDED),
                                         (f"bounded ({DEFAULT_MAX_CLUSTER_UNITS} units, "
                                          f"{DEFAULT_MAX_CLUSTER_EXTENT_M:,.0f} m)",
                                          DEFAULT_MAX_CLUSTER_UNITS,
                                          DEFAULT_MAX_CLUSTER_EXTENT_M)):
        t = time.perf_counter()
        labels, _, _ = bounded_clusters(points, units, link_m=DEFAULT_LINK_M,
                                        max_units=max_units, max_extent_m=max_extent)
        cluster_s = time.perf_counter() - t
        t = time.perf_counter()
        plan = plan_builds(result.premises, result.spans, result.nodes, drop_m=result.drop_m,
                           params=GapParams(max_units=max_units, max_extent_m=max_extent))
        plan_s = time.perf_counter() - t
        k, most_premises, most_units, widest = _sizes(labels, units, xyz)
        assert k == len(plan.clusters)
        rows.append((label, k, most_premises, most_units, widest, cluster_s, plan_s))
        print(rows[-1], flush=True)
    load = os.getloadavg()
    lines = [
        "## clusters: gap clusters bounded in size (issue 14)",
        "",
        f"{how}, {len(gap):,} premises not passed, link {DEFAULT_LINK_M:.0f} m. "
        "*clustering* = `bounded_clusters` (single linkage, then the splits); *plan* = "
        "`plan_builds` end to end (clusters, trees, joins, sketch, hulls, ranking). Extent = "
        "diagonal of the cluster's bounding box in its local plane.",
        "",
        "| clusters | count | largest (premises) | largest (units) | widest | clustering | plan |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, k, mp, mu, widest, cs, ps in rows:
        lines.append(f"| {label} | {k:,} | {mp:,} | {mu:,} | {widest:,.0f} m | {cs:.2f} s | "
                     f"{ps:.1f} s |")
    lines += ["", f"Peak RSS {peak_rss_mb():,.0f} MiB. Load average at the end {load[0]:.1f} / "
              f"{load[1]:.1f} / {load[2]:.1f} (1/5/15 min) on {os.cpu_count()} cores, other "
              "helpers' jobs running."]
    return lines


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
