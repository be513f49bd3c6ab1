"""Build small datasets from compact descriptions (tests only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geopandas as gpd
from shapely import LineString, Point

from netgis.dataset import Dataset
from netgis.validate import validate_frames

#: Drawings are in UTM 32N meters, offset to near Frankfurt (lat 50) like the shared examples.
ORIGIN = (477000.0, 5551000.0)
UTM = 32632


def dataset(
    nodes: Sequence[tuple[Any, ...]],
    spans: Sequence[tuple[Any, ...]],
    premises: Sequence[tuple[Any, ...]] = (),
    areas: Sequence[tuple[str, Any]] = (),
    *,
    crs: int = UTM,
) -> Dataset:
    """nodes: (id, x, y[, kind[, status[, split_ratio]]]);
    spans: (id, a, b[, status[, duct[, fiber_count]]]);
    premises: (id, x, y[, units[, connected]]); areas: (id, shapely polygon in drawing meters).
    Coordinates are drawing meters; the dataset is returned in ``crs``."""
    ox, oy = ORIGIN
    pos = {n[0]: (n[1] + ox, n[2] + oy) for n in nodes}
    node_frame = gpd.GeoDataFrame(
        {
            "node_id": [n[0] for n in nodes],
            "kind": [n[3] if len(n) > 3 else "cabinet" for n in nodes],
            "status": [n[4] if len(n) > 4 else "in_service" for n in nodes],
            "split_ratio": [n[5] if len(n) > 5 else None for n in nodes],
        },
        geometry=[Point(pos[n[0]]) for n in nodes], crs=UTM,
    )
    span_frame = gpd.GeoDataFrame(
        {
            "span_id": [s[0] for s in spans],
            "from_node": [s[1] for s in spans],
            "to_node": [s[2] for s in spans],
            "status": [s[3] if len(s) > 3 else "in_service" for s in spans],
            "duct_id": [s[4] if len(s) > 4 else None for s in spans],
            "fiber_count": [s[5] if len(s) > 5 else 24 for s in spans],
        },
        geometry=[LineString([pos[s[1]], pos[s[2]]]) for s in spans], crs=UTM,
    )
    prem_frame = gpd.GeoDataFrame(
        {
            "premise_id": [p[0] for p in premises],
            "units": [p[3] if len(p) > 3 else 1 for p in premises],
            "connected": [p[4] if len(p) > 4 else False for p in premises],
        },
        geometry=[Point(p[1] + ox, p[2] + oy) for p in premises], crs=UTM,
    )
    frames = {"nodes": node_frame, "spans": span_frame, "premises": prem_frame}
    if areas:
        from shapely import affinity

        frames["areas"] = gpd.GeoDataFrame(
            {"area_id": [a[0] for a in areas], "name": [a[0] for a in areas]},
            geometry=[affinity.translate(a[1], ox, oy) for a in areas], crs=UTM,
        )
    if crs != UTM:
        frames = {k: v.to_crs(crs) for k, v in frames.items()}
    report = validate_frames(frames)
    return report.dataset_or_raise()
