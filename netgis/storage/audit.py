"""The audit log: what each write of features changed, recorded inside the write's transaction.

:class:`netgis.storage.Repository` calls :func:`record` in the transaction of
every insert, replace, patch, delete and bulk load, after the change and
before the commit: a write that fails (invalid data, a conflict, a failed
If-Match) rolls its entry back with it, and a committed write always has one.

- Writes of items (``create``, ``replace``, ``patch``, ``delete``) keep the
  changed features whole, before and after, as GeoJSON FeatureCollections
  (WGS84): every property and the geometry. ``before`` is null for a create,
  ``after`` null for a delete.
- A bulk load (``load`` from the command line or Python, ``import`` over
  HTTP) is one entry for all four layers, with its mode (insert, upsert or
  replace) and counts per layer of the features it inserted, replaced and
  deleted. Its ids are rows of the table ``audit_ids`` (:func:`begin_bulk`,
  :func:`keep_before`, :func:`finish_bulk`), built by set-based statements in
  the database and read a page at a time; a feature it replaced or deleted is
  kept there as it was before. The entry itself stays small however large
  the load.
- Every id an entry wrote is in ``audit_ids``, on an index: a feature's
  history is found without reading any entry's ids.
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

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, Table, exists, func, insert, literal, select, update

from netgis.jsonsafe import json_safe
from netgis.schema import LAYERS, STRAND_LAYERS
from netgis.storage import dialects
from netgis.storage.models import (
    AUDIT_IDS,
    AUDIT_LOG,
    LOAD_ORDER,
    ROW_VERSION,
    strand_feature_id,
    strand_key,
)

Action = Literal["create", "replace", "patch", "delete", "import", "load", "merge"]
ACTIONS: tuple[Action, ...] = ("create", "replace", "patch", "delete", "import", "load",
                               "merge")
#: The actor of a write made through Python that names none.
DEFAULT_ACTOR = "local"
#: The actor of writes made by the ``netgis`` command line.
CLI_ACTOR = "cli"
#: What a write of items did to each of its features (``audit_ids.action``).
_ID_ACTIONS: dict[str, str] = {"create": "insert", "replace": "replace", "patch": "patch",
                               "delete": "delete"}
#: The counts of a bulk load per layer, by what happened to the ids.
_COUNT_NAMES = {"insert": "inserted", "replace": "replaced", "delete": "deleted"}


def _coordinates(node: object) -> object:
    # shapely's mapping() gives tuples; JSON columns read back lists, so store lists
    if isinstance(node, tuple | list):
        return [_coordinates(v) for v in node]
    if isinstance(node, dict):
        return {k: _coordinates(v) for k, v in node.items()}
    return node


def feature_collection(layer: str, frame: pd.DataFrame) -> dict[str, Any]:
    """``frame`` (one layer's validated rows, WGS84) as a GeoJSON FeatureCollection.

    Every field of the layer is a property (null when missing); each feature's
    ``id`` is its id field. Coordinates keep full precision. Rows of a strand layer
    (a plain DataFrame) are features with ``geometry: null`` whose id is their feature id
    (``cable_id:seq`` for ``cable_spans``, ``cable_id:strand`` for ``strand_state``).
    """
    if layer in STRAND_LAYERS:
        return _attribute_collection(layer, frame)
    fields = LAYERS[layer].field_names
    id_field = LAYERS[layer].id_field
    features = []
    geoms = np.asarray(frame.geometry.array, dtype=object)
    for (_, row), geom in zip(frame.iterrows(), geoms, strict=True):
        props = {name: json_safe(row[name]) if name in row.index else None for name in fields}
        features.append({
            "type": "Feature",
            "id": props[id_field],
            "properties": props,
            "geometry": None if geom is None else _coordinates(
                shapely.geometry.mapping(geom)),
        })
    return {"type": "FeatureCollection", "features": features}


def _attribute_collection(layer: str, frame: Any) -> dict[str, Any]:
    fields = STRAND_LAYERS[layer].field_names
    key = strand_key(layer)
    features = []
    for row in frame.to_dict("records"):
        props = {name: json_safe(row.get(name)) for name in fields}
        features.append({"type": "Feature", "id": ":".join(str(props[k]) for k in key),
                         "properties": props, "geometry": None})
    return {"type": "FeatureCollection", "features": features}


def _identity(conn: Connection, layer: str, table: Table) -> tuple[Any, Any]:
    """The id column (a strand layer's feature id expression) of ``layer``'s table, and
    each row as a GeoJSON Feature built by the database."""
    if layer in STRAND_LAYERS:
        fid = strand_feature_id(layer, table)
        fields = [(f.name, f.type) for f in STRAND_LAYERS[layer].fields]
        return fid, dialects.attribute_feature_json(conn.dialect, table, fields, fid)
    fields = [(f.name, f.type) for f in LAYERS[layer].fields]
    return table.c[LAYERS[layer].id_field], dialects.feature_json(
        conn.dialect, table, fields, LAYERS[layer].id_field)


def record(conn: Connection, *, actor: str, action: Action, layer: str,
           ids: Sequence[str], data_version: int,
           before: pd.DataFrame | None = None,
           after: pd.DataFrame | None = None) -> None:
    """Add the entry of a write of items to the audit log, on ``conn`` (inside the write's
    transaction), and its ids to ``audit_ids``.

    Parameters
    ----------
    action
        ``create``, ``replace``, ``patch`` or ``delete`` (bulk loads:
        :func:`begin_bulk`).
    ids
        The ids of the features written.
    data_version
        The version the write gave the database.
    before, after
        The changed features before and after (GeoDataFrames; plain frames for a
        strand layer); None for the side of a create or delete that has no feature.
    """
    if action not in _ID_ACTIONS:
        raise ValueError(f"not an action of a write of items: {action!r}")
    entry_id = _insert_entry(
        conn, actor=actor, action=action, layer=layer, feature_ids=[str(i) for i in ids],
        count=len(ids), data_version=data_version,
        before=None if before is None else feature_collection(layer, before),
        after=None if after is None else feature_collection(layer, after))
    rows = [{"audit_id": entry_id, "layer": layer, "feature_id": str(i),
             "action": _ID_ACTIONS[action]} for i in dict.fromkeys(ids)]
    if rows:
        conn.execute(insert(AUDIT_IDS), rows)


def begin_bulk(conn: Connection, *, actor: str, action: Action, mode: str,
               data_version: int, plan: str | None = None) -> int:
    """Start the one entry of a bulk load (``load``, ``import``, or ``merge`` of a plan)
    and return its id.

    Then, per layer, :func:`keep_before` before the load changes the layer and
    :func:`finish_layer` after; :func:`finish_bulk` last.
    """
    if action not in ("load", "import", "merge"):
        raise ValueError(f"not an action of a bulk load: {action!r}")
    return _insert_entry(conn, actor=actor, action=action, layer=None, feature_ids=None,
                         count=0, mode=mode, data_version=data_version, plan=plan)


def keep_before(conn: Connection, entry_id: int, layer: str, table: Table,
                ids: Sequence[str], action: Literal["replace", "delete"]) -> None:
    """Keep the stored features ``ids`` of ``layer`` as they are, under bulk entry
    ``entry_id``, as replaced or deleted by it: before the load changes them. One
    ``INSERT ... SELECT`` of GeoJSON built by the database (per chunk of ids on SQLite)."""
    id_col, feature = _identity(conn, layer, table)
    source = select(literal(entry_id), literal(layer), id_col, literal(action), feature)
    target = ["audit_id", "layer", "feature_id", "action", "before"]
    for condition in dialects.id_conditions(conn.dialect, id_col, ids) if ids else []:
        conn.execute(insert(AUDIT_IDS).from_select(target, source.where(condition)))


def finish_layer(conn: Connection, entry_id: int, layer: str, table: Table,
                 data_version: int) -> None:
    """Record the rows of ``layer`` the bulk load wrote (those of its ``data_version``) that
    :func:`keep_before` did not keep as replaced: they are inserted."""
    id_col = _identity(conn, layer, table)[0]
    kept = exists().where(AUDIT_IDS.c.audit_id == entry_id, AUDIT_IDS.c.layer == layer,
                          AUDIT_IDS.c.feature_id == id_col)
    conn.execute(insert(AUDIT_IDS).from_select(
        ["audit_id", "layer", "feature_id", "action"],
        select(literal(entry_id), literal(layer), id_col, literal("insert"))
        .where(table.c[ROW_VERSION] == data_version, ~kept)))


def finish_bulk(conn: Connection, entry_id: int,
                layers: Sequence[str] = LOAD_ORDER) -> dict[str, dict[str, int]]:
    """Count the ids of bulk entry ``entry_id`` per layer into the entry; returns the counts
    (``{layer: {"inserted", "replaced", "deleted"}}``: every layer of ``layers``, and any
    other layer the entry wrote or deleted features of)."""
    counts = {layer: dict.fromkeys(_COUNT_NAMES.values(), 0) for layer in layers}
    for layer, action, n in conn.execute(
            select(AUDIT_IDS.c.layer, AUDIT_IDS.c.action, func.count())
            .where(AUDIT_IDS.c.audit_id == entry_id)
            .group_by(AUDIT_IDS.c.layer, AUDIT_IDS.c.action)):
        counts.setdefault(layer, dict.fromkeys(_COUNT_NAMES.values(), 0))
        counts[layer][_COUNT_NAMES[action]] = int(n)
    total = sum(n for per_layer in counts.values() for n in per_layer.values())
    conn.execute(update(AUDIT_LOG).where(AUDIT_LOG.c.id == entry_id)
                 .values(counts=counts, count=total))
    return counts


def _insert_entry(conn: Connection, *, actor: str, action: Action, layer: str | None,
                  feature_ids: list[str] | None, count: int, data_version: int,
                  mode: str | None = None, before: dict[str, Any] | None = None,
                  after: dict[str, Any] | None = None, plan: str | None = None) -> int:
    values: dict[str, Any] = dict(
        changed_at=datetime.now(UTC), actor=str(actor), action=action, layer=layer,
        feature_ids=feature_ids, count=count, mode=mode, data_version=int(data_version),
        before=before, after=after)
    if plan is not None:
        # only merges name a plan: other writes work on a database not yet at revision 0008
        values["plan"] = plan
    result = conn.execute(insert(AUDIT_LOG).values(**values).returning(AUDIT_LOG.c.id))
    return int(result.scalar_one())


def entry(row: Any) -> dict[str, Any]:
    """A stored row as the API and the command line show it (``time``: aware UTC)."""
    when: datetime = row["changed_at"]
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    ids = row["feature_ids"]
    return {
        "id": int(row["id"]),
        "time": when,
        "actor": row["actor"],
        "action": row["action"],
        "layer": row["layer"],
        "feature_ids": None if ids is None else list(ids),
        "count": int(row["count"]),
        "counts": row["counts"],
        "mode": row["mode"],
        "data_version": int(row["data_version"]),
        "before": row["before"],
        "after": row["after"],
        "plan": row.get("plan"),
    }


def entry_id_row(row: Any) -> dict[str, Any]:
    """A row of ``audit_ids`` as the API and the command line show it."""
    return {"layer": row["layer"], "id": row["feature_id"], "action": row["action"],
            "before": row["before"]}
