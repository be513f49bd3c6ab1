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

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from geopandas.array import from_shapely
from sqlalchemy import (
    Connection,
    Integer,
    LargeBinary,
    Select,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
)

from netgis.dataset import empty_layer
from netgis.schema import LAYER_NAMES, LAYERS, STRAND_LAYER_NAMES
from netgis.storage import dialects
from netgis.storage.models import (
    AUDIT_IDS,
    AUDIT_LOG,
    LAYER_TABLES,
    ROW_VERSION,
    SRID,
    STRAND_TABLES,
)

#: ``audit_log.action`` of the bulk loads.
BULK_ACTIONS = ("load", "import", "merge")


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
    strands
        The strand layers (revision 0009) some of the writes wrote or deleted rows of:
        a reader of the strand plant reads those again (they are attribute tables,
        small beside the route layers). Not counted in :attr:`count`.
    """

    since: int
    version: int
    rows: dict[str, gpd.GeoDataFrame]
    deleted: dict[str, list[str]]
    bulk: bool
    replaced_all: bool
    strands: frozenset[str] = frozenset()

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
                     rows={name: _empty(name) for name in LAYER_NAMES},
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
    # the entries of the range that may have deleted features (item deletes, replace
    # loads): few as a rule, and their ids are what the deleted ids are looked up by
    deleting = conn.execute(_deleting_entries(), {"since": since}).all()
    entries = [int(row[0]) for row in deleting]
    any_replace = any(row[1] in BULK_ACTIONS for row in deleting)
    # a replace load logged before audit_ids (0006) did not record the ids it deleted
    unknown = any(row[1] in BULK_ACTIONS and row[3] for row in deleting)
    # one statement: the first entry of the range, and how large the change is
    params = {"since": since, "entries": entries,
              "cap": None if max_rows is None else max_rows + 1}
    facts = conn.execute(_facts(max_rows is not None, bool(entries)), params).one()
    first_logged, any_bulk = facts[:2]
    changed = dict(zip(LAYER_NAMES, facts[2:2 + len(LAYER_NAMES)], strict=True))
    gone = dict(zip(LAYER_NAMES, facts[2 + len(LAYER_NAMES):], strict=True)) if entries \
        else dict.fromkeys(LAYER_NAMES, 0)
    # data versions are dense (a write takes the next one or rolls back) and every write
    # since revision 0004 logs an entry: a range not starting with an entry reaches
    # writes before the log
    if first_logged != since + 1 or unknown:
        return None
    if max_rows is not None and sum(changed.values()) + sum(gone.values()) > max_rows:
        return None
    rows = {name: _frame(name, conn.execute(_rows(name), params).all()) if changed[name]
            else _empty(name) for name in LAYER_NAMES}
    deleted = {name: sorted(conn.execute(_deleted_ids(name), params).scalars())
               if gone[name] else [] for name in LAYER_NAMES}
    strands: frozenset[str] = frozenset()
    if dialects.table_exists(conn, "strand_state"):  # revision 0009 or later
        touched = conn.execute(_strand_facts(bool(entries)), params).one()
        n = len(STRAND_LAYER_NAMES)
        strands = frozenset(name for i, name in enumerate(STRAND_LAYER_NAMES)
                            if touched[i] or (entries and touched[n + i]))
    return ChangeSet(since=since, version=version, rows=rows, deleted=deleted,
                     bulk=bool(any_bulk), replaced_all=bool(any_replace), strands=strands)


# The statements, built once per shape (building one costs about as much as running it);
# they take the parameters ``since``, ``cap`` (the most rows a count counts) and
# ``entries`` (the ids of the audit entries that deleted features).


@functools.cache
def _deleting_entries() -> Select[Any]:
    """The audit entries after ``since`` that may have deleted features (item deletes and
    replace loads; on ``ix_audit_log_data_version``): id, action, mode, and whether it has
    no counts (a load logged before revision 0006)."""
    log = AUDIT_LOG
    replace = and_(log.c.action.in_(BULK_ACTIONS), log.c.mode == "replace")
    return select(log.c.id, log.c.action, log.c.mode, log.c.counts.is_(None)).where(
        log.c.data_version > _since(), or_(log.c.action == "delete", replace))


@functools.cache
def _facts(capped: bool, deleting: bool) -> Select[Any]:
    """The first data version the log knows after ``since``, whether a bulk load is among
    the writes, and per layer how many rows changed and (``deleting``) ids were deleted,
    each count stopping at ``cap`` (``capped``)."""
    log = AUDIT_LOG
    in_range = log.c.data_version > _since()
    return select(
        select(func.min(log.c.data_version)).where(in_range).scalar_subquery(),
        exists().where(in_range, log.c.action.in_(BULK_ACTIONS)),
        *(_count(_changed_ids(name), capped) for name in LAYER_NAMES),
        *(_count(_deleted_ids(name), capped) for name in LAYER_NAMES if deleting))


@functools.cache
def _strand_facts(deleting: bool) -> Select[Any]:
    """Per strand layer, whether a row was written after ``since`` (on
    ``ix_<layer>_row_version``) and (``deleting``) whether the entries ``entries`` deleted
    a row of it."""
    listed = bindparam("entries", type_=Integer, expanding=True, literal_execute=True)
    ids = AUDIT_IDS
    columns: list[Any] = [exists().where(STRAND_TABLES[name].c[ROW_VERSION] > _since())
                          for name in STRAND_LAYER_NAMES]
    if deleting:
        columns += [exists().where(ids.c.audit_id.in_(listed), ids.c.layer == name,
                                   ids.c.action == "delete") for name in STRAND_LAYER_NAMES]
    return select(*columns)


def _since() -> Any:
    return bindparam("since", type_=Integer)


def _changed_ids(layer: str) -> Select[Any]:
    """The ids of ``layer`` written after ``since`` (on ``ix_<layer>_row_version``)."""
    table = LAYER_TABLES[layer]
    return select(table.c[LAYERS[layer].id_field]).where(table.c[ROW_VERSION] > _since())


@functools.cache
def _deleted_ids(layer: str) -> Select[Any]:
    """The ids of ``layer`` that the audit entries ``entries`` deleted and that are absent
    now, each once: on the primary key of ``audit_ids`` (entry, layer, id), then the
    layer's.

    The entries are given as numbers, written into the statement when it runs (no limit
    of bound parameters): the databases plan with them. From a subquery instead,
    PostgreSQL estimates the matches of each entry from the statistics of
    ``audit_ids.audit_id``, which has few distinct values (a bulk load is one entry with a
    million ids), and scans the whole table; SQLite joins in the order of the DISTINCT,
    scanning it too.
    """
    ids, table = AUDIT_IDS, LAYER_TABLES[layer]
    listed = bindparam("entries", type_=Integer, expanding=True, literal_execute=True)
    present = exists().where(table.c[LAYERS[layer].id_field] == ids.c.feature_id)
    return (select(ids.c.feature_id).distinct()
            .where(ids.c.audit_id.in_(listed), ids.c.layer == layer,
                   ids.c.action == "delete", ~present))


def _count(ids: Select[Any], capped: bool) -> Any:
    """How many rows ``ids`` gives, counting at most ``cap`` (``capped``) or all."""
    inner = ids.limit(bindparam("cap", type_=Integer)) if capped else ids
    return select(func.count()).select_from(inner.subquery()).scalar_subquery()


@functools.cache
def _rows(layer: str) -> Select[Any]:
    """The rows of ``layer`` written after ``since``: its fields and WKB geometry."""
    table = LAYER_TABLES[layer]
    return select(*(table.c[f.name] for f in LAYERS[layer].fields),
                  func.ST_AsBinary(table.c.geometry, type_=LargeBinary)
                  ).where(table.c[ROW_VERSION] > _since())


def _frame(layer: str, rows: Sequence[Any]) -> gpd.GeoDataFrame:
    """Rows of :func:`_rows` as the clean frame validation gives, ordered by id.

    The stored rows were validated when written, so only the column types need
    setting as :mod:`netgis.validate` sets them: text (enums and ids included)
    as Python objects with None for missing, integers ``Int64``, booleans
    ``bool``. No check runs, and none needs the other layers.
    """
    if not rows:
        return _empty(layer)
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
    # the geometry as an array that carries the CRS: half the cost of a GeoSeries and a
    # crs argument, which matters for change sets of a few rows
    data["geometry"] = from_shapely(geoms, crs=SRID)
    return gpd.GeoDataFrame(data, geometry="geometry")


_EMPTY: dict[str, gpd.GeoDataFrame] = {}


def _empty(layer: str) -> gpd.GeoDataFrame:
    """A new empty clean frame of ``layer`` (a copy of one made once: making one costs a
    few milliseconds, copying it a tenth of one)."""
    if layer not in _EMPTY:
        _EMPTY[layer] = empty_layer(layer, SRID)
    return _EMPTY[layer].copy()
