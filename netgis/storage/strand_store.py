"""Reads and single-row writes of the strand layers of a repository (docs/access-and-audit.md).

:class:`StrandStore` (``StrandStore.of(repo)``) serves the strand collections of the
API: pages, rows by feature id, and inserts, replaces, patches and deletes that keep the
whole strand plant valid (:mod:`netgis.storage.strands`). Each write is one transaction:
the next data version, the candidate plant validated against the stored route layers,
the rows written with ``row_version``, one audit entry.

Examples
--------
>>> from netgis.storage import Repository
>>> repo = Repository.from_url("sqlite:///:memory:"); repo.init()
>>> rows, matched = StrandStore.of(repo).page("cables")
>>> list(rows.columns)[:3], matched
(['cable_id', 'from_node', 'to_node'], 0)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import pandas as pd
from sqlalchemy import Connection, delete, func, literal, select, tuple_, update

from netgis.dataset import Dataset
from netgis.errors import (
    ConflictError,
    NotFoundError,
    ParameterError,
    Problem,
    ValidationError,
    encodable,
)
from netgis.schema import STRAND_LAYER_NAMES, STRAND_LAYERS
from netgis.storage import audit
from netgis.storage.audit import DEFAULT_ACTOR
from netgis.storage.engine import begin_read, begin_write
from netgis.storage.filters import ParsedFilter, filter_condition
from netgis.storage.models import ROW_VERSION, STRAND_TABLES, strand_key
from netgis.storage.strands import (
    check_layer,
    db_value,
    feature_id,
    fields_only,
    filter_value,
    has_rows,
    key_condition,
    key_value,
    missing,
    parse_feature_id,
    read_route_dataset,
    read_tables,
    row_keys,
    select_rows,
    validate,
    write_rows,
)
from netgis.storage.transactions import check_version, next_version, storage_errors

if TYPE_CHECKING:
    from netgis.storage.repository import Repository


class StrandStore:
    """Reads and single-row writes of the strand layers of one repository.

    Writes validate the whole strand plant after the change against the stored route
    layers. The route layers are read in the write's transaction; after a write they
    are kept with its data version, so that the next strand write (data version one
    more, hence no write in between) checks against them without reading again.
    """

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self._route: tuple[int, Dataset] | None = None

    @classmethod
    def of(cls, repo: Repository) -> StrandStore:
        """The store of ``repo`` (``repo.strands``: one per repository, so that what it
        keeps serves every request)."""
        return repo.strands

    # ---------------------------------------------------------------- reads

    def tables(self) -> dict[str, pd.DataFrame]:
        """All seven strand tables (read in one snapshot)."""
        with storage_errors(), begin_read(self.repo.engine) as conn:
            return read_tables(conn)

    def present(self) -> bool:
        """Whether the database holds any strand row."""
        with storage_errors(), self.repo.engine.connect() as conn:
            return has_rows(conn)

    def get(self, layer: str, fid: str) -> tuple[pd.DataFrame, int]:
        """One row of ``layer`` (a one-row frame) and its version; :class:`NotFoundError`."""
        check_layer(layer)
        key = parse_feature_id(layer, fid)
        with storage_errors(), self.repo.engine.connect() as conn:
            return self._row(conn, layer, fid, key)

    def page(self, layer: str, *, filters: Mapping[str, str] | None = None,
             cql2: ParsedFilter | None = None, spatial: bool = False, limit: int = 10,
             offset: int = 0, after: str | None = None, before: str | None = None,
             count: bool = True) -> tuple[pd.DataFrame, int | None]:
        """One page of ``layer`` in key order, and how many rows match (None: not counted).

        ``filters`` are field equalities (values as text, typed by the field), ``cql2``
        a CQL2 filter on the fields; ``spatial`` (a bbox was asked for) matches nothing:
        the rows have no geometry. ``after`` / ``before`` are feature ids (keyset paging:
        the rows after the key, or the last ``limit`` before it, in ascending order).
        """
        check_layer(layer)
        table = STRAND_TABLES[layer]
        if limit < 0 or offset < 0:
            raise ValidationError([Problem(layer, None, "limit" if limit < 0 else "offset",
                                           "must be >= 0")])
        conditions: list[Any] = [filter_value(layer, table, k, v)
                                 for k, v in (filters or {}).items()]
        if cql2 is not None:
            conditions.append(filter_condition(cql2, layer, table, self.repo.engine.dialect))
        if spatial:
            conditions.append(literal(False))
        where = list(conditions)
        key_cols = tuple_(*(table.c[k] for k in strand_key(layer)))
        for position, op in ((after, "gt"), (before, "lt")):
            if position is not None:
                try:
                    values = parse_feature_id(layer, position)
                except NotFoundError:
                    raise ParameterError([Problem("query", None, "cursor",
                                                  "not a position in this collection")],
                                         f"the cursor names no position in {layer}") from None
                target = tuple_(*(literal(v) for v in values))
                where.append(key_cols > target if op == "gt" else key_cols < target)
        with storage_errors(), begin_read(self.repo.engine) as conn:
            matched = int(conn.execute(select(func.count()).select_from(table)
                                       .where(*conditions)).scalar_one()) if count else None
            rows = select_rows(conn, layer, where=where, descending=before is not None,
                               limit=limit, offset=offset)
        if before is not None:
            rows = rows.iloc[::-1].reset_index(drop=True)
        return rows, matched

    # ---------------------------------------------------------------- writes

    def insert(self, layer: str, rows: pd.DataFrame, *, actor: str = DEFAULT_ACTOR
               ) -> list[str]:
        """Add rows to ``layer`` (fields as sent); ids that exist are a
        :class:`ConflictError`, and the strand plant must stay valid. Returns the ids."""
        check_layer(layer)
        given = fields_only(layer, rows)
        edits = [StrandEdit(layer, "create", properties={str(k): v for k, v in row.items()})
                 for row in given.to_dict("records")]
        return self.apply(edits, actor=actor)[0]

    def replace(self, layer: str, fid: str, row: Mapping[str, Any], *,
                if_match: Collection[int] | None = None, actor: str = DEFAULT_ACTOR) -> int:
        """Replace every field of one row (key fields from ``fid``; a different key in
        ``row`` is a :class:`ValidationError`). Returns its new version."""
        edit = StrandEdit(layer, "replace", fid, dict(row), if_match)
        return self.apply([edit], actor=actor)[1]

    def patch(self, layer: str, fid: str, changes: Mapping[str, Any], *,
              if_match: Collection[int] | None = None, actor: str = DEFAULT_ACTOR) -> int:
        """Change some fields of one row; key fields cannot change. Returns its version."""
        return self.apply([StrandEdit(layer, "patch", fid, dict(changes), if_match)],
                          actor=actor)[1]

    def delete(self, layer: str, fid: str, *, if_match: Collection[int] | None = None,
               actor: str = DEFAULT_ACTOR) -> int:
        """Delete one row (the strand plant must stay valid without it); returns the data
        version of the write."""
        return self.apply([StrandEdit(layer, "delete", fid, None, if_match)], actor=actor)[1]

    def apply(self, edits: Sequence[StrandEdit], *, actor: str = DEFAULT_ACTOR
              ) -> tuple[list[str], int]:
        """Several writes of strand rows, across layers, as one: one transaction and data
        version, validated once on the result (a new cable and its cable_spans, a cable
        and everything naming it deleted).

        Each edit creates, replaces, patches or deletes one row; a row may be edited once
        per call. Raises :class:`NotFoundError` (a row to change that is not there),
        :class:`ConflictError` (ids to create that exist), :class:`PreconditionFailed`
        (``if_match``), :class:`ValidationError` (the plant the edits leave, every
        problem); nothing is written then. The audit log gets one entry per layer and
        kind of edit, with the rows before and after.

        Returns
        -------
        tuple of (list of str, int)
            The feature id of each edit's row, and the data version of the write (every
            row written has it as its version).
        """
        if not edits:
            raise ValidationError([Problem("edits", None, None, "no edit given")])
        for edit in edits:
            check_layer(edit.layer)
        repo = self.repo
        with storage_errors(), begin_write(repo.engine) as conn:
            version = next_version(conn)
            tables = {name: select_rows(conn, name, with_version=True)
                      for name in STRAND_LAYER_NAMES}
            plan = _Edits(tables)
            for edit in edits:
                plan.add(edit)
            plan.raise_problems()
            route = self._route_dataset(conn, version)
            stored, _ = validate(route, plan.candidate())
            ids = plan.write(conn, stored, version, actor=actor)
        self._route = (version, route)
        repo._written(version)
        return ids, version

    # ---------------------------------------------------------------- internals

    def _row(self, conn: Connection, layer: str, fid: str, key: tuple[Any, ...]
             ) -> tuple[pd.DataFrame, int]:
        frame = select_rows(conn, layer, where=[key_condition(layer, key)], with_version=True)
        if frame.empty:
            raise NotFoundError(layer, str(fid))
        version = int(cast(int, frame[ROW_VERSION].iat[0]))
        return frame.drop(columns=ROW_VERSION), version

    def _route_dataset(self, conn: Connection, version: int) -> Dataset:
        """The stored route layers for the write of ``version``: those kept from the write
        just before it (nothing else can have written in between), else read."""
        kept = self._route
        if kept is not None and kept[0] == version - 1:
            return kept[1]
        return read_route_dataset(conn, self.repo)


EditOp = Literal["create", "replace", "patch", "delete"]
EDIT_OPS: tuple[EditOp, ...] = ("create", "replace", "patch", "delete")


@dataclass(frozen=True)
class StrandEdit:
    """One write of one strand row: ``create`` (``properties``; the key fields among them,
    or taken from ``id``), ``replace`` (``id`` and every field), ``patch`` (``id`` and the
    fields to change) or ``delete`` (``id``); ``if_match``: the versions the row may have
    (None: any)."""

    layer: str
    op: EditOp
    id: str | None = None
    properties: Mapping[str, Any] | None = None
    if_match: Collection[int] | None = None


class _Edits:
    """Edits applied to the stored strand tables in memory: the candidate plant, and what
    to write once it is valid."""

    def __init__(self, stored: dict[str, pd.DataFrame]) -> None:
        self.versions = {name: frame[ROW_VERSION].tolist() for name, frame in stored.items()}
        self.stored = {name: frame.drop(columns=ROW_VERSION) for name, frame in stored.items()}
        #: per layer, its rows as sent (raw values) by key; None for a deleted key
        self.rows: dict[str, dict[Any, dict[str, Any] | None]] = {
            name: {} for name in STRAND_LAYER_NAMES}
        self.keys = {name: row_keys(name, frame) for name, frame in self.stored.items()}
        self.position = {name: {k: i for i, k in enumerate(keys)}
                         for name, keys in self.keys.items()}
        #: (layer, op, key) per edit, in order; key None for a create without a usable key
        self.done: list[tuple[str, EditOp, tuple[Any, ...] | None]] = []
        self.problems: list[Problem] = []
        self.conflicts: list[Problem] = []
        self._new: dict[str, list[dict[str, Any]]] = {name: [] for name in STRAND_LAYER_NAMES}

    def add(self, edit: StrandEdit) -> None:
        layer, spec = edit.layer, STRAND_LAYERS[edit.layer]
        key_names = strand_key(layer)
        props = dict(edit.properties or {})
        unknown = [k for k in props if k not in spec.field_names]
        shown = edit.id
        self.problems += [Problem(layer, shown, str(k), "not a field of this layer")
                          for k in unknown]
        # text no column store takes (a lone surrogate from a JSON "\ud800" escape)
        self.problems += [Problem(layer, shown, str(k), "text is not valid Unicode")
                          for k, v in props.items()
                          if not encodable(str(k)) or (isinstance(v, str) and not encodable(v))]
        if edit.op not in EDIT_OPS:
            self.problems.append(Problem(layer, shown, None, f"unknown edit {edit.op!r}"))
            return
        if edit.op == "create":
            if edit.id is not None:
                given = parse_feature_id(layer, edit.id) if len(key_names) > 1 else (edit.id,)
                for name, value in zip(key_names, given, strict=True):
                    sent = props.get(name)
                    if sent is not None and key_value(spec.field(name).type, sent) != value:
                        self.problems.append(Problem(layer, edit.id, name,
                                                     f"{sent!r} differs from the id"))
                    if sent is None:
                        props[name] = value
            row = {n: props.get(n) for n in spec.field_names}
            key = row_keys(layer, pd.DataFrame([row]))[0]
            if key is not None:
                if self._present(layer, key):
                    self.conflicts.append(Problem(layer, feature_id(layer, key), key_names[-1],
                                                  "id already exists"))
                    return
                self._touch(layer, key, edit)
                self.rows[layer][key] = row
            else:
                self._new[layer].append(row)  # validation names what is missing
            self.done.append((layer, "create", key))
            return
        if edit.id is None:
            self.problems.append(Problem(layer, None, key_names[-1], f"{edit.op} needs an id"))
            return
        key = parse_feature_id(layer, edit.id)
        if not self._present(layer, key):
            raise NotFoundError(layer, edit.id)
        if key in self.position[layer]:
            check_version(layer, edit.id,
                          int(self.versions[layer][self.position[layer][key]]), edit.if_match)
        self._touch(layer, key, edit)
        if edit.op == "delete":
            self.rows[layer][key] = None
        else:
            wrong = [Problem(layer, edit.id, name, f"{props[name]!r} differs from the id; "
                             "a key field cannot change (delete and create instead)")
                     for name, value in zip(key_names, key, strict=True)
                     if name in props and not missing(props[name])
                     and key_value(spec.field(name).type, props[name]) != value]
            self.problems += wrong
            if edit.op == "patch":
                current = self.stored[layer].iloc[self.position[layer][key]]
                row = {**{str(k): v for k, v in current.items()},
                       **{k: v for k, v in props.items() if k in spec.field_names}}
            else:
                row = {n: props.get(n) for n in spec.field_names}
            row.update(dict(zip(key_names, key, strict=True)))
            self.rows[layer][key] = row
        self.done.append((layer, edit.op, key))

    def _present(self, layer: str, key: tuple[Any, ...]) -> bool:
        if key in self.rows[layer]:
            return self.rows[layer][key] is not None
        return key in self.position[layer]

    def _touch(self, layer: str, key: tuple[Any, ...], edit: StrandEdit) -> None:
        if any(d[0] == layer and d[2] == key for d in self.done):
            self.problems.append(Problem(layer, feature_id(layer, key), None,
                                         "edited twice in one write"))

    def raise_problems(self) -> None:
        if self.problems:
            raise ValidationError(self.problems)
        if self.conflicts:
            raise ConflictError(self.conflicts)

    def candidate(self) -> dict[str, pd.DataFrame]:
        """The strand tables with the edits applied: stored rows in place (changed ones
        as sent), deleted ones gone, new ones after them."""
        out: dict[str, pd.DataFrame] = {}
        self.order: dict[str, list[Any]] = {}
        for name in STRAND_LAYER_NAMES:
            changes = self.rows[name]
            if not changes and not self._new[name]:
                out[name] = self.stored[name]
                self.order[name] = list(self.keys[name])
                continue
            records: list[dict[str, Any]] = []
            order: list[Any] = []
            for key, kept in zip(self.keys[name],
                                 self.stored[name].to_dict("records"), strict=True):
                row: dict[str, Any] = {str(k): v for k, v in kept.items()}
                if key in changes:
                    if changes[key] is None:
                        continue
                    row = cast(dict[str, Any], changes[key])
                records.append(row)
                order.append(key)
            for key, changed in changes.items():
                if changed is not None and key not in self.position[name]:
                    records.append(changed)
                    order.append(key)
            for new in self._new[name]:
                records.append(new)
                order.append(None)
            out[name] = pd.DataFrame(
                {c: pd.Series([r.get(c) for r in records], dtype=object)
                 for c in STRAND_LAYERS[name].field_names}, index=pd.RangeIndex(len(records)))
            self.order[name] = order
        return out

    def write(self, conn: Connection, stored: dict[str, pd.DataFrame], version: int, *,
              actor: str) -> list[str]:
        """Write the edited rows as validated (``stored``, the candidate's rows in order)
        and record one audit entry per layer and kind of edit; returns each edit's id."""
        typed: dict[str, dict[Any, pd.DataFrame]] = {}
        for name, order in self.order.items():
            if self.rows[name]:
                frame = stored[name]
                typed[name] = {key: frame.iloc[[i]].reset_index(drop=True)
                               for i, key in enumerate(order) if key in self.rows[name]}
        groups: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
        for layer, op, key in self.done:
            assert key is not None  # a create without a key does not pass validation
            table = STRAND_TABLES[layer]
            if op == "delete":
                conn.execute(delete(table).where(key_condition(layer, key)))
            elif op == "create":
                write_rows(conn, layer, typed[layer][key], upsert=False, version=version)
            else:
                row = typed[layer][key]
                values = {n: db_value(row[n].iat[0]) for n in STRAND_LAYERS[layer].field_names}
                conn.execute(update(table).where(key_condition(layer, key))
                             .values({**values, ROW_VERSION: version}))
            groups.setdefault((layer, op), []).append(key)
        for (layer, kind), keys in groups.items():
            before = [self.stored[layer].iloc[[self.position[layer][k]]]
                      for k in keys if k in self.position[layer]]
            after = [typed[layer][k] for k in keys if kind != "delete"]
            audit.record(conn, actor=actor, action=cast(audit.Action, kind), layer=layer,
                         ids=[feature_id(layer, k) for k in keys], data_version=version,
                         before=pd.concat(before, ignore_index=True) if before else None,
                         after=pd.concat(after, ignore_index=True) if after else None)
        return [feature_id(layer, key) for layer, _, key in self.done if key is not None]
