"""Read and write netgis datasets in SpatiaLite or PostGIS through one API.

Every write is validated by :mod:`netgis.validate` (the same contract as
files), runs in one transaction (all or nothing), increases the stored
``data_version``, so that several processes agree on what they are looking
at, and leaves an entry in the audit log in that same transaction
(:mod:`netgis.storage.audit`, :meth:`Repository.audit_log`). Geometries are
stored and returned in WGS84 (EPSG:4326).

Examples
--------
>>> from netgis.io import read_dataset
>>> repo = Repository.from_url("sqlite:///:memory:")
>>> repo.init()
>>> counts = repo.load_dataset(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
>>> counts["nodes"] > 0, repo.data_version()
(True, 1)
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict, Unpack, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy
from sqlalchemy import (
    Connection,
    LargeBinary,
    Table,
    and_,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)

from netgis.dataset import Dataset, empty_layer
from netgis.errors import (
    ConflictError,
    NotFoundError,
    ParameterError,
    Problem,
    StorageUnavailable,
    ValidationError,
)
from netgis.products.tiles import (
    PLACE_LAYERS,
    TileAddress,
    TileAttributes,
    encode_features,
    render_tile,
)
from netgis.schema import LAYER_NAMES, LAYERS, STRAND_LAYER_NAMES, STRAND_LAYERS, Field
from netgis.storage import audit, changes, dialects, migrate
from netgis.storage import strands as strand_rows
from netgis.storage import streets as street_rows
from netgis.storage.audit import DEFAULT_ACTOR
from netgis.storage.changes import ChangeSet
from netgis.storage.engine import (
    begin_read,
    begin_write,
    check_file_writable,
    create_engine,
    sqlite_file,
)
from netgis.storage.filters import ParsedFilter, filter_condition
from netgis.storage.models import (
    ANALYSIS_RUNS,
    AUDIT_IDS,
    AUDIT_LOG,
    INT_MAX,
    INT_MIN,
    KPI_SNAPSHOTS,
    LAYER_TABLES,
    LOAD_ORDER,
    ROW_VERSION,
    SRID,
    STRAND_TABLES,
)
from netgis.storage.strand_store import StrandStore
from netgis.storage.transactions import (
    check_version,
    next_version,
    read_version,
    storage_errors,
)
from netgis.validate import validate_frames

# the shared rules of writes and reads (netgis.storage.transactions), under the names the
# storage modules and the API have always imported them by
_check_version = check_version
_next_version = next_version
_read_version = read_version
_storage_errors = storage_errors

WriteMode = Literal["insert", "upsert", "replace"]
#: The load modes, in the order error messages name them.
WRITE_MODES: tuple[WriteMode, ...] = ("insert", "upsert", "replace")
#: How a bulk load is named in the audit log: ``import`` over HTTP, ``load`` otherwise.
LoadAction = Literal["load", "import"]
#: The version column read like a field, for :meth:`Repository._select_frame`.
_VERSION_FIELD = Field(ROW_VERSION, "int", required=True)
_TRUE = {"true", "1", "t", "yes", "y"}
_FALSE = {"false", "0", "f", "no", "n"}


class PageQuery(TypedDict, total=False):
    """Which features of a layer and which page of them: the parameters of
    :meth:`Repository.query_items` and :meth:`Repository.query_items_json` (see there)."""

    bbox: tuple[float, float, float, float] | None
    filters: Mapping[str, str] | None
    cql2: ParsedFilter | None
    limit: int
    offset: int
    after: str | None
    before: str | None


class LoadCounts(dict[str, int]):
    """Rows a load wrote per layer, and the data version it gave the database; ``warnings``
    are those of the strand plant the load left (none without one).

    Examples
    --------
    >>> counts = LoadCounts({"nodes": 3}, 7)
    >>> counts["nodes"], counts.data_version, counts.warnings
    (3, 7, [])
    """

    def __init__(self, counts: Mapping[str, int], data_version: int,
                 warnings: Sequence[Problem] = ()) -> None:
        super().__init__(counts)
        self.data_version = data_version
        self.warnings = list(warnings)


@dataclass(frozen=True)
class LayerExtent:
    """Where (WGS84 min lon, min lat, max lon, max lat) and when (first and last year) a
    layer's features lie; None when the layer is empty or has no such field."""

    bbox: tuple[float, float, float, float] | None
    years: tuple[int, int] | None = None


