"""The change feed: what the writes after a data version changed, read in one snapshot.

A reader that holds the dataset of data version ``since`` (from
:meth:`netgis.storage.Repository.read_consistent`) brings it to the current
version with a :class:`ChangeSet` (:meth:`netgis.storage.Repository.changes_since`)
instead of reading every layer again:

- the rows the writes left: every row of a layer with ``row_version > since``
  (each write stamps the rows it writes with its data version), as they are now;
- the ids they deleted: the ``audit_ids`` rows of action ``delete`` of the
  ``audit_log`` entries with ``data_version > since``, less the ids present
  now (deleted and written again: they are among the rows);
- whether a bulk load (``load``, ``import``) is among the writes, and one of
  mode ``replace``.

Drop the deleted ids and the ids of the rows from the frames of ``since``,
append the rows, and the frames hold exactly what ``read_consistent`` gives
at the change set's version (same columns, dtypes and values, WGS84; the row
order aside). Everything is read in the caller's one read transaction, on the
indexes of revision 0007 (``ix_<layer>_row_version``,
``ix_audit_log_data_version``): a change of a few rows costs a few range scans
whatever the size of the layers. See docs/architecture.md, "The change feed".

Examples
--------
>>> from netgis.storage import Repository
>>> from netgis.io import read_dataset
>>> repo = Repository.from_url("sqlite:///:memory:"); repo.init()
>>> _ = repo.load_dataset(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
>>> repo.delete_item("premises", "p_far")
>>> change = repo.changes_since(1)
>>> change.version, change.deleted["premises"], change.count, change.bulk
(2, ['p_far'], 1, False)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, LargeBinary, Select, exists, func, select

from netgis.dataset import empty_layer
from netgis.schema import LAYER_NAMES, LAYERS
from netgis.storage.models import AUDIT_IDS, AUDIT_LOG, LAYER_TABLES, ROW_VERSION, SRID

#: ``audit_log.action`` of the bulk loads.
BULK_ACTIONS = ("load", "import")


@dataclass(frozen=True)
class ChangeSet:
    """What the writes with a data version in ``(since, version]`` changed.

    Attributes
    ----------
    since
        The data version the changes start after.
    version
        The data version read (that of the snapshot the change set comes from).
    rows
        Per layer (all four keys): the rows with ``row_version > since`` as
        they are at ``version``, ordered by id, in the clean form of
        :meth:`netgis.storage.Repository.read_consistent` (EPSG:4326).
    deleted
        Per layer (all four keys): the ids deleted by those writes and absent
        at ``version``, sorted.
    bulk
        A bulk load (``load`` or ``import``) is among the writes.
    replaced_all
        A bulk load of mode ``replace`` is among them.
    """

    since: int
    version: int
    rows: Mapping[str, gpd.GeoDataFrame]
    deleted: Mapping[str, list[str]]
    bulk: bool
    replaced_all: bool

    @property
    def count(self) -> int:
        """Changed rows and deleted ids over all layers."""
        return sum(len(frame) for frame in self.rows.values()) + sum(
            len(ids) for ids in self.deleted.values())

    @property
    def empty(self) -> bool:
        """Whether nothing changed (no row, no deleted id)."""
        return self.count == 0


def empty_change(version: int) -> ChangeSet:
    """The change set from ``version`` to itself: nothing.

    Examples
    --------
    >>> change = empty_change(4)
    >>> change.empty, sorted(change.rows), len(change.rows["nodes"])
    (True, ['areas', 'nodes', 'premises', 'spans'], 0)
    """
    return ChangeSet(since=version, version=version,
                     rows={name: empty_layer(name, SRID) for name in LAYER_NAMES},
                     deleted={name: [] for name in LAYER_NAMES}, bulk=False, replaced_all=False)


def read_changes(conn: Connection, since: int, version: int, *,
                 max_rows: int | None = None) -> ChangeSet | None:
    """The changes after ``since`` up to ``version``, read on ``conn``.

    ``conn`` is a read transaction (:func:`netgis.storage.engine.begin_read`)
    in which ``version`` was read: every statement here sees that snapshot.

    Parameters
    ----------
    since
        The data version the reader holds.
    version
        The data version of the snapshot.
    max_rows
        At most this many changed rows and deleted ids in all; more is None.
        They are counted first, each count stopping at ``max_rows + 1``, so a
        change too large costs about ``max_rows`` index entries, not its size.

    Returns
    -------
    ChangeSet or None
        None when ``since`` is negative or newer than ``version``, when the
        change is larger than ``max_rows``, or when the audit log cannot tell
        which ids were deleted: a write in the range has no entry (writes made
        before the log existed, revision 0004) or is a ``replace`` load logged
        before revision 0006, which did not record the ids it deleted.
    """
    if since < 0 or since > version:
        return None
    if since == version:
        return empty_change(version)
    log = AUDIT_LOG
    in_range = log.c.data_version > since
    bulk = log.c.action.in_(BULK_ACTIONS)
    cap = None if max_rows is None else max_rows + 1
    # one statement: what the log says of the range, and how large the change is
    facts = conn.execute(select(
        select(func.min(log.c.data_version)).where(in_range).scalar_subquery(),
        exists().where(in_range, bulk),
        exists().where(in_range, bulk, log.c.mode == "replace"),
        # a replace load logged before audit_ids (0006): its deleted ids are unknown
        exists().where(in_range, bulk, log.c.mode == "replace", log.c.counts.is_(None)),
        *(_count(_changed_ids(name, since), cap) for name in LAYER_NAMES),
        *(_count(_deleted_ids(name, since), cap) for name in LAYER_NAMES),
    )).one()
    first_logged, any_bulk, any_replace, unknown = facts[:4]
    changed = dict(zip(LAYER_NAMES, facts[4:4 + len(LAYER_NAMES)], strict=True))
    gone = dict(zip(LAYER_NAMES, facts[4 + len(LAYER_NAMES):], strict=True))
    # data versions are dense (a write takes the next one or rolls back) and every write
    # since revision 0004 logs an entry: a range not starting with an entry reaches
    # writes before the log
    if first_logged != since + 1 or unknown:
        return None
    if max_rows is not None and sum(changed.values()) + sum(gone.values()) > max_rows:
        return None
    rows = {name: _frame(name, conn.execute(_rows(name, since)).all()) if changed[name]
            else empty_layer(name, SRID) for name in LAYER_NAMES}
    deleted = {name: sorted(conn.execute(_deleted_ids(name, since)).scalars()) if gone[name]
               else [] for name in LAYER_NAMES}
    return ChangeSet(since=since, version=version, rows=rows, deleted=deleted,
                     bulk=bool(any_bulk), replaced_all=bool(any_replace))


def _changed_ids(layer: str, since: int) -> Select[Any]:
    """The ids of ``layer`` written after ``since`` (on ``ix_<layer>_row_version``)."""
    table = LAYER_TABLES[layer]
    return select(table.c[LAYERS[layer].id_field]).where(table.c[ROW_VERSION] > since)


def _deleted_ids(layer: str, since: int) -> Select[Any]:
    """The ids of ``layer`` deleted after ``since`` and absent now, each once.

    The entries of the range on ``ix_audit_log_data_version``, their ids on the
    primary key of ``audit_ids`` (entry, layer, id), presence on the layer's.
    Written as ``audit_id IN (entries)``: as a join, SQLite (without statistics)
    scans all of ``audit_ids`` in id order for the DISTINCT instead.
    """
    ids, log, table = AUDIT_IDS, AUDIT_LOG, LAYER_TABLES[layer]
    entries = select(log.c.id).where(log.c.data_version > since)
    present = exists().where(table.c[LAYERS[layer].id_field] == ids.c.feature_id)
    return (select(ids.c.feature_id).distinct()
            .where(ids.c.audit_id.in_(entries), ids.c.layer == layer,
                   ids.c.action == "delete", ~present))


def _count(ids: Select[Any], cap: int | None) -> Any:
    """How many rows ``ids`` gives, counting at most ``cap`` (None: all)."""
    inner = ids if cap is None else ids.limit(cap)
    return select(func.count()).select_from(inner.subquery()).scalar_subquery()


def _rows(layer: str, since: int) -> Select[Any]:
    """The rows of ``layer`` written after ``since``: its fields and WKB geometry."""
    table = LAYER_TABLES[layer]
    return select(*(table.c[f.name] for f in LAYERS[layer].fields),
                  func.ST_AsBinary(table.c.geometry, type_=LargeBinary)
                  ).where(table.c[ROW_VERSION] > since)


def _frame(layer: str, rows: Sequence[Any]) -> gpd.GeoDataFrame:
    """Rows of :func:`_rows` as the clean frame validation gives, ordered by id.

    The stored rows were validated when written, so only the column types need
    setting as :mod:`netgis.validate` sets them: text (enums and ids included)
    as Python objects with None for missing, integers ``Int64``, booleans
    ``bool``. No check runs, and none needs the other layers.
    """
    if not rows:
        return empty_layer(layer, SRID)
    fields = LAYERS[layer].fields
    key = LAYERS[layer].field_names.index(LAYERS[layer].id_field)
    columns = list(zip(*sorted(rows, key=lambda row: row[key]), strict=True))
    data: dict[str, Any] = {}
    for f, values in zip(fields, columns[:-1], strict=True):
        if f.type == "int":
            data[f.name] = pd.array(values, dtype="Int64")
        elif f.type == "bool":
            data[f.name] = np.asarray(values, dtype=bool)
        else:
            # object, as validation leaves text: a plain array would become pandas' str
            data[f.name] = pd.Series(values, dtype=object)
    geoms = shapely.from_wkb(np.asarray([bytes(b) for b in columns[-1]], dtype=object))
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=SRID), crs=SRID)
