"""The audit log: what each write of features changed, recorded inside the write's transaction.

:class:`netgis.storage.Repository` calls :func:`record` in the transaction of
every insert, replace, patch, delete and bulk load, after the change and
before the commit: a write that fails (invalid data, a conflict, a failed
If-Match) rolls its entry back with it, and a committed write always has one.

- Writes of items (``create``, ``replace``, ``patch``, ``delete``) keep the
  changed features whole, before and after, as GeoJSON FeatureCollections
  (WGS84): every property and the geometry. ``before`` is null for a create,
  ``after`` null for a delete.
- Bulk loads (``load`` from the command line or Python, ``import`` over HTTP)
  keep one entry per layer with the ids and count written and the mode
  (insert or upsert), no bodies: a load of a whole network stays as fast as
  without a log, and the log does not hold a second copy of the network.
- The actor is the API key's name, ``cli`` for the command line and ``local``
  for Python callers that name no one (:data:`DEFAULT_ACTOR`).

Examples
--------
>>> import geopandas as gpd, shapely
>>> frame = gpd.GeoDataFrame({"area_id": ["a1"], "name": ["North"]},
...                          geometry=[shapely.box(0, 0, 1, 1)], crs=4326)
>>> fc = feature_collection("areas", frame)
>>> fc["features"][0]["id"], fc["features"][0]["properties"]
('a1', {'area_id': 'a1', 'name': 'North'})
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, insert

from netgis.schema import LAYERS
from netgis.storage.models import AUDIT_LOG

Action = Literal["create", "replace", "patch", "delete", "import", "load"]
ACTIONS: tuple[Action, ...] = ("create", "replace", "patch", "delete", "import", "load")
#: The actor of a write made through Python that names none.
DEFAULT_ACTOR = "local"
#: The actor of writes made by the ``netgis`` command line.
CLI_ACTOR = "cli"


def _plain(value: Any) -> Any:
    """A cell as JSON: None for missing, Python numbers instead of numpy's."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _coordinates(node: Any) -> Any:
    # shapely's mapping() gives tuples; JSON columns read back lists, so store lists
    if isinstance(node, tuple | list):
        return [_coordinates(v) for v in node]
    if isinstance(node, dict):
        return {k: _coordinates(v) for k, v in node.items()}
    return node


def feature_collection(layer: str, frame: gpd.GeoDataFrame) -> dict[str, Any]:
    """``frame`` (one layer's validated rows, WGS84) as a GeoJSON FeatureCollection.

    Every field of the layer is a property (null when missing); each feature's
    ``id`` is its id field. Coordinates keep full precision.
    """
    fields = LAYERS[layer].field_names
    id_field = LAYERS[layer].id_field
    features = []
    geoms = np.asarray(frame.geometry.array, dtype=object)
    for (_, row), geom in zip(frame.iterrows(), geoms, strict=True):
        props = {name: _plain(row[name]) if name in row.index else None for name in fields}
        features.append({
            "type": "Feature",
            "id": props[id_field],
            "properties": props,
            "geometry": None if geom is None else _coordinates(
                shapely.geometry.mapping(geom)),
        })
    return {"type": "FeatureCollection", "features": features}


def record(conn: Connection, *, actor: str, action: Action, layer: str,
           ids: Sequence[str], data_version: int, mode: str | None = None,
           before: gpd.GeoDataFrame | None = None,
           after: gpd.GeoDataFrame | None = None) -> None:
    """Add one entry to the audit log, on ``conn`` (inside the write's transaction).

    Parameters
    ----------
    ids
        The ids of the features written.
    data_version
        The version the write gave the database.
    before, after
        The changed features before and after (item writes); None for bulk
        loads and for the side of a create or delete that has no feature.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    conn.execute(insert(AUDIT_LOG).values(
        changed_at=datetime.now(UTC),
        actor=str(actor),
        action=action,
        layer=layer,
        feature_ids=[str(i) for i in ids],
        count=len(ids),
        mode=mode,
        data_version=int(data_version),
        before=None if before is None else feature_collection(layer, before),
        after=None if after is None else feature_collection(layer, after),
    ))


def entry(row: Any) -> dict[str, Any]:
    """A stored row as the API and the command line show it (``time``: aware UTC)."""
    when: datetime = row["changed_at"]
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return {
        "id": int(row["id"]),
        "time": when,
        "actor": row["actor"],
        "action": row["action"],
        "layer": row["layer"],
        "feature_ids": list(row["feature_ids"]),
        "count": int(row["count"]),
        "mode": row["mode"],
        "data_version": int(row["data_version"]),
        "before": row["before"],
        "after": row["after"],
    }
