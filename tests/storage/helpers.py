"""Test data and comparisons shared by the storage tests."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import delete, update

from netgis.dataset import Dataset, empty_layer
from netgis.schema import LAYER_NAMES, LAYERS
from netgis.storage import Repository
from netgis.storage.models import (
    ANALYSIS_RUNS,
    AUDIT_LOG,
    DATA_VERSION_KEY,
    KPI_SNAPSHOTS,
    LAYER_TABLES,
    META,
    PLAN_AUDIT,
    PLAN_FEATURES,
    PLANS,
    STRAND_TABLES,
    STREETS,
)
from netgis.validate import validate_frames

#: The databases every storage test runs against.
BACKENDS = ["spatialite", pytest.param("postgis", marks=pytest.mark.postgis)]


def clean_repo(repo: Repository) -> None:
    """Empty every table and reset the data version (the migrations stay)."""
    with repo.engine.begin() as conn:
        for table in (PLAN_AUDIT, PLAN_FEATURES, PLANS, ANALYSIS_RUNS, KPI_SNAPSHOTS, STREETS,
                      AUDIT_LOG,
                      *STRAND_TABLES.values(),
                      *(LAYER_TABLES[n] for n in ("areas", "premises", "spans", "nodes"))):
            conn.execute(delete(table))
        conn.execute(update(META).where(META.c.key == DATA_VERSION_KEY).values(value=0))


def _maybe(keep: Any, values: list[str]) -> Any:
    """``values`` where ``keep`` is true, None elsewhere (an object array)."""
    out = np.array(values, dtype=object)
    out[~np.asarray(keep, dtype=bool)] = None
    return out


def chain_dataset(n_spans: int, *, premises_per_span: int = 1, lon0: float = 8.6,
                  lat0: float = 50.1, step_deg: float = 0.001, prefix: str = "") -> Dataset:
    """A straight chain of ``n_spans`` spans (node 0 is a core) with premises beside it, WGS84.

    Rows of ``n_spans`` spans each step north, so the chain stays compact.
    """
    row = 100
    k = np.arange(n_spans + 1)
    x = lon0 + step_deg * (k % row)
    y = lat0 + step_deg * (k // row)
    node_ids = np.array([f"{prefix}n{i}" for i in k], dtype=object)
    kinds = np.where(k == 0, "core", "splice").astype(object)
    nodes = gpd.GeoDataFrame(
        {"node_id": node_ids, "kind": kinds, "status": "in_service",
         "name": _maybe(k % 7 == 0, ["cabinet"] * len(k))},
        geometry=shapely.points(x, y), crs=4326)
    i = np.arange(n_spans)
    lines = shapely.linestrings(np.stack([np.column_stack([x[:-1], y[:-1]]),
                                          np.column_stack([x[1:], y[1:]])], axis=1))
    spans = gpd.GeoDataFrame(
        {"span_id": [f"{prefix}s{j}" for j in i], "from_node": node_ids[:-1],
         "to_node": node_ids[1:], "status": "in_service",
         "fiber_count": np.where(i % 3 == 0, 144, 48),
         "fibers_used": np.where(i % 3 == 0, 12, 0),
         "placement": np.where(i % 2 == 0, "aerial", "underground").astype(object),
         "duct_id": _maybe(i % 5 == 0, ["d1"] * len(i)), "owner": "city",
         "install_year": 2020},
        geometry=lines, crs=4326)
    m = np.arange(n_spans * premises_per_span)
    base = m // premises_per_span
    frac = (m % premises_per_span + 0.5) / premises_per_span
    px = x[base] + frac * (x[base + 1] - x[base]) + 0.0002 * ((m % 2) * 2 - 1)
    py = y[base] + frac * (y[base + 1] - y[base]) + 0.0003
    premises = gpd.GeoDataFrame(
        {"premise_id": [f"{prefix}p{j}" for j in m], "units": (m % 4) + 1,
         "kind": np.where(m % 10 == 0, "business", "residential").astype(object),
         "connected": m % 3 == 0, "address": [f"{j} Main St" for j in m],
         "location_id": _maybe(m % 2 == 0, [f"L{j}" for j in m])},
        geometry=shapely.points(px, py), crs=4326)
    raw = Dataset(nodes=nodes, spans=spans, premises=premises, areas=empty_layer("areas", 4326))
    # the clean form, exactly as read_dataset would give it for a file
    return validate_frames(raw.layers()).dataset_or_raise()


def assert_same_layers(got: Dataset, want: Dataset, *, tolerance_deg: float = 1e-9) -> None:
    """Same ids, same contract fields and geometries within ``tolerance_deg`` in EPSG:4326."""
    for name in LAYER_NAMES:
        layer = LAYERS[name]
        a = got.layers()[name]
        b = want.layers()[name]
        b = b.to_crs(4326) if b.crs is not None and b.crs.to_epsg() != 4326 else b
        assert a.crs is not None and a.crs.to_epsg() == 4326, name
        a = a.sort_values(layer.id_field).reset_index(drop=True)
        b = b.sort_values(layer.id_field).reset_index(drop=True)
        assert list(a[layer.id_field]) == list(b[layer.id_field]), name
        pd.testing.assert_frame_equal(
            pd.DataFrame(a[layer.field_names]), pd.DataFrame(b[layer.field_names]),
            check_dtype=True, obj=name)
        ga = np.asarray(a.geometry.array, dtype=object)
        gb = np.asarray(b.geometry.array, dtype=object)
        same = shapely.equals_exact(ga, gb, tolerance=tolerance_deg)
        assert bool(np.all(same)), f"{name}: geometries differ at {np.flatnonzero(~same)[:5]}"
