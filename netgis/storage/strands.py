"""The strand-level plant in the database: seven attribute tables beside the route layers.

``cables``, ``cable_spans``, ``splitters``, ``olt_ports``, ``connections``, ``drops``
and ``strand_state`` (revision 0009; fields: :data:`netgis.schema.STRAND_LAYERS`) are
stored without geometry. A row is named by its *feature id*: the id field, or for the
two layers without one ``cable_id:seq`` (``cable_spans``) and ``cable_id:strand``
(``strand_state``).

- Every write keeps the whole strand plant valid: the candidate state (the stored
  strand tables with the write applied) is checked by
  :func:`netgis.strand_plant.validate_strands` against the stored route layers,
  inside the write's transaction, and any error refuses the write
  (:class:`ValidationError`, nothing written). Single-row writes:
  :class:`netgis.storage.strand_store.StrandStore`; this module holds what works on
  a connection (reads, writes, keys, validation) and imports no repository.
- Like the route layers, each write takes the next data version, stamps the rows it
  writes with it (``row_version``: ETags and the change feed) and leaves one audit
  entry (features with ``geometry: null``).
- Bulk loads of strand tables go with a route load
  (:meth:`netgis.storage.Repository.load_dataset`, ``strands=``); route writes that
  would leave a strand row naming a missing node, span or premise are refused
  (:func:`route_references`).
- Values are stored as validation types them, except that a field left empty whose
  default depends on other fields (``fibers_per_tube``) stays empty, so the default
  follows those fields when they change.

Examples
--------
>>> parse_feature_id("cable_spans", "C:7:2"), parse_feature_id("cables", "C:7")
(('C:7', 2), ('C:7',))
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    delete,
    exists,
    func,
    insert,
    select,
)

from netgis.dataset import Dataset
from netgis.errors import ConflictError, NotFoundError, ParameterError, Problem, ValidationError
from netgis.schema import LAYER_NAMES, STRAND_LAYER_NAMES, STRAND_LAYERS
from netgis.storage import audit, dialects
from netgis.storage.models import (
    INT_MAX,
    INT_MIN,
    ROW_VERSION,
    STRAND_TABLES,
    strand_feature_id,
    strand_key,
)

if TYPE_CHECKING:
    from netgis.storage.repository import Repository

_WHOLE = re.compile(r"-?[0-9]+")
#: How many rows naming a deleted route feature a refusal lists.
_LISTED = 20


# ------------------------------------------------------------------------------ feature ids

def check_layer(layer: str) -> None:
    """:class:`NotFoundError` unless ``layer`` is a strand layer."""
    if layer not in STRAND_TABLES:
        raise NotFoundError("layers", str(layer))


def feature_id(layer: str, values: Sequence[Any]) -> str:
    """The feature id of a row whose key fields hold ``values``.

    Examples
    --------
    >>> feature_id("strand_state", ("C1", 12)), feature_id("drops", ("d1",))
    ('C1:12', 'd1')
    """
    return ":".join(str(v) for v in values)


def parse_feature_id(layer: str, fid: str) -> tuple[Any, ...]:
    """The key values of feature id ``fid``; :class:`NotFoundError` when it cannot name a
    row of ``layer`` (a keyed layer's id is ``text:number``, split at the last colon)."""
    key = strand_key(layer)
    if len(key) == 1:
        return (str(fid),)
    head, sep, tail = str(fid).rpartition(":")
    if not sep or not head or not _WHOLE.fullmatch(tail) or not INT_MIN <= int(tail) <= INT_MAX:
        raise NotFoundError(layer, str(fid))
    return (head, int(tail))


def key_condition(layer: str, values: Sequence[Any]) -> ColumnElement[bool]:
    table = STRAND_TABLES[layer]
    return and_(*(table.c[k] == v for k, v in zip(strand_key(layer), values, strict=True)))


def key_value(kind: str, value: Any) -> Any:
    """A key cell as validation types it, or None when it would not pass (validation then
    names it)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if kind == "int":
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            return None
        return int(number) if number is not None and number.is_integer() else None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def row_keys(layer: str, frame: pd.DataFrame) -> list[tuple[Any, ...] | None]:
    """The typed key of each row of ``frame`` (None where a key cell is missing or bad)."""
    spec = STRAND_LAYERS[layer]
    key = strand_key(layer)
    columns = [frame[k].tolist() if k in frame.columns else [None] * len(frame) for k in key]
    out: list[tuple[Any, ...] | None] = []
    for cells in zip(*columns, strict=True):
        values = tuple(key_value(spec.field(k).type, v) for k, v in zip(key, cells,
                                                                          strict=True))
        out.append(None if any(v is None for v in values) else values)
    return out


def frame_ids(layer: str, frame: pd.DataFrame) -> list[str]:
    """The feature ids of a typed frame's rows."""
    return [feature_id(layer, k) for k in row_keys(layer, frame) if k is not None]


# ------------------------------------------------------------------------------ frames

def empty_table(layer: str) -> pd.DataFrame:
    """An empty frame of ``layer``'s fields (object columns, as validation types them)."""
    return pd.DataFrame({f: pd.Series([], dtype=object)
                         for f in STRAND_LAYERS[layer].field_names})


def _rows_frame(columns: Sequence[str], rows: Sequence[Any]) -> pd.DataFrame:
    data = {c: pd.Series([row[i] for row in rows], dtype=object)
            for i, c in enumerate(columns)}
    return pd.DataFrame(data, columns=list(columns), index=pd.RangeIndex(len(rows)))


def select_rows(conn: Connection, layer: str, *, where: Sequence[Any] = (),
                descending: bool = False, limit: int | None = None, offset: int | None = None,
                with_version: bool = False) -> pd.DataFrame:
    """Rows of ``layer`` ordered by key: its fields as Python values (None for missing), in
    contract order, and ``row_version`` with ``with_version``."""
    table = STRAND_TABLES[layer]
    columns = [*STRAND_LAYERS[layer].field_names, *([ROW_VERSION] if with_version else [])]
    order = [table.c[k].desc() if descending else table.c[k] for k in strand_key(layer)]
    stmt = select(*(table.c[c] for c in columns)).where(*where).order_by(*order)
    if limit is not None:
        stmt = stmt.limit(limit)
    if offset:
        stmt = stmt.offset(offset)
    return _rows_frame(columns, conn.execute(stmt).all())


def read_tables(conn: Connection) -> dict[str, pd.DataFrame]:
    """All seven strand tables, read on ``conn`` (each ordered by key)."""
    return {name: select_rows(conn, name) for name in STRAND_LAYER_NAMES}


def counts(conn: Connection) -> dict[str, int]:
    """Rows per strand table."""
    return {name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for name, table in STRAND_TABLES.items()}


def migrated(conn: Connection) -> bool:
    """Whether the database has the strand tables (revision 0009 or later): route reads and
    writes keep working on a database of an older revision, where there are none."""
    return dialects.table_exists(conn, "strand_state")


def has_rows(conn: Connection) -> bool:
    """Whether any strand table holds a row (False before revision 0009)."""
    if not migrated(conn):
        return False
    row = conn.execute(select(*(exists().select_from(t) for t in STRAND_TABLES.values()))
                       ).one()
    return any(bool(v) for v in row)


def write_rows(conn: Connection, layer: str, frame: pd.DataFrame, *, upsert: bool,
               version: int) -> None:
    """Write typed rows to ``layer``, each stamped with ``version`` (``upsert``: replacing
    rows of the same key)."""
    if frame.empty:
        return
    table = STRAND_TABLES[layer]
    names = STRAND_LAYERS[layer].field_names
    records = [{**{n: db_value(v) for n, v in zip(names, row, strict=True)},
                ROW_VERSION: version}
               for row in frame[names].itertuples(index=False, name=None)]
    stmt = dialects.upsert_statement(conn.dialect, table, [*names, ROW_VERSION]) if upsert \
        else insert(table)
    conn.execute(stmt, records)


def db_value(value: Any) -> Any:
    """A typed cell as the database driver takes it: None for missing, no numpy types."""
    if missing(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def storable(layer: str, typed: pd.DataFrame, given: pd.DataFrame) -> pd.DataFrame:
    """The typed rows of ``layer`` as stored: a field without a fixed default that was left
    empty in ``given`` (the same rows, as sent) stays empty, so a default derived from
    other fields (a cable's ``fibers_per_tube``) is not frozen at today's value."""
    if len(typed) != len(given):
        raise ValidationError([Problem(layer, None, None, "the validated layer lost rows")])
    out = typed.reset_index(drop=True).copy()
    for f in STRAND_LAYERS[layer].fields:
        if f.required or f.default is not None:
            continue
        sent = given[f.name].tolist() if f.name in given.columns else [None] * len(given)
        out[f.name] = pd.Series([None if missing(s) else v for s, v in
                                 zip(sent, out[f.name].tolist(), strict=True)], dtype=object)
    return out


# ------------------------------------------------------------------------------ validation

def validate(dataset: Dataset, tables: Mapping[str, pd.DataFrame]
             ) -> tuple[dict[str, pd.DataFrame], list[Problem]]:
    """The tables as stored (:func:`storable`) and the warnings, when the strand plant
    ``tables`` (all seven, raw or typed) is valid on the route ``dataset``; else a
    :class:`ValidationError` listing every error."""
    from netgis.strand_plant import validate_strands

    given = {name: tables[name] if name in tables else empty_table(name)
             for name in STRAND_LAYER_NAMES}
    report = validate_strands(dataset, given)
    typed = report.raise_for_errors()
    return ({name: storable(name, typed[name], given[name].reset_index(drop=True))
             for name in STRAND_LAYER_NAMES}, list(report.warnings))


def read_route_dataset(conn: Connection, repo: Repository) -> Dataset:
    """The route layers as ``conn`` sees them (inside a write: with its changes)."""
    from netgis.validate import validate_frames

    frames = {name: repo._select_frame(conn, name) for name in LAYER_NAMES}
    return validate_frames(frames).dataset_or_raise()


def check_plant(conn: Connection, repo: Repository) -> None:
    """A :class:`ValidationError` unless the stored strand plant (if any) is valid on the
    stored route layers, both as ``conn`` sees them."""
    if not has_rows(conn):
        return
    validate(read_route_dataset(conn, repo), read_tables(conn))


#: The strand fields that name a route feature, by the route layer they name.
_NAMING: dict[str, tuple[tuple[str, str], ...]] = {
    "nodes": (("cables", "from_node"), ("cables", "to_node"), ("splitters", "node_id"),
              ("olt_ports", "node_id"), ("connections", "node_id"), ("drops", "node_id")),
    "spans": (("cable_spans", "span_id"),),
    "premises": (("drops", "premise_id"),),
}


def route_references(conn: Connection, layer: str, ids: Collection[str]) -> list[Problem]:
    """A problem per strand row that names one of the route features ``ids`` of ``layer``
    (a node, span or premise): what deleting them would leave dangling."""
    ids = [str(i) for i in ids]
    if not ids or layer not in _NAMING or not migrated(conn):
        return []
    problems: list[Problem] = []
    for strand_layer, column in _NAMING[layer]:
        table = STRAND_TABLES[strand_layer]
        fid = strand_feature_id(strand_layer, table)
        for condition in dialects.id_conditions(conn.dialect, table.c[column], ids):
            rows = conn.execute(select(table.c[column], fid).where(condition)
                                .order_by(table.c[column], fid).limit(_LISTED)).all()
            for ref, row_id in rows:
                problems.append(Problem(layer, str(ref), None,
                                        f"still named by {strand_layer} {row_id} ({column})"))
            if len(problems) >= _LISTED:
                return problems[:_LISTED]
    return problems


def fields_only(layer: str, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with only ``layer``'s fields (in contract order; a field not sent is
    empty); a column that is not a field is a :class:`ValidationError` naming it."""
    names = STRAND_LAYERS[layer].field_names
    unknown = [c for c in rows.columns if c not in names]
    if unknown:
        raise ValidationError([Problem(layer, None, str(c), "not a field of this layer")
                               for c in unknown])
    return pd.DataFrame({n: rows[n].astype(object) if n in rows.columns
                         else pd.Series([None] * len(rows), dtype=object) for n in names},
                        index=pd.RangeIndex(len(rows)))


def filter_value(layer: str, table: Table, key: str, value: str) -> ColumnElement[bool]:
    """``field = value`` with ``value`` typed by the field (a 400/422 when it does not fit)."""
    spec = STRAND_LAYERS[layer]
    if key not in spec.field_names:
        raise ValidationError([Problem(layer, None, key, "cannot filter on this; fields are "
                                       + ", ".join(spec.field_names))])
    kind = spec.field(key).type
    text = str(value).strip()
    if kind == "int":
        if not _WHOLE.fullmatch(text):
            raise ValidationError([Problem(layer, None, key, f"not an integer: {value!r}")])
        number = int(text)
        if not INT_MIN <= number <= INT_MAX:
            raise ParameterError([Problem("query", None, key,
                                          f"out of range: {INT_MIN} to {INT_MAX}")],
                                 f"{key} {number} is out of range ({INT_MIN} to {INT_MAX})")
        return table.c[key] == number
    if kind == "float":
        try:
            return table.c[key] == float(text)
        except ValueError:
            raise ValidationError([Problem(layer, None, key,
                                           f"not a number: {value!r}")]) from None
    return table.c[key] == text


# ------------------------------------------------------------------------------ bulk loads

def merge_tables(layer: str, stored: pd.DataFrame, given: pd.DataFrame, *,
                 upsert: bool) -> tuple[pd.DataFrame, int]:
    """``stored`` rows of ``layer`` with ``given`` ones added after them, and where the
    given rows start: ``upsert`` drops stored rows of the same key, otherwise a key that
    is stored already is a :class:`ConflictError`."""
    given = fields_only(layer, given)
    keys = {k for k in row_keys(layer, given) if k is not None}
    stored_keys = row_keys(layer, stored)
    clash = [k for k in stored_keys if k in keys]
    if clash and not upsert:
        raise ConflictError([Problem(layer, feature_id(layer, k), strand_key(layer)[-1],
                                     "id already exists in the database (load with mode "
                                     "upsert to replace it, or replace to load this dataset "
                                     "instead of the stored one)") for k in clash])
    kept = stored[[k not in keys for k in stored_keys]] if clash else stored
    return pd.concat([kept, given], ignore_index=True), len(kept)


def load_tables(conn: Connection, entry_id: int, stored: Mapping[str, pd.DataFrame],
                tables: Mapping[str, pd.DataFrame], *, mode: str, version: int) -> dict[str, int]:
    """Write the validated strand ``tables`` of a bulk load (audit entry ``entry_id``),
    given what was ``stored`` before: ``replace`` empties the strand tables first, the
    other modes add (upsert: replace) rows by key. Returns rows written per layer."""
    written: dict[str, int] = {}
    for name in STRAND_LAYER_NAMES:
        table = STRAND_TABLES[name]
        frame = tables.get(name)
        new_ids = set(frame_ids(name, frame)) if frame is not None else set()
        old_ids = frame_ids(name, stored[name])
        again = sorted(i for i in old_ids if i in new_ids)
        _keep_before(conn, entry_id, name, table, again, "replace")
        if mode == "replace":
            _keep_before(conn, entry_id, name, table,
                         sorted(i for i in old_ids if i not in new_ids), "delete")
            conn.execute(delete(table))
        if frame is not None:
            write_rows(conn, name, frame, upsert=mode == "upsert", version=version)
            written[name] = len(frame)
        audit.finish_layer(conn, entry_id, name, table, version)
    return written


def _keep_before(conn: Connection, entry_id: int, layer: str, table: Table,
                 ids: Sequence[str], action: Any) -> None:
    if ids:
        audit.keep_before(conn, entry_id, layer, table, ids, action)


__all__ = ["check_plant", "counts", "feature_id", "has_rows", "load_tables",
           "merge_tables", "parse_feature_id", "read_tables", "route_references", "row_keys",
           "select_rows", "validate", "write_rows"]