class Repository:
    """The netgis data in one database: layers, KPI snapshots and analysis runs.

    Parameters
    ----------
    engine
        From :func:`netgis.storage.create_engine` (SpatiaLite or PostGIS).

    Examples
    --------
    >>> repo = Repository.from_url("sqlite:///:memory:")
    >>> repo.init()
    >>> repo.count("premises"), repo.data_version()
    (0, 0)
    """

    def __init__(self, engine: sqlalchemy.Engine) -> None:
        dialects.dialect_name(engine.dialect)
        self.engine = engine
        #: Called with the new data version after each committed write of features (a load,
        #: an insert, replace, patch or delete), in the writer's thread. An API process
        #: sets it to wait until its live analysis reflects the write (api/live.py), so
        #: what it wrote is what it then reads.
        self.after_write: Callable[[int], None] | None = None

    def _written(self, version: int) -> None:
        if self.after_write is not None:
            self.after_write(version)

    @functools.cached_property
    def strands(self) -> StrandStore:
        """Reads and single-row writes of the strand layers
        (:class:`netgis.storage.strand_store.StrandStore`)."""
        return StrandStore(self)

    @classmethod
    def from_url(cls, url: str | None = None, *, create: bool = True) -> Repository:
        """A repository on the database at ``url`` (default: SpatiaLite ``./netgis.db``).

        ``create=False`` (what a server uses): a SpatiaLite file that does not
        exist is an outage (:class:`StorageUnavailable`), never created
        implicitly; :meth:`create_file` creates it on purpose.
        """
        return cls(create_engine(url, create=create))

    def close(self) -> None:
        """Close every pooled connection (the repository can be used again afterwards)."""
        self.engine.dispose()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ schema

    def init(self) -> None:
        """Create the spatial metadata/extension, tables and indexes (idempotent).

        Runs the packaged Alembic migrations up to the newest revision.
        """
        with _storage_errors():
            migrate.upgrade(self.engine)

    def create_file(self) -> bool:
        """Create the SpatiaLite file if there is none (empty; :meth:`init` adds the schema).

        Returns whether a file was created; nothing to do for PostgreSQL or an
        in-memory database.
        """
        path = sqlite_file(self.engine)
        if path is None or path.exists():
            return False
        with _storage_errors():
            sqlite3.connect(path).close()
        return True

    def check_writable(self) -> None:
        """Check what a write needs, without writing (for health checks).

        SpatiaLite: the file is there, is the one the pooled connections hold,
        and can be written (with its WAL files). PostgreSQL: the server answers
        and accepts writes (not a standby, not read-only). Either way the schema
        must be initialised.

        Raises
        ------
        StorageUnavailable
            When a write would fail now for a reason that may pass.
        StorageError
            When the database is not initialised.
        """
        with _storage_errors(), self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                check_file_writable(conn)
            elif conn.exec_driver_sql(
                    "SELECT pg_is_in_recovery() OR "
                    "current_setting('transaction_read_only') = 'on'").scalar():
                raise StorageUnavailable("the database server is read-only",
                                         reason="the database server refuses writes")
            _read_version(conn)

    def revision(self) -> str | None:
        """The migration revision of the database (None when never initialised)."""
        with _storage_errors():
            return migrate.current_revision(self.engine)

    # ------------------------------------------------------------- bulk loads

    def load_dataset(self, dataset: Dataset, *, mode: WriteMode = "insert",
                     actor: str = DEFAULT_ACTOR, action: LoadAction = "load",
                     require_empty: bool = False,
                     strands: Mapping[str, pd.DataFrame] | None = None) -> LoadCounts:
        """Validate and write a whole dataset in one transaction.

        ``insert`` refuses ids that already exist (a :class:`ConflictError`
        naming them); ``upsert`` replaces the stored rows with those ids and
        keeps the others; ``replace`` makes the database hold exactly this
        dataset (every stored feature of the four layers not in it is deleted).
        The dataset must be valid on its own (spans name nodes of the same
        dataset). Nothing is written if anything is wrong. ``require_empty``:
        a database that holds any feature already is a :class:`ConflictError`
        (checked in the load's transaction), so that a load never merges into
        data it was not meant for.

        ``strands`` are the dataset's strand layers (raw tables by name, as
        :func:`netgis.io.strands.read_strand_tables` reads them; see
        docs/access-and-audit.md): loaded in the same transaction and by the same
        mode (rows keyed by their feature id; ``replace`` makes the strand tables
        hold exactly these, a layer left out becoming empty). Whenever strand rows
        are loaded or stored, the strand plant the load leaves (with ``insert`` and
        ``upsert`` the stored rows merged with the loaded ones) must pass
        :func:`netgis.strand_plant.validate_strands` against the route layers the
        load leaves, or nothing is loaded (a :class:`ValidationError` listing every
        problem). None (the default): ``dataset.strands`` when it has any, else the
        load leaves the strand tables as they are (still checked against the new
        route layers when they hold rows).

        ``dataset.streets`` (the optional context layer) replaces the stored streets when
        the dataset has one (counted as ``streets``); a ``replace`` load without one
        removes them, any other load keeps them. Streets are not audited.

        The audit log gets one entry (``actor``, ``action``, the mode and, per
        layer, how many features were inserted, replaced and deleted; strand layers
        only when the load names or empties them); its ids, and the features it
        replaced or deleted as they were, are read with :meth:`audit_entry_ids`.

        Returns
        -------
        LoadCounts
            Rows written per layer, and the data version the load gave the database.

        Examples
        --------
        >>> from netgis.io import read_dataset
        >>> repo = Repository.from_url("sqlite:///:memory:"); repo.init()
        >>> counts = repo.load_dataset(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
        >>> counts["spans"], counts.data_version
        (6, 1)
        """
        if mode not in WRITE_MODES:
            raise ValidationError([Problem("dataset", None, "mode",
                                           f"unknown load mode {mode!r}; use "
                                           + ", ".join(WRITE_MODES))])
        if strands is None and dataset.strands:
            strands = dataset.strands  # read with the dataset (netgis.io.read_dataset)
        unknown = sorted(set(strands or {}) - set(STRAND_LAYERS))
        if unknown:
            raise ValidationError([Problem(name, None, None, "not a strand layer")
                                   for name in unknown])
        report = validate_frames(dataset.layers())
        clean = report.dataset_or_raise()
        frames = {name: _to_wgs84(frame) for name, frame in clean.layers().items()}
        with _storage_errors(), begin_write(self.engine) as conn:
            version = _next_version(conn)
            if require_empty:
                _check_empty(conn)
            route_was_empty = not any(conn.execute(select(*(
                exists().select_from(LAYER_TABLES[name]) for name in LOAD_ORDER))).one())
            existing = {name: self._existing_ids(conn, name, frames[name][LAYERS[name].id_field])
                        for name in LOAD_ORDER}
            if mode == "insert":
                conflicts = [
                    Problem(name, i, LAYERS[name].id_field,
                            "id already exists in the database (load with mode upsert to "
                            "replace it, or replace to load this dataset instead of the "
                            "stored one)")
                    for name in LOAD_ORDER for i in existing[name]]
                if conflicts:
                    raise ConflictError(conflicts)
            entry_id = audit.begin_bulk(conn, actor=actor, action=action, mode=mode,
                                        data_version=version)
            for name in LOAD_ORDER:
                # every stored feature the load writes again or removes, as it is now
                table = LAYER_TABLES[name]
                audit.keep_before(conn, entry_id, name, table, existing[name], "replace")
                if mode == "replace":
                    ids = table.c[LAYERS[name].id_field]
                    gone = set(conn.execute(select(ids)).scalars()) - set(existing[name])
                    audit.keep_before(conn, entry_id, name, table, sorted(gone), "delete")
            if mode == "replace":
                # spans before the nodes they reference
                for name in reversed(LOAD_ORDER):
                    conn.execute(delete(LAYER_TABLES[name]))
            for name in LOAD_ORDER:
                self._write(conn, name, frames[name], upsert=mode == "upsert", version=version)
                audit.finish_layer(conn, entry_id, name, LAYER_TABLES[name], version)
            route = clean if mode == "replace" or route_was_empty else None
            strand_counts, warnings = self._load_strands(conn, entry_id, strands, mode=mode,
                                                         version=version, route=route)
            audit.finish_bulk(conn, entry_id, [*LOAD_ORDER, *strand_counts])
            # the optional streets context: replaced when the dataset brings some, removed
            # by a replace without; a dataset without streets counts what it always did
            if dataset.streets is not None or mode == "replace":
                lines = street_rows.replace_streets(conn, dataset.streets)
                if dataset.streets is not None:
                    strand_counts = {**strand_counts, "streets": lines}
        self._written(version)
        return LoadCounts({**{name: len(frames[name]) for name in LOAD_ORDER},
                           **strand_counts}, version, warnings)

    def _load_strands(self, conn: Connection, entry_id: int,
                      given: Mapping[str, pd.DataFrame] | None, *, mode: WriteMode,
                      version: int, route: Dataset | None
                      ) -> tuple[dict[str, int], list[Problem]]:
        """The strand part of a bulk load, after its route layers are written: the strand
        plant the load leaves validated against the route layers it leaves (``route``, or
        read on ``conn`` when None), then the given tables written. Returns rows written per
        strand layer (every strand layer when the load names or empties any, else none) and
        the plant's warnings."""
        if given is None and not strand_rows.has_rows(conn):
            return {}, []
        stored = strand_rows.read_tables(conn)
        if given is None:
            candidate, starts = stored, dict.fromkeys(STRAND_LAYER_NAMES, 0)
        elif mode == "replace":
            candidate = {name: given[name] if name in given else strand_rows.empty_table(name)
                         for name in STRAND_LAYER_NAMES}
            starts = dict.fromkeys(STRAND_LAYER_NAMES, 0)
        else:
            candidate, starts = dict(stored), dict.fromkeys(STRAND_LAYER_NAMES, 0)
            for name in given:
                candidate[name], starts[name] = strand_rows.merge_tables(
                    name, stored[name], given[name], upsert=mode == "upsert")
        warnings: list[Problem] = []
        if any(len(frame) for frame in candidate.values()):
            typed, warnings = strand_rows.validate(
                route if route is not None else strand_rows.read_route_dataset(conn, self),
                candidate)
        else:
            typed = {name: strand_rows.empty_table(name) for name in STRAND_LAYER_NAMES}
        if given is None:
            return {}, warnings
        if not given and not any(len(frame) for frame in stored.values()):
            return {}, []  # a dataset without strand layers into a database without any
        written = {name: typed[name].iloc[starts[name]:].reset_index(drop=True)
                   for name in given}
        if mode == "replace":
            written = {name: typed[name] for name in STRAND_LAYER_NAMES}
        counts = strand_rows.load_tables(conn, entry_id, stored, written, mode=mode,
                                         version=version)
        return {name: counts.get(name, 0) for name in STRAND_LAYER_NAMES}, warnings

    def read_dataset(self) -> Dataset:
        """The whole stored dataset, validated like a file, in EPSG:4326, with its strand
        layers (``strands``; ``{}`` when there are none), as ``netgis analyze --db`` and
        ``db export`` read it.

        Examples
        --------
        >>> repo = Repository.from_url("sqlite:///:memory:"); repo.init()
        >>> repo.read_dataset().crs.to_epsg()
        4326
        """
        return self.read_consistent_plant()[1]

    def read_consistent(self) -> tuple[int, Dataset]:
        """The stored dataset and the data version it belongs to, read in one snapshot.

        The version and the four layers are read in one read transaction
        (:func:`netgis.storage.engine.begin_read`: ``REPEATABLE READ READ ONLY``
        on PostgreSQL, one WAL read transaction on SQLite), so a write committed
        by another process meanwhile is wholly invisible: the dataset is exactly
        the data of the version it is labelled with, never rows of two versions
        and never a version it did not see.

        Returns
        -------
        tuple of (int, Dataset)
            The data version and the dataset (EPSG:4326, validated).

        Examples
        --------
        >>> repo = Repository.from_url("sqlite:///:memory:"); repo.init()
        >>> version, dataset = repo.read_consistent()
        >>> version, len(dataset.premises)
        (0, 0)
        """
        with _storage_errors(), begin_read(self.engine) as conn:
            # the version first: it takes the snapshot the layers are then read from
            version = _read_version(conn)
            frames = {name: self._select_frame(conn, name, order_by=_key(name))
                      for name in LAYER_NAMES}
        return version, validate_frames(frames).dataset_or_raise()

    def read_strand_tables(self) -> dict[str, pd.DataFrame]:
        """The seven strand layers as stored (typed: text, whole numbers and floats as Python
        values, None for missing), each ordered by its key; empty frames when there are
        none. :func:`netgis.io.strands.write_strand_tables` writes them as they are.

        Examples
        --------
        >>> repo = Repository.from_url("sqlite:///:memory:"); repo.init()
        >>> {name: len(frame) for name, frame in repo.read_strand_tables().items()}["cables"]
        0
        """
        with _storage_errors(), begin_read(self.engine) as conn:
            return strand_rows.read_tables(conn)

    def read_consistent_plant(self) -> tuple[int, Dataset]:
        """:meth:`read_consistent` with the strand layers: the data version and the dataset
        whose ``strands`` are the stored strand tables (:meth:`read_strand_tables`; ``{}``
        when the database holds no strand row, as for a file without them) and whose
        ``streets`` are the stored streets (:meth:`read_streets`), all read in one
        snapshot. (:meth:`read_consistent` reads the route layers alone.)

        Examples
        --------
        >>> repo = Repository.from_url("sqlite:///:memory:"); repo.init()
        >>> version, dataset = repo.read_consistent_plant()
        >>> version, dataset.strands
        (0, {})
        """
        with _storage_errors(), begin_read(self.engine) as conn:
            version = _read_version(conn)
            frames = {name: self._select_frame(conn, name, order_by=_key(name))
                      for name in LAYER_NAMES}
            tables = strand_rows.read_tables(conn) if strand_rows.migrated(conn) else {}
            streets = street_rows.read_streets(conn)
        dataset = validate_frames(frames).dataset_or_raise()
        if any(len(frame) for frame in tables.values()):
            dataset.strands = tables
        dataset.streets = streets
        return version, dataset

    def read_streets(self) -> gpd.GeoDataFrame | None:
        """The stored ``streets`` context layer (``name``, lines in EPSG:4326; loaded with a
        dataset that has one), None when the database holds none.

        Examples
        --------
        >>> repo = Repository.from_url("sqlite:///:memory:"); repo.init()
        >>> repo.read_streets() is None
        True
        """
        with _storage_errors(), begin_read(self.engine) as conn:
            return street_rows.read_streets(conn)

    def changes_since(self, since: int, *, max_rows: int | None = None) -> ChangeSet | None:
        """What the writes after data version ``since`` changed, read in one snapshot.

        The data version, the rows written after ``since`` and the ids deleted
        since are read in one read transaction (as :meth:`read_consistent`
        reads), on the indexes of ``row_version`` and ``audit_log.data_version``
        (:mod:`netgis.storage.changes`). Applied to the frames
        :meth:`read_consistent` gave at ``since`` (drop the deleted ids and the
        ids of the rows, append the rows) they give exactly its frames at the
        change set's version.

        Parameters
        ----------
        since
            The data version the caller holds the data of.
        max_rows
            The largest change worth applying row by row: more changed rows
            and deleted ids than this in all is None (counted before any row
            is read). None: no limit.

        Returns
        -------
        ChangeSet or None
            The changes (empty when ``since`` is the current version); None
            when the change is larger than ``max_rows``, when ``since`` is
            negative or newer than the data version, or when the audit log
            cannot tell the deleted ids (writes older than the log): read the
            whole dataset then.

        Examples
        --------
        >>> from netgis.io import read_dataset
        >>> repo = Repository.from_url("sqlite:///:memory:"); repo.init()
        >>> _ = repo.load_dataset(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
        >>> _ = repo.patch_item("premises", "p_far", {"units": 3})
        >>> change = repo.changes_since(1)
        >>> change.version, change.rows["premises"]["units"].tolist(), change.count
        (2, [3], 1)
        >>> repo.changes_since(0, max_rows=10) is None  # the load: too large
        True
        """
        if max_rows is not None and max_rows < 0:
            raise ValidationError([Problem("changes", None, "max_rows", "must be >= 0")])
        with _storage_errors(), begin_read(self.engine) as conn:
            # the version first: it takes the snapshot everything else is read from
            version = _read_version(conn)
            return changes.read_changes(conn, int(since), version, max_rows=max_rows)

    def count(self, layer: str) -> int:
        """Number of stored features of ``layer``."""
        table = _table(layer)
        with _storage_errors(), self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def query_items(self, layer: str,
                    **query: Unpack[PageQuery]) -> tuple[gpd.GeoDataFrame, int]:
        """One page of ``layer``, ordered by id, and how many features match in all.

        Parameters
        ----------
        bbox
            WGS84 ``(min_lon, min_lat, max_lon, max_lat)``; features whose
            geometry intersects it.
        filters
            Field name to value (as text, coerced to the field's type); all
            must be equal.
        cql2
            A CQL2 filter from :func:`netgis.storage.filters.parse_filter`
            (a :class:`ParameterError` if it does not fit the layer).
        limit, offset
            The page (default: the first 10).
        after, before
            Keyset paging (instead of ``offset``): the first ``limit`` features
            whose id sorts after ``after``, or the last ``limit`` whose id sorts
            before ``before`` (still in ascending order), found on the id index
            however deep the page is. At most one of the three.

        Notes
        -----
        The page and the count are read in one snapshot: the count is exactly
        that of the data the page comes from.

        Examples
        --------
        >>> repo = Repository.from_url("sqlite:///:memory:"); repo.init()
        >>> page, matched = repo.query_items("premises", filters={"kind": "business"})
        >>> matched
        0
        """
        page, matched = self._query_page(layer, query, as_json=False)
        return page, cast(int, matched)  # counted: count=True

    def query_items_json(
        self, layer: str, *, count: bool = True, **query: Unpack[PageQuery],
    ) -> tuple[list[tuple[str, str | None, str]], int | None]:
        """:meth:`query_items` as JSON text written by the database, for serving pages.

        Each row is ``(id, geometry, properties)``: the id, the GeoJSON
        geometry object (15 decimals) and the JSON object of the layer's fields
        in contract order, as text; no geometry object nor dict is built.
        ``count=False`` skips counting the matches (None instead): a keyset page
        then costs only its rows.

        Examples
        --------
        >>> from netgis.io import read_dataset
        >>> repo = Repository.from_url("sqlite:///:memory:"); repo.init()
        >>> _ = repo.load_dataset(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
        >>> rows, matched = repo.query_items_json("premises", limit=1)
        >>> rows[0][0], rows[0][1][:30], matched
        ('p_end', '{"type":"Point","coordinates":', 6)
        >>> rows[0][2]  # doctest: +ELLIPSIS
        '{"premise_id":"p_end","units":1,"kind":"residential","connected":false,...'
        >>> [r[0] for r in repo.query_items_json("premises", limit=2, after="p_end")[0]]
        ['p_far', 'p_north100']
        >>> [r[0] for r in repo.query_items_json("premises", limit=2, before="p_north100")[0]]
        ['p_end', 'p_far']
        """
        return self._query_page(layer, query, as_json=True, count=count)

    def _query_page(self, layer: str, query: PageQuery, *, as_json: bool,
                    count: bool = True) -> tuple[Any, int | None]:
        """The page of ``query`` (rows as JSON text or a frame) and the count of matches."""
        unknown = sorted(set(query) - set(PageQuery.__annotations__))
        if unknown:  # what a signature of named parameters would refuse
            raise TypeError(f"unknown page parameters: {', '.join(unknown)}")
        bbox, filters, cql2 = query.get("bbox"), query.get("filters"), query.get("cql2")
        limit, offset = query.get("limit", 10), query.get("offset", 0)
        after, before = query.get("after"), query.get("before")
        table = _table(layer)
        if limit < 0 or offset < 0:
            raise ValidationError([Problem(layer, None, "limit" if limit < 0 else "offset",
                                           "must be >= 0")])
        if sum((bool(offset), after is not None, before is not None)) > 1:
            raise ValidationError([Problem(layer, None, "offset",
                                           "offset, after and before exclude each other")])
        conditions: list[Any] = []
        for key, value in (filters or {}).items():
            coerced = _coerce_filter(layer, key, value)
            conditions.append(table.c[key] == coerced)
        if bbox is not None:
            conditions.append(dialects.bbox_filter(self.engine.dialect, table, _check_bbox(bbox)))
        if cql2 is not None:
            conditions.append(filter_condition(cql2, layer, table, self.engine.dialect))
        id_col = table.c[LAYERS[layer].id_field]
        # keyset: the page is the next (or, before, the previous) rows of the id index
        page_where = list(conditions)
        order: Any = id_col
        if after is not None:
            page_where.append(id_col > after)
        elif before is not None:
            page_where.append(id_col < before)
            order = id_col.desc()
        # the count and the page from one snapshot, so numberMatched fits the page
        with _storage_errors(), begin_read(self.engine) as conn:
            matched = int(conn.execute(select(func.count()).select_from(table).where(
                *conditions)).scalar_one()) if count else None
            if as_json:
                dialect = conn.dialect
                fields = [(f.name, f.type) for f in LAYERS[layer].fields]
                columns = (id_col, dialects.as_geojson(dialect, table.c.geometry),
                           dialects.properties_json(dialect, table, fields))
                if offset:
                    # the page's ids first (the id index alone), then their JSON: PostgreSQL
                    # would compute the JSON of every row an OFFSET skips as well
                    page_ids = select(id_col.label("page_id")).where(*conditions).order_by(
                        id_col).limit(limit).offset(offset).subquery()
                    stmt = select(*columns).join(
                        page_ids, page_ids.c.page_id == id_col).order_by(id_col)
                else:
                    # one scan of the id index from the key on, stopping after limit rows
                    stmt = select(*columns).where(*page_where).order_by(order).limit(limit)
                rows = [tuple(r) for r in conn.execute(stmt).all()]
                return (rows[::-1] if before is not None else rows), matched
            page = self._select_frame(conn, layer, where=page_where, order_by=order,
                                      limit=limit, offset=offset)
        if before is not None:
            page = page.iloc[::-1].reset_index(drop=True)
        return page, matched

    def vector_tile(self, address: TileAddress,
                    attributes: TileAttributes | None = None) -> bytes:
        """The Mapbox Vector Tile of ``address`` (:mod:`netgis.products.tiles`); ``b""`` if empty.

        :meth:`versioned_vector_tile` without the data version.

        Examples
        --------
        >>> from netgis.products.tiles import TileAddress
        >>> repo = Repository.from_url("sqlite:///:memory:"); repo.init()
        >>> repo.vector_tile(TileAddress.of("premises", 0, 0, 0))
        b''
        """
        return self.versioned_vector_tile(address, attributes)[1]

    def versioned_vector_tile(self, address: TileAddress,
                              attributes: TileAttributes | None = None,
                              places: Callable[[np.ndarray], np.ndarray] | None = None
                              ) -> tuple[int | None, bytes]:
        """The Mapbox Vector Tile of ``address`` and the data version its rows belong to.

        The version is read in the same snapshot as the rows, so a caller can
        tell whether they match the analysis behind ``attributes``; it is None
        when a write landed between two reads of one tile (a thinned tile that
        had to be made again on a coarser grid).

        Features come through the spatial index (PostGIS GIST, SpatiaLite R*Tree):
        every one intersecting the tile, or below z14 the thinned ones. Each
        carries the layer's fields and, joined by id, the columns of
        ``attributes`` (by the layer's id: the analysis) and, for spans and nodes, the
        ``place`` that ``places`` gives for their WGS84 geometries. The rows of either
        database are encoded by :func:`netgis.products.tiles.encode_features`: measured on
        a z14 tile of 1,436 premises, PostGIS's ``ST_AsMVT`` over the rows joined
        with the analysis values (bound as arrays) took 175-280 ms against 80 ms
        for the same rows read and encoded here (docs/vector-tiles.md).

        Examples
        --------
        >>> from netgis.products.tiles import TileAddress
        >>> repo = Repository.from_url("sqlite:///:memory:"); repo.init()
        >>> repo.versioned_vector_tile(TileAddress.of("premises", 0, 0, 0))
        (0, b'')
        """
        seen: set[int] = set()

        def encode(tile: TileAddress, grid: int | None) -> bytes:
            table = _table(tile.layer)
            conditions = self._tile_conditions(table, tile, grid)
            fields = LAYERS[tile.layer].fields
            with _storage_errors(), begin_read(self.engine) as conn:
                seen.add(_read_version(conn))
                rows = conn.execute(select(
                    *(table.c[f.name] for f in fields),
                    func.ST_AsBinary(table.c.geometry, type_=LargeBinary)).where(
                        *conditions)).all()
            if not rows:
                return b""
            # plain arrays, no frames: this is the hot path of a tile
            cells = list(zip(*rows, strict=True))
            columns = {f.name: np.asarray(v, dtype=object)
                       for f, v in zip(fields, cells[:-1], strict=True)}
            if attributes is not None:
                columns.update(attributes.lookup(columns[LAYERS[tile.layer].id_field]))
            geoms = shapely.from_wkb(np.asarray([bytes(b) for b in cells[-1]], dtype=object))
            hit = shapely.intersects(geoms, shapely.box(*tile.bounds()))
            if not hit.all():
                geoms = geoms[hit]
                columns = {name: values[hit] for name, values in columns.items()}
            if places is not None and tile.layer in PLACE_LAYERS and len(geoms):
                columns["place"] = places(geoms)
            return encode_features(geoms, columns, tile)

        body = render_tile(address, encode)
        return (next(iter(seen)) if len(seen) == 1 else None), body

    def _tile_conditions(self, table: Table, tile: TileAddress, grid: int | None) -> list[Any]:
        """Rows of ``tile``: intersecting it, and (``grid``) the lowest id of each cell."""
        dialect = self.engine.dialect
        box = tile.bounds()
        # bounding boxes only: vector_tile tests the candidates exactly, all at once
        inside = dialects.bbox_filter(dialect, table, box, exact=False)
        if grid is None:
            return [inside]
        id_col = table.c[LAYERS[tile.layer].id_field]
        cells = dialects.grid_cell(dialect, table, box, grid)
        kept = select(dialects.lowest_id(dialect, id_col)).where(inside).group_by(*cells)
        return [id_col.in_(kept.scalar_subquery())]

    def extents(self, *, years: Mapping[str, str] | None = None
                ) -> tuple[int, dict[str, LayerExtent]]:
        """Every layer's WGS84 bounding box (and year range), with the data version they
        belong to, read in one snapshot.

        Each box is one spatial aggregate of the database (``ST_Extent`` /
        ``Extent``), not a read of the features.

        Parameters
        ----------
        years
            Layer name to an integer year field (``{"spans": "install_year"}``)
            whose smallest and largest values are the layer's time range.

        Examples
        --------
        >>> from netgis.io import read_dataset
        >>> repo = Repository.from_url("sqlite:///:memory:"); repo.init()
        >>> _ = repo.load_dataset(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
        >>> version, found = repo.extents()
        >>> [round(v, 3) for v in found["nodes"].bbox], found["nodes"].years
        ([8.68, 50.11, 8.69, 50.113], None)
        """
        years = dict(years or {})
        out: dict[str, LayerExtent] = {}
        with _storage_errors(), begin_read(self.engine) as conn:
            version = _read_version(conn)
            for name in LAYER_NAMES:
                table = LAYER_TABLES[name]
                columns = dialects.extent_columns(conn.dialect, table.c.geometry)
                year_field = years.get(name)
                if year_field is not None:
                    columns += [func.min(table.c[year_field]), func.max(table.c[year_field])]
                row = conn.execute(select(*columns).select_from(table)).one()
                box = tuple(float(v) for v in row[:4]) if row[0] is not None else None
                span = (int(row[4]), int(row[5])) if year_field and row[4] is not None else None
                out[name] = LayerExtent(bbox=box, years=span)  # type: ignore[arg-type]
        return version, out

    def get_item(self, layer: str, item_id: str) -> gpd.GeoDataFrame:
        """The feature ``item_id`` of ``layer`` as a one-row GeoDataFrame.

        Raises
        ------
        NotFoundError
            When there is no such feature.
        """
        return self.get_item_versioned(layer, item_id)[0]

    def get_item_versioned(self, layer: str, item_id: str) -> tuple[gpd.GeoDataFrame, int]:
        """The feature ``item_id`` of ``layer`` and its version, read together.

        The version is the data version of the write that last changed the
        feature: it grows with every change and is never given to another state
        of the feature (the HTTP API's ETag).

        Raises
        ------
        NotFoundError
            When there is no such feature.

        Examples
        --------
        >>> from netgis.io import read_dataset
        >>> repo = Repository.from_url("sqlite:///:memory:"); repo.init()
        >>> _ = repo.load_dataset(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
        >>> frame, version = repo.get_item_versioned("nodes", "A")
        >>> version == repo.data_version()
        True
        """
        with _storage_errors(), self.engine.connect() as conn:
            return self._item(conn, layer, item_id)

    # ----------------------------------------------------------- item writes

    def insert_items(self, layer: str, items: gpd.GeoDataFrame, *,
                     actor: str = DEFAULT_ACTOR) -> int:
        """Validate and add new features to ``layer``; all or nothing.

        A span's nodes must exist in the database. Ids that exist already are a
        :class:`ConflictError`. Items without a CRS are taken as WGS84. The audit
        log gets one ``create`` entry by ``actor`` holding the new features.
        """
        _table(layer)
        with _storage_errors(), begin_write(self.engine) as conn:
            version = _next_version(conn)
            clean = self._validate_items(conn, layer, items)
            id_field = LAYERS[layer].id_field
            existing = self._existing_ids(conn, layer, clean[id_field])
            if existing:
                raise ConflictError([Problem(layer, i, id_field, "id already exists")
                                     for i in existing])
            self._write(conn, layer, clean, upsert=False, version=version)
            audit.record(conn, actor=actor, action="create", layer=layer,
                         ids=_ids(clean, layer), data_version=version, after=clean)
        self._written(version)
        return len(clean)

    def replace_item(self, layer: str, item_id: str, item: gpd.GeoDataFrame, *,
                     if_match: Collection[int] | None = None,
                     actor: str = DEFAULT_ACTOR) -> int:
        """Replace every field and the geometry of an existing feature.

        Parameters
        ----------
        if_match
            When given, the write happens only if the feature's version is one of
            these (else :class:`PreconditionFailed`, nothing written). None: the
            last writer wins.
        actor
            Who writes, for the ``replace`` entry of the audit log (the feature
            before and after).

        Returns
        -------
        int
            The feature's new version.
        """
        _table(layer)
        id_field = LAYERS[layer].id_field
        if len(item) != 1:
            raise ValidationError([Problem(layer, str(item_id), None,
                                           f"expected one feature, got {len(item)}")])
        item = item.copy()
        if id_field in item.columns and item[id_field].notna().all():
            given = str(item[id_field].iat[0])
            if given != str(item_id):
                raise ValidationError([Problem(layer, str(item_id), id_field,
                                               f"id in the body ({given!r}) differs from the "
                                               "id in the path")])
        item[id_field] = str(item_id)
        with _storage_errors(), begin_write(self.engine) as conn:
            version = _next_version(conn)
            before, current_version = self._item(conn, layer, item_id)
            _check_version(layer, str(item_id), current_version, if_match)
            clean = self._validate_items(conn, layer, item)
            self._write(conn, layer, clean, upsert=True, version=version)
            self._check_cable_paths(conn, layer, before, clean)
            audit.record(conn, actor=actor, action="replace", layer=layer, ids=[str(item_id)],
                         data_version=version, before=before, after=clean)
        self._written(version)
        return version

    def patch_item(self, layer: str, item_id: str, changes: Mapping[str, Any], *,
                   if_match: Collection[int] | None = None, actor: str = DEFAULT_ACTOR) -> int:
        """Change some fields (or ``geometry``: shapely or GeoJSON, WGS84) of a feature.

        Only the named fields are written, in one transaction that reads the
        feature as it is then: a concurrent change of other fields survives.
        The whole feature, changes applied, is validated as for a replace.

        Parameters
        ----------
        if_match
            When given, the write happens only if the feature's version is one of
            these (else :class:`PreconditionFailed`, nothing written).
        actor
            Who writes, for the ``patch`` entry of the audit log (the whole
            feature before and after, not only the fields sent).

        Returns
        -------
        int
            The feature's new version.
        """
        table = _table(layer)
        id_field = LAYERS[layer].id_field
        allowed = {*LAYERS[layer].field_names, "geometry"}
        problems = [Problem(layer, str(item_id), key, "not a field of this layer")
                    for key in changes if key not in allowed]
        if id_field in changes and str(changes[id_field]) != str(item_id):
            problems.append(Problem(layer, str(item_id), id_field,
                                    "an id cannot be changed; delete and insert instead"))
        if problems:
            raise ValidationError(problems)
        with _storage_errors(), begin_write(self.engine) as conn:
            version = _next_version(conn)
            current, current_version = self._item(conn, layer, item_id)
            _check_version(layer, str(item_id), current_version, if_match)
            row = current.copy()
            for key, value in changes.items():
                if key == "geometry":
                    geom = value if isinstance(value, shapely.Geometry) else \
                        shapely.geometry.shape(value)
                    row = row.set_geometry(gpd.GeoSeries([geom], index=row.index, crs=SRID))
                else:
                    row[key] = pd.Series([value], index=row.index, dtype=object)
            clean = self._validate_items(conn, layer, row)
            values: dict[str, Any] = {key: _db_value(clean[key].iat[0])
                                      for key in changes if key not in ("geometry", id_field)}
            if "geometry" in changes:
                wkb = shapely.to_wkb(np.asarray(clean.geometry.array, dtype=object))[0]
                values["geometry"] = dialects.geometry_from_wkb(conn.dialect, bytes(wkb))
            values[ROW_VERSION] = version
            conn.execute(update(table).where(table.c[id_field] == str(item_id)).values(values))
            self._check_cable_paths(conn, layer, current, clean)
            audit.record(conn, actor=actor, action="patch", layer=layer, ids=[str(item_id)],
                         data_version=version, before=current, after=clean)
        self._written(version)
        return version

    def delete_item(self, layer: str, item_id: str, *, actor: str = DEFAULT_ACTOR) -> None:
        """Delete one feature; a node that spans still reference is a :class:`ConflictError`.

        The audit log gets a ``delete`` entry by ``actor`` holding the feature as it was.
        """
        table = _table(layer)
        id_col = table.c[LAYERS[layer].id_field]
        with _storage_errors(), begin_write(self.engine) as conn:
            version = _next_version(conn)
            before, _ = self._item(conn, layer, item_id)
            if layer == "nodes":
                spans = LAYER_TABLES["spans"]
                users = conn.execute(
                    select(spans.c.span_id)
                    .where(or_(spans.c.from_node == str(item_id), spans.c.to_node == str(item_id)))
                    .order_by(spans.c.span_id)
                ).scalars().all()
                if users:
                    raise ConflictError([Problem(
                        "nodes", str(item_id), "node_id",
                        f"still referenced by {len(users)} span(s): " + ", ".join(users[:20]))])
            named = strand_rows.route_references(conn, layer, [str(item_id)])
            if named:
                raise ConflictError(named)
            deleted = conn.execute(delete(table).where(id_col == str(item_id))).rowcount
            if not deleted:
                raise NotFoundError(layer, str(item_id))
            audit.record(conn, actor=actor, action="delete", layer=layer, ids=[str(item_id)],
                         data_version=version, before=before)
        self._written(version)

    # -------------------------------------------------------------- audit log

    def audit_log(self, *, layer: str | None = None, feature_id: str | None = None,
                  since: datetime | None = None, actor: str | None = None,
                  action: str | None = None, limit: int = 100,
                  offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Entries of the audit log, newest first, and how many match in all.

        Parameters
        ----------
        layer
            Only writes of this layer.
        feature_id
            Only writes that wrote or deleted this id (with ``layer``: this
            feature), bulk loads included; found on the index of ``audit_ids``.
        since
            Only writes at or after this time (naive: UTC).
        actor, action
            Only writes by this key name (``cli``, ``local``) / of this kind.
        limit, offset
            The page.

        Returns
        -------
        tuple of (list of dict, int)
            Each entry ``{"id", "time", "actor", "action", "layer",
            "feature_ids", "count", "counts", "mode", "data_version", "before",
            "after"}`` (see :mod:`netgis.storage.audit`; a bulk load has counts
            per layer instead of a layer and ids: :meth:`audit_entry_ids` pages
            them), and the number of entries matching.

        Examples
        --------
        >>> from netgis.io import read_dataset
        >>> repo = Repository.from_url("sqlite:///:memory:"); repo.init()
        >>> _ = repo.load_dataset(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
        >>> repo.delete_item("premises", "p_far", actor="alice")
        >>> entries, matched = repo.audit_log(feature_id="p_far")
        >>> [(e["actor"], e["action"]) for e in entries], matched
        ([('alice', 'delete'), ('local', 'load')], 2)
        """
        _check_page("audit_log", limit, offset)
        table, ids = AUDIT_LOG, AUDIT_IDS
        conditions: list[Any] = []
        if layer is not None:
            # a bulk load names no layer: it matches when it wrote or deleted some feature of
            # the layer (the primary key of audit_ids starts with the entry and the layer)
            conditions.append(or_(table.c.layer == layer, and_(
                table.c.layer.is_(None),
                exists().where(ids.c.audit_id == table.c.id, ids.c.layer == layer))))
        if since is not None:
            conditions.append(table.c.changed_at >= _utc(since))
        if actor is not None:
            conditions.append(table.c.actor == actor)
        if action is not None:
            conditions.append(table.c.action == action)
        if feature_id is not None:
            # on the index of audit_ids (feature_id, layer)
            touched = select(ids.c.audit_id).where(ids.c.feature_id == str(feature_id))
            if layer is not None:
                touched = touched.where(ids.c.layer == layer)
            conditions.append(table.c.id.in_(touched))
        stmt = (select(table).where(*conditions).order_by(table.c.id.desc())
                .limit(limit).offset(offset))
        with _storage_errors(), begin_read(self.engine) as conn:
            matched = int(conn.execute(
                select(func.count()).select_from(table).where(*conditions)).scalar_one())
            rows = conn.execute(stmt).mappings().all()
        return [audit.entry(row) for row in rows], matched

    def audit_entry_ids(self, entry_id: int, *, layer: str | None = None, limit: int = 100,
                        offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """The features one audit entry wrote or deleted, a page at a time, and how many.

        Ordered by layer and id (the primary key of ``audit_ids``). Each is
        ``{"layer", "id", "action", "before"}``: ``action`` ``insert``,
        ``replace``, ``patch`` or ``delete``; ``before`` the feature (a GeoJSON
        Feature) as it was before a bulk load replaced or deleted it, else null.

        Raises
        ------
        NotFoundError
            When there is no entry ``entry_id``.

        Examples
        --------
        >>> from netgis.io import read_dataset
        >>> repo = Repository.from_url("sqlite:///:memory:"); repo.init()
        >>> _ = repo.load_dataset(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
        >>> entry = repo.audit_log()[0][0]
        >>> entry["counts"]["spans"], entry["feature_ids"]
        ({'inserted': 6, 'replaced': 0, 'deleted': 0}, None)
        >>> page, matched = repo.audit_entry_ids(entry["id"], layer="spans", limit=2)
        >>> [(f["id"], f["action"]) for f in page], matched
        ([('s1', 'insert'), ('s2', 'insert')], 6)
        """
        _check_page("audit_ids", limit, offset)
        if not INT_MIN <= int(entry_id) <= INT_MAX:
            # beyond the id column's range: no such entry (the database would refuse the number)
            raise NotFoundError("audit_log", str(entry_id))
        table = AUDIT_IDS
        conditions: list[Any] = [table.c.audit_id == int(entry_id)]
        if layer is not None:
            conditions.append(table.c.layer == layer)
        with _storage_errors(), begin_read(self.engine) as conn:
            if conn.execute(select(AUDIT_LOG.c.id).where(
                    AUDIT_LOG.c.id == int(entry_id))).first() is None:
                raise NotFoundError("audit_log", str(entry_id))
            matched = int(conn.execute(
                select(func.count()).select_from(table).where(*conditions)).scalar_one())
            rows = conn.execute(select(table).where(*conditions)
                                .order_by(table.c.layer, table.c.feature_id)
                                .limit(limit).offset(offset)).mappings().all()
        return [audit.entry_id_row(row) for row in rows], matched

    # ---------------------------------------------------- versions, KPIs, runs

    def data_version(self) -> int:
        """A number that grows with every successful write, shared by all processes."""
        with _storage_errors(), self.engine.connect() as conn:
            return _read_version(conn)

    def stats(self) -> dict[str, Any]:
        """Counts per layer, the data version and the migration revision."""
        with _storage_errors(), begin_read(self.engine) as conn:
            layers = {name: int(conn.execute(
                select(func.count()).select_from(LAYER_TABLES[name])).scalar_one())
                for name in LAYER_NAMES}
            version = _read_version(conn)
            held = strand_rows.counts(conn) if strand_rows.has_rows(conn) else None
        out: dict[str, Any] = {"layers": layers}
        if held is not None:
            # only where there is a strand plant: without one, stats read as they always did
            out["strand_layers"] = held
        return {**out, "data_version": version, "revision": self.revision(),
                "dialect": self.engine.dialect.name}

    def save_kpi_snapshot(self, kpis: Mapping[str, Any], *, data_version: int,
                          taken_at: datetime | None = None) -> int:
        """Store ``kpis`` (the ``kpis.json`` shape) and return the snapshot id."""
        if "network" not in kpis:
            raise ValidationError([Problem("kpi_snapshots", None, "network",
                                           "KPIs must have a 'network' object")])
        when = _utc(taken_at or datetime.now(UTC))
        table = KPI_SNAPSHOTS
        with _storage_errors(), begin_write(self.engine) as conn:
            result = conn.execute(insert(table).values(
                taken_at=when, data_version=int(data_version), kpis=dict(kpis)))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def has_kpi_snapshot(self, data_version: int) -> bool:
        """Whether a measured KPI snapshot of ``data_version`` is stored (estimated ones,
        :meth:`save_kpi_estimates`, do not count: they describe the past, not the data)."""
        table = KPI_SNAPSHOTS
        stmt = select(table.c.snapshot_id).where(
            table.c.data_version == int(data_version),
            table.c.estimated.is_(False)).limit(1)
        with _storage_errors(), self.engine.connect() as conn:
            return conn.execute(stmt).first() is not None

    def kpi_history(self, *, area_id: str | None = None,
                    since: datetime | None = None) -> list[dict[str, Any]]:
        """KPI snapshots in time order: the network's KPIs, or one area's.

        Each item is ``{"snapshot_id", "taken_at", "data_version", KPI: value,
        ...}`` (plus ``area_id`` and ``name`` for an area), and ``"estimated": True`` for
        a snapshot estimated from the spans' ``install_year`` (:meth:`save_kpi_estimates`;
        a measured one has no such key). Snapshots that do not know ``area_id`` are left
        out.
        """
        table = KPI_SNAPSHOTS
        stmt = select(table).order_by(table.c.taken_at, table.c.snapshot_id)
        if since is not None:
            stmt = stmt.where(table.c.taken_at >= _utc(since))
        with _storage_errors(), self.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        out: list[dict[str, Any]] = []
        for row in rows:
            head = {"snapshot_id": row["snapshot_id"], "taken_at": _aware(row["taken_at"]),
                    "data_version": row["data_version"]}
            mark = {"estimated": True} if row["estimated"] else {}
            kpis = row["kpis"]
            if area_id is None:
                out.append({**head, **kpis.get("network", {}), **mark})
                continue
            for area in kpis.get("areas", []):
                if str(area.get("area_id")) == str(area_id):
                    out.append({**head, **area, **mark})
                    break
        return out

    def save_kpi_estimates(self, points: Sequence[tuple[datetime, Mapping[str, Any]]], *,
                           data_version: int) -> dict[str, int]:
        """Store KPI snapshots estimated from the spans' ``install_year`` (``points``:
        ``(taken_at, kpis)``, the ``kpis.json`` shape), marked ``estimated``, in one
        transaction; a measured snapshot is never changed.

        The estimates are one series, written whole each time: a point at the instant of
        a stored estimate replaces it in place (unchanged when its KPIs are the same), a
        stored estimate at an instant no longer given is removed, and a point at or after
        the first measured snapshot is not stored (measured history is not estimated).
        Writing the same points twice changes nothing the second time.

        Returns
        -------
        dict
            Counts: ``inserted``, ``updated``, ``unchanged``, ``removed`` (stored estimates
            no longer given) and ``skipped`` (points not before the first measured one).
        """
        table = KPI_SNAPSHOTS
        wanted: dict[datetime, dict[str, Any]] = {}
        for when, kpis in points:
            if "network" not in kpis:
                raise ValidationError([Problem("kpi_snapshots", None, "network",
                                               "KPIs must have a 'network' object")])
            # as the database gives JSON back, so that equal KPIs compare equal
            wanted[_utc(when)] = json.loads(json.dumps(dict(kpis), allow_nan=False))
        counts = dict.fromkeys(("inserted", "updated", "unchanged", "removed", "skipped"), 0)
        with _storage_errors(), begin_write(self.engine) as conn:
            first_measured = conn.execute(select(func.min(table.c.taken_at)).where(
                table.c.estimated.is_(False))).scalar_one()
            stored = {_aware(r.taken_at): r for r in conn.execute(
                select(table.c.snapshot_id, table.c.taken_at, table.c.kpis).where(
                    table.c.estimated.is_(True)))}
            for when in sorted(wanted):
                kpis = wanted[when]
                if first_measured is not None and when >= _aware(first_measured):
                    counts["skipped"] += 1
                    continue
                old = stored.pop(when, None)
                if old is None:
                    conn.execute(insert(table).values(taken_at=when, kpis=kpis, estimated=True,
                                                      data_version=int(data_version)))
                    counts["inserted"] += 1
                elif old.kpis == kpis:
                    counts["unchanged"] += 1
                else:
                    conn.execute(update(table).where(
                        table.c.snapshot_id == old.snapshot_id).values(
                        kpis=kpis, data_version=int(data_version)))
                    counts["updated"] += 1
            if stored:
                conn.execute(delete(table).where(table.c.snapshot_id.in_(
                    [r.snapshot_id for r in stored.values()])))
                counts["removed"] = len(stored)
        return counts

    def record_analysis_run(self, *, drop_m: float, data_version: int,
                            counts: Mapping[str, int], ran_at: datetime | None = None,
                            duration_s: float | None = None) -> int:
        """Remember one analysis run (when, drop_m, data version, counts); returns its id."""
        table = ANALYSIS_RUNS
        with _storage_errors(), begin_write(self.engine) as conn:
            result = conn.execute(insert(table).values(
                ran_at=_utc(ran_at or datetime.now(UTC)), drop_m=float(drop_m),
                data_version=int(data_version), duration_s=duration_s,
                counts={k: int(v) for k, v in counts.items()}))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def analysis_runs(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """The most recent analysis runs, newest first."""
        table = ANALYSIS_RUNS
        with _storage_errors(), self.engine.connect() as conn:
            rows = conn.execute(select(table).order_by(table.c.ran_at.desc(),
                                                       table.c.run_id.desc()).limit(limit))
            return [{**row, "ran_at": _aware(row["ran_at"])} for row in rows.mappings()]

    # ---------------------------------------------------------------- helpers

    def _check_cable_paths(self, conn: Connection, layer: str, before: gpd.GeoDataFrame,
                           after: gpd.GeoDataFrame) -> None:
        """After a span's ends changed (in the write's transaction): when a cable runs along
        it, the whole strand plant must still be valid (:class:`ValidationError` if not)."""
        if layer != "spans":
            return
        ends = ["from_node", "to_node"]
        if [str(v) for v in before[ends].iloc[0]] == [str(v) for v in after[ends].iloc[0]]:
            return
        if not strand_rows.migrated(conn):
            return
        cable_spans = STRAND_TABLES["cable_spans"]
        span_id = str(after["span_id"].iat[0])
        if conn.execute(select(cable_spans.c.cable_id).where(
                cable_spans.c.span_id == span_id).limit(1)).first() is not None:
            strand_rows.check_plant(conn, self)

    def _existing_ids(self, conn: Connection, layer: str, ids: pd.Series) -> list[str]:
        """The ids among ``ids`` that the database holds already, sorted."""
        table = LAYER_TABLES[layer]
        values = [str(v) for v in ids.dropna().unique()]
        if not values or conn.execute(select(table.c[LAYERS[layer].id_field])
                                      .limit(1)).first() is None:
            return []
        return sorted(dialects.ids_present(conn, table.c[LAYERS[layer].id_field], values))

    def _validate_items(self, conn: Connection, layer: str,
                        items: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """Items checked against the contract and, for spans, against the stored nodes."""
        if not isinstance(items, gpd.GeoDataFrame):
            raise ValidationError([Problem(layer, None, "geometry", "features need a geometry")])
        frame = items.set_crs(SRID) if items.crs is None else items.to_crs(SRID)
        frames: dict[str, gpd.GeoDataFrame] = {name: empty_layer(name, SRID)
                                               for name in ("nodes", "spans", "premises")}
        frames[layer] = frame
        if layer == "spans":
            ends = pd.concat([frame.get("from_node", pd.Series(dtype=object)),
                              frame.get("to_node", pd.Series(dtype=object))])
            wanted = [str(v) for v in ends.dropna().unique()]
            frames["nodes"] = self._select_frame(
                conn, "nodes", where=[LAYER_TABLES["nodes"].c.node_id.in_(wanted)]) \
                if wanted else frames["nodes"]
        report = validate_frames(frames, crs_required=False, plant_bounds=_plant_bounds(conn))
        errors = [p for p in report.errors if p.layer == layer or layer == "spans"]
        if errors:
            raise ValidationError(errors, [w for w in report.warnings if w.layer == layer])
        clean = report.dataset_or_raise().layers()[layer]
        return _to_wgs84(clean)

    def _write(self, conn: Connection, layer: str, frame: gpd.GeoDataFrame, *,
               upsert: bool, version: int) -> None:
        """Write ``frame`` (validated, WGS84) to ``layer``; every row gets ``version``."""
        if frame.empty:
            return
        columns = [*LAYERS[layer].field_names, ROW_VERSION]
        attrs = frame[LAYERS[layer].field_names].astype(object)
        attrs = attrs.where(attrs.notna(), None)
        wkb = shapely.to_wkb(np.asarray(frame.geometry.array, dtype=object))
        rows = [(*values, version, geom) for values, geom in
                zip(attrs.itertuples(index=False, name=None), wkb, strict=True)]
        dialects.bulk_write(conn, LAYER_TABLES[layer], columns, rows, upsert=upsert)

    def _item(self, conn: Connection, layer: str, item_id: str) -> tuple[gpd.GeoDataFrame, int]:
        """One feature and its version, in one statement (:class:`NotFoundError` if none)."""
        table = _table(layer)
        frame = self._select_frame(conn, layer, where=[
            table.c[LAYERS[layer].id_field] == str(item_id)], with_version=True)
        if frame.empty:
            raise NotFoundError(layer, str(item_id))
        version = int(frame[ROW_VERSION].to_numpy()[0])
        return frame.drop(columns=ROW_VERSION), version

    def _select_frame(self, conn: Connection, layer: str, *, where: Sequence[Any] = (),
                      order_by: Any = None, limit: int | None = None,
                      offset: int | None = None, with_version: bool = False
                      ) -> gpd.GeoDataFrame:
        table = LAYER_TABLES[layer]
        fields = list(LAYERS[layer].fields)
        if with_version:
            fields.append(_VERSION_FIELD)
        stmt = select(*(table.c[f.name] for f in fields),
                      func.ST_AsBinary(table.c.geometry, type_=LargeBinary)).where(*where)
        if order_by is not None:
            stmt = stmt.order_by(order_by)
        if limit is not None:
            stmt = stmt.limit(limit)
        if offset:
            stmt = stmt.offset(offset)
        rows = conn.execute(stmt).all()
        return _rows_to_frame(layer, fields, rows)


def _key(layer: str) -> Any:
    """A layer's id column, to read whole layers in one order: a table's scan order is
    not its insertion order once PostgreSQL reuses the room of deleted rows, and the
    answers' float sums (route and fiber km) follow the order rows come in.
    The areas keep their stored order: kpis.json lists areas as the dataset gives them
    (docs/spec.md, areas), so they are read as loaded.
    """
    if layer == "areas":
        return None
    return LAYER_TABLES[layer].c[LAYERS[layer].id_field]


def _rows_to_frame(layer: str, fields: Sequence[Field], rows: Sequence[Any]) -> gpd.GeoDataFrame:
    if not rows:
        return empty_layer(layer, SRID)
    columns = list(zip(*rows, strict=True))
    data: dict[str, Any] = {}
    for f, values in zip(fields, columns[:-1], strict=True):
        if f.type == "int":
            data[f.name] = pd.array(values, dtype="Int64")
        elif f.type == "bool":
            data[f.name] = np.asarray(values, dtype=bool)
        else:
            data[f.name] = np.asarray(values, dtype=object)
    geoms = shapely.from_wkb(np.asarray([bytes(b) for b in columns[-1]], dtype=object))
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=SRID), crs=SRID)


def _ids(frame: gpd.GeoDataFrame, layer: str) -> list[str]:
    return [str(v) for v in frame[LAYERS[layer].id_field].tolist()]


def _to_wgs84(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if frame.crs is None:
        return frame.set_crs(SRID)
    return frame if frame.crs.to_epsg() == SRID else frame.to_crs(SRID)


def _table(layer: str) -> Table:
    if layer not in LAYER_TABLES:
        raise NotFoundError("layers", str(layer))
    return LAYER_TABLES[layer]


def _coerce_filter(layer: str, key: str, value: str) -> int | bool | str:
    if key not in LAYERS[layer].field_names:
        raise ValidationError([Problem(layer, None, key,
                                       "cannot filter on this; fields are "
                                       + ", ".join(LAYERS[layer].field_names))])
    kind = LAYERS[layer].field(key).type
    text = str(value).strip()
    if kind == "int":
        try:
            number = int(text)
        except ValueError:
            raise ValidationError([Problem(layer, None, key,
                                           f"not an integer: {value!r}")]) from None
        if not INT_MIN <= number <= INT_MAX:
            raise ParameterError([Problem("query", None, key,
                                          f"out of range: {INT_MIN} to {INT_MAX}")],
                                 f"{key} {number} is out of range ({INT_MIN} to {INT_MAX})")
        return number
    if kind == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValidationError([Problem(layer, None, key, f"not a boolean: {value!r}")])
    return text


#: The plant box of each database as last computed: (engine URL, the data version its
#: tables reflected then, the box). See :func:`_plant_bounds`.
_PLANT_BOX: dict[str, tuple[int, tuple[float, float, float, float] | None]] = {}


def _plant_bounds(conn: Connection) -> tuple[float, float, float, float] | None:
    """The WGS84 box of the stored nodes and spans (None when there are none): a written
    feature far from it whose swapped coordinates fall near it is refused.

    Every write of a premise asks for it, inside its write transaction: the extent is a
    scan of every node and span (~70 ms at 1 M premises, holding SpatiaLite's one write
    lock), so it is kept per database and taken again only when the audit log shows a
    write of nodes or spans, or a bulk load (no layer), after the data version it was
    taken at: one index range scan of the entries since then.
    """
    key = conn.engine.url.render_as_string(hide_password=True)
    now = _read_version(conn)
    kept = _PLANT_BOX.get(key)
    if kept is not None and kept[0] <= now:
        log = AUDIT_LOG
        touched = conn.execute(
            select(log.c.id).where(log.c.data_version > kept[0],
                                   or_(log.c.layer.in_(("nodes", "spans")),
                                       log.c.layer.is_(None))).limit(1)).first()
        if touched is None:
            return kept[1]
    boxes = []
    for name in ("nodes", "spans"):
        row = conn.execute(select(*dialects.extent_columns(
            conn.dialect, LAYER_TABLES[name].c.geometry))).one()
        if row[0] is not None:
            boxes.append([float(v) for v in row[:4]])
    box = None if not boxes else (
        min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
        max(b[3] for b in boxes))
    # inside a write the version is already the new one while its own audit entry is not
    # written yet: the box is kept as of the version before, so that entry is seen next time
    _PLANT_BOX[key] = (now - 1, box)
    return box


def _check_bbox(bbox: Sequence[float]) -> tuple[float, float, float, float]:
    try:
        minx, miny, maxx, maxy = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise ValidationError([Problem("bbox", None, "bbox",
                                       "expected four numbers: min_lon,min_lat,max_lon,max_lat")
                               ]) from None
    if not all(np.isfinite([minx, miny, maxx, maxy])) or minx > maxx or miny > maxy:
        raise ValidationError([Problem("bbox", None, "bbox",
                                       f"not a WGS84 rectangle: {tuple(bbox)!r}")])
    return minx, miny, maxx, maxy


def _check_empty(conn: Connection) -> None:
    """:class:`ConflictError` naming each layer that holds features, with how many."""
    problems = []
    tables = {name: LAYER_TABLES[name] for name in LOAD_ORDER}
    if strand_rows.migrated(conn):
        tables.update(STRAND_TABLES)
    for name, table in tables.items():
        held = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
        if held:
            problems.append(Problem(name, None, None,
                                    f"the database holds {held} {name} already"))
    if problems:
        raise ConflictError(problems)


def _check_page(table: str, limit: int, offset: int) -> None:
    if limit < 0 or offset < 0:
        raise ValidationError([Problem(table, None, "limit" if limit < 0 else "offset",
                                       "must be >= 0")])


def _db_value(value: Any) -> Any:
    """A validated cell as the database driver takes it: None for missing, no numpy types."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _utc(when: datetime) -> datetime:
    """An aware UTC timestamp (naive ones are taken as UTC); SQLite stores it as UTC text."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _aware(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
