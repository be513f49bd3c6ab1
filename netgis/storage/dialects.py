"""Every difference between SpatiaLite and PostGIS that netgis relies on, in one place.

Loading SpatiaLite and its metadata, creating the PostGIS extension, spatial
indexes, bbox filters, distances in meters, upserts, the bulk write path and
membership in a JSON array.
Everything else in :mod:`netgis.storage` is dialect-neutral SQLAlchemy.
Table and column names here come from the model, never from user input;
values always travel as bound parameters.

Examples
--------
>>> from sqlalchemy import create_engine
>>> engine = create_engine("sqlite://")
>>> dialect_name(engine.dialect)
'sqlite'
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import pyogrio  # noqa: F401  -- must be imported before mod_spatialite is loaded
from geoalchemy2 import Geography
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Connection,
    Dialect,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    literal_column,
    null,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from netgis.errors import StorageError
from netgis.storage.models import SRID

SPATIALITE_MODULE = "mod_spatialite"
#: Internal tables of SpatiaLite (and GDAL) that migrations must ignore.
SPATIALITE_TABLE_PREFIXES = (
    "geometry_columns", "spatial_ref_sys", "spatialite_history", "sqlite_", "views_geometry",
    "virts_geometry", "idx_", "sql_statements_log", "spatial_ref_sys_aux", "SpatialIndex",
    "ElementaryGeometries", "KNN", "data_licenses", "gpkg_", "vgpkg_", "rl2map",
    "SE_", "ISO_metadata", "wms_", "topologies", "networks", "raster_coverages",
    "vector_coverages", "stored_", "geom_cols_ref_sys", "spatial_ref_sys_all", "KNN2",
)


def dialect_name(dialect: Dialect) -> str:
    """``sqlite`` or ``postgresql``; any other database is a :class:`StorageError`."""
    if dialect.name not in ("sqlite", "postgresql"):
        raise StorageError(f"unsupported database {dialect.name!r}: use SpatiaLite or PostGIS")
    return dialect.name


def load_spatialite(dbapi_conn: Any) -> None:
    """Load mod_spatialite into a fresh sqlite3 connection (called on every connect)."""
    dbapi_conn.enable_load_extension(True)
    try:
        dbapi_conn.load_extension(SPATIALITE_MODULE)
    except Exception as exc:  # sqlite3.OperationalError: library missing
        raise StorageError(f"cannot load {SPATIALITE_MODULE} (install libsqlite3-mod-spatialite): "
                           f"{exc}") from exc
    finally:
        dbapi_conn.enable_load_extension(False)


def prepare_database(conn: Connection) -> None:
    """Make the database spatial: SpatiaLite metadata or the PostGIS extension (idempotent)."""
    if dialect_name(conn.dialect) == "sqlite":
        if not conn.execute(text("SELECT CheckSpatialMetaData()")).scalar():
            # WGS84-only metadata takes a fraction of a second instead of many; 0: we are
            # already inside the migration's transaction.
            conn.execute(text("SELECT InitSpatialMetaData(0, 'WGS84')"))
    else:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))


def table_exists(conn: Connection, name: str) -> bool:
    """Whether the database has a table ``name`` (in the default schema): one catalogue
    lookup, for code that must also run on databases of older revisions."""
    if dialect_name(conn.dialect) == "sqlite":
        found = conn.execute(text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                  "name = :name"), {"name": name}).first()
        return found is not None
    return bool(conn.execute(text("SELECT to_regclass(:name) IS NOT NULL"),
                             {"name": name}).scalar())


def spatial_index_name(table: str, column: str = "geometry") -> str:
    """Name of the spatial index of ``table.column`` (GeoAlchemy2's convention)."""
    return f"idx_{table}_{column}"


def create_spatial_index(conn: Connection, table: Table, column: str = "geometry") -> None:
    """Create the spatial index of ``table.column`` if it does not exist yet."""
    if dialect_name(conn.dialect) == "sqlite":
        exists = conn.execute(
            text("SELECT spatial_index_enabled FROM geometry_columns "
                 "WHERE f_table_name = :t AND f_geometry_column = :c"),
            {"t": table.name.lower(), "c": column.lower()},
        ).scalar()
        if not exists:
            conn.execute(select(func.CreateSpatialIndex(table.name, column)))
    else:
        Index(spatial_index_name(table.name, column), table.c[column],
              postgresql_using="gist").create(conn, checkfirst=True)


def envelope(dialect: Dialect, bbox: Sequence[float]) -> ColumnElement[Any]:
    """A WGS84 rectangle (minx, miny, maxx, maxy) as a geometry expression."""
    minx, miny, maxx, maxy = (float(v) for v in bbox)
    if dialect_name(dialect) == "sqlite":
        return func.BuildMbr(minx, miny, maxx, maxy, SRID)
    return func.ST_MakeEnvelope(minx, miny, maxx, maxy, SRID)


def bbox_filter(dialect: Dialect, table: Table, bbox: Sequence[float],
                column: str = "geometry", *, exact: bool = True) -> ColumnElement[bool]:
    """Rows of ``table`` whose geometry intersects the WGS84 ``bbox``, using the spatial index.

    PostGIS uses its GIST index through ``ST_Intersects``; SpatiaLite needs the
    R*Tree asked explicitly through its ``SpatialIndex`` virtual table.
    ``exact=False``: rows whose bounding box intersects it, a superset that
    spares the database the exact test of each row (exact for points); the
    caller tests the rest.
    """
    geom = table.c[column]
    box = envelope(dialect, bbox)
    if dialect_name(dialect) == "postgresql":
        if not exact:
            return geom.op("&&", return_type=Boolean)(box)
        # a bare ST_Intersects (not "IS TRUE") is what lets the planner use the GIST index
        return func.ST_Intersects(geom, box, type_=Boolean)
    candidates = text(
        "SELECT ROWID FROM SpatialIndex WHERE f_table_name = :sx_table "
        "AND f_geometry_column = :sx_column AND search_frame = BuildMbr(:sx_minx, :sx_miny, "
        ":sx_maxx, :sx_maxy, :sx_srid)"
    ).bindparams(sx_table=table.name, sx_column=column, sx_srid=SRID,
                 **dict(zip(("sx_minx", "sx_miny", "sx_maxx", "sx_maxy"),
                            (float(v) for v in bbox), strict=True)))
    # ROWID is what the SpatiaLite R*Tree indexes; the name comes from the model.
    rowid: ColumnElement[Any] = literal_column(f"{table.name}.ROWID")
    if not exact:
        return and_(rowid.in_(candidates), func.MbrIntersects(geom, box) == 1)
    return and_(rowid.in_(candidates), func.ST_Intersects(geom, box) == 1)


def grid_cell(dialect: Dialect, table: Table, bbox: Sequence[float], grid: int,
              column: str = "geometry") -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """Column and row of each geometry's bounding-box corner (min x, min y) on a ``grid`` x
    ``grid`` grid over the WGS84 ``bbox`` (vector-tile thinning); a corner left of or below
    the box counts in the first column or row.
    """
    geom = table.c[column]
    west, south, east, north = (float(v) for v in bbox)
    sx, sy = grid / (east - west), grid / (north - south)
    if dialect_name(dialect) == "sqlite":
        # SQLite's CAST truncates: the corner is clamped into the box first, so it floors
        return (cast((func.max(func.MbrMinX(geom), west) - west) * sx, Integer),
                cast((func.max(func.MbrMinY(geom), south) - south) * sy, Integer))
    return (func.floor((func.greatest(func.ST_XMin(geom), west) - west) * sx),
            func.floor((func.greatest(func.ST_YMin(geom), south) - south) * sy))


def lowest_id(dialect: Dialect, column: ColumnElement[Any]) -> ColumnElement[Any]:
    """The lowest of ``column``'s text values in code point order (an aggregate)."""
    if dialect_name(dialect) == "postgresql":
        # the database's collation may sort by language; "C" is code point order
        return func.min(column.collate("C"))
    return func.min(column)  # SQLite's BINARY: UTF-8 bytes, the code point order


def distance_m(dialect: Dialect, a: ColumnElement[Any],
               b: ColumnElement[Any]) -> ColumnElement[Any]:
    """Geodesic distance in meters between two WGS84 geometries (never degrees)."""
    if dialect_name(dialect) == "sqlite":
        return func.ST_Distance(a, b, 1)  # 1: on the ellipsoid, in meters
    return func.ST_Distance(a.cast(Geography(srid=SRID)), b.cast(Geography(srid=SRID)))


def point(dialect: Dialect, lon: float, lat: float) -> ColumnElement[Any]:
    """A WGS84 point as a geometry expression with bound coordinates."""
    if dialect_name(dialect) == "sqlite":
        return func.MakePoint(float(lon), float(lat), SRID)
    return func.ST_SetSRID(func.ST_MakePoint(float(lon), float(lat)), SRID)


def geometry_from_wkb(dialect: Dialect, wkb: bytes) -> ColumnElement[Any]:
    """A WGS84 geometry expression from WKB bytes (bound as a parameter)."""
    value = bindparam("geometry_wkb", bytes(wkb), type_=LargeBinary)
    if dialect_name(dialect) == "sqlite":
        return func.GeomFromWKB(value, SRID)
    return func.ST_SetSRID(func.ST_GeomFromWKB(value), SRID)


def geometry_literal(dialect: Dialect, wkb: bytes) -> ColumnElement[Any]:
    """A WGS84 geometry from WKB bytes as an anonymous bound parameter (several may share a
    statement, as in a filter with two geometries)."""
    value = bindparam(None, bytes(wkb), type_=LargeBinary)
    if dialect_name(dialect) == "sqlite":
        return func.GeomFromWKB(value, SRID)
    return func.ST_SetSRID(func.ST_GeomFromWKB(value), SRID)


def _glob_pattern(pattern: str) -> str:
    """A SQL LIKE pattern (``%``, ``_``, ``\\`` escapes) as the equivalent SQLite GLOB pattern."""
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            ch = next(chars, "\\")
            out.append(f"[{ch}]" if ch in "*?[" else ch)
        elif ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch in "*?[":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)


def like(dialect: Dialect, expr: ColumnElement[Any], pattern: str) -> ColumnElement[bool]:
    """``expr LIKE pattern``, case-sensitive on both databases (``\\`` escapes).

    SQLite's LIKE ignores ASCII case, so there the pattern becomes a GLOB,
    which does not.

    Examples
    --------
    >>> _glob_pattern(r"50\\% off_*")
    '50% off?[*]'
    """
    if dialect_name(dialect) == "sqlite":
        return expr.op("GLOB", is_comparison=True)(_glob_pattern(pattern))
    return expr.like(pattern, escape="\\")


#: Decimals of coordinates the database writes in GeoJSON (WGS84: far below a micrometer).
GEOJSON_DECIMALS = 15


def as_geojson(dialect: Dialect, column: ColumnElement[Any]) -> ColumnElement[Any]:
    """The GeoJSON geometry object of ``column`` as text, written by the database."""
    if dialect_name(dialect) == "sqlite":
        return func.AsGeoJSON(column, GEOJSON_DECIMALS, type_=String)
    return func.ST_AsGeoJSON(column, GEOJSON_DECIMALS, type_=String)


def properties_json(dialect: Dialect, table: Table,
                    fields: Sequence[tuple[str, str]]) -> ColumnElement[Any]:
    """A JSON object of ``fields`` (name, contract type) of each row, as text written by the
    database (``json_object`` on SQLite, ``json_build_object`` on PostgreSQL), in order.

    SQLite stores booleans as 0/1: they are written as JSON ``true``/``false``.
    """
    args: list[Any] = []
    for name, kind in fields:
        column = table.c[name]
        if dialect_name(dialect) == "sqlite" and kind == "bool":
            value: Any = func.json(case((column.is_(None), None), (column != 0, "true"),
                                        else_="false"))
        else:
            value = column
        args += [literal(name, String), value]
    if dialect_name(dialect) == "sqlite":
        return func.json_object(*args, type_=String)
    return cast(func.json_build_object(*args), String)


def extent_columns(dialect: Dialect, column: ColumnElement[Any]) -> list[ColumnElement[Any]]:
    """min x, min y, max x, max y of every geometry in ``column``: one spatial aggregate
    (``ST_Extent`` on PostGIS, ``Extent`` on SpatiaLite) for a whole table."""
    if dialect_name(dialect) == "sqlite":
        box = func.Extent(column)
        return [func.MbrMinX(box), func.MbrMinY(box), func.MbrMaxX(box), func.MbrMaxY(box)]
    box = func.ST_Extent(column)
    return [func.ST_XMin(box), func.ST_YMin(box), func.ST_XMax(box), func.ST_YMax(box)]


def upsert_statement(dialect: Dialect, table: Table, columns: Sequence[str]) -> Any:
    """``INSERT ... ON CONFLICT (id) DO UPDATE`` replacing every column but the id."""
    pk = [c.name for c in table.primary_key.columns]
    mod = sqlite if dialect_name(dialect) == "sqlite" else postgresql
    stmt = mod.insert(table)
    return stmt.on_conflict_do_update(
        index_elements=pk,
        set_={c: stmt.excluded[c] for c in columns if c not in pk},
    )


#: How many ids go into one ``IN (...)`` list on SQLite (it allows 32766 bound values).
_ID_CHUNK = 5000


def id_conditions(dialect: Dialect, column: ColumnElement[Any],
                  ids: Sequence[str]) -> list[ColumnElement[bool]]:
    """Conditions that together select the rows whose ``column`` is one of ``ids``: one
    array parameter on PostgreSQL, chunks of :data:`_ID_CHUNK` ids on SQLite (its limit of
    bound parameters); run one statement per condition."""
    if dialect_name(dialect) == "postgresql":
        return [column == any_(bindparam("ids", list(ids), type_=postgresql.ARRAY(String)))]
    return [column.in_(list(ids[start:start + _ID_CHUNK]))
            for start in range(0, len(ids), _ID_CHUNK)]


def ids_present(conn: Connection, column: ColumnElement[Any], ids: Sequence[str]) -> list[str]:
    """Which of ``ids`` exist in ``column`` (see :func:`id_conditions`)."""
    found: list[str] = []
    for condition in id_conditions(conn.dialect, column, ids):
        found.extend(conn.execute(select(column).where(condition)).scalars())
    return found


def feature_json(dialect: Dialect, table: Table, fields: Sequence[tuple[str, str]],
                 id_field: str) -> ColumnElement[Any]:
    """Each row of ``table`` as a GeoJSON Feature (every field of ``fields`` a property, the
    geometry in WGS84), built by the database: for keeping many features in a JSON column
    without reading them out (``json`` on PostgreSQL, JSON text on SQLite)."""
    props = properties_json(dialect, table, fields)
    geometry = as_geojson(dialect, table.c.geometry)
    head = [literal("type", String), literal("Feature", String), literal("id", String),
            table.c[id_field]]
    if dialect_name(dialect) == "sqlite":
        return func.json_object(*head, literal("properties", String), func.json(props),
                                literal("geometry", String), func.json(geometry),
                                type_=String)
    return func.json_build_object(*head, literal("properties", String),
                                  cast(props, postgresql.JSON), literal("geometry", String),
                                  cast(geometry, postgresql.JSON), type_=postgresql.JSON)


def attribute_feature_json(dialect: Dialect, table: Table, fields: Sequence[tuple[str, str]],
                           feature_id: ColumnElement[Any]) -> ColumnElement[Any]:
    """Each row of a table without geometry (a strand layer) as a GeoJSON Feature with
    ``geometry: null`` and the id ``feature_id`` (an expression), built by the database:
    :func:`feature_json` for attribute tables."""
    props = properties_json(dialect, table, fields)
    head = [literal("type", String), literal("Feature", String), literal("id", String),
            feature_id]
    if dialect_name(dialect) == "sqlite":
        return func.json_object(*head, literal("properties", String), func.json(props),
                                literal("geometry", String), null(), type_=String)
    return func.json_build_object(*head, literal("properties", String),
                                  cast(props, postgresql.JSON), literal("geometry", String),
                                  null(), type_=postgresql.JSON)


def bulk_write(conn: Connection, table: Table, columns: Sequence[str],
               rows: Sequence[tuple[Any, ...]], *, upsert: bool) -> None:
    """Write many rows at once; the last value of each row is the geometry as WKB.

    SpatiaLite: one ``executemany`` of a prepared insert (``GeomFromWKB``).
    PostGIS: ``COPY`` into a temporary staging table, then one
    ``INSERT ... SELECT`` (with ``ON CONFLICT`` for upserts). No ORM, no
    per-row round trip.
    """
    if not rows:
        return
    if dialect_name(conn.dialect) == "sqlite":
        _sqlite_write(conn, table, columns, rows, upsert=upsert)
    else:
        _postgis_write(conn, table, columns, rows, upsert=upsert)


def _sqlite_write(conn: Connection, table: Table, columns: Sequence[str],
                  rows: Sequence[tuple[Any, ...]], *, upsert: bool) -> None:
    attrs = list(columns)
    values: dict[str, Any] = {c: bindparam(c) for c in attrs}
    # the SRID is our constant, written into the statement so every row binds the same slots
    values["geometry"] = func.GeomFromWKB(bindparam("geometry"), literal_column(str(SRID)))
    stmt = upsert_statement(conn.dialect, table, [*attrs, "geometry"]) if upsert \
        else insert(table)
    compiled = stmt.values(values).compile(dialect=conn.dialect)
    order = [*attrs, "geometry"]
    names = list(compiled.positiontup or [])
    if names == order:
        params: Sequence[Sequence[Any]] = rows
    else:
        # SQLAlchemy put the parameters in another order: rearrange each row once
        picks = [order.index(n) for n in names]
        params = [tuple(r[i] for i in picks) for r in rows]
    with _rtree_filled_afterwards(conn, table, active=len(rows) >= _RTREE_BULK_ROWS):
        # one prepared statement for all rows, as positional tuples: SQLAlchemy hands them
        # to executemany untouched (no per-row parameter processing), and its error
        # handling still applies (errors wrapped, a file fault replaces the connections)
        conn.exec_driver_sql(str(compiled), list(params) if len(params) > 1 else params[0])


#: From this many rows on, per-row spatial index upkeep gives way to set-based statements.
_RTREE_BULK_ROWS = 1000


@contextlib.contextmanager
def _rtree_filled_afterwards(conn: Connection, table: Table, *, active: bool) -> Iterator[None]:
    """Insert rows without SpatiaLite's per-row insert triggers, then do their work at once.

    The triggers (R*Tree entry, geometry type/SRID check, last-insert time)
    cost about nine tenths of a bulk insert. Inside the load's transaction
    they are dropped; afterwards the new rows (ROWIDs above the old maximum;
    upserted rows keep theirs and go through the update triggers) enter the
    R*Tree in one ``INSERT ... SELECT``, are checked against the column's
    type and SRID in one query, and the triggers are recreated from
    SpatiaLite's own definitions. A failure rolls all of it back.
    """
    names = [f"{kind}_{table.name}_geometry" for kind in ("gii", "ggi", "tmi")]
    found: dict[str, str] = dict(conn.execute(
        text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN "
             "(:a, :b, :c)"), dict(zip("abc", names, strict=True))).all()) if active else {}
    if not found:
        yield
        return
    quote = conn.dialect.identifier_preparer.quote
    rowid: ColumnElement[Any] = literal_column("ROWID")
    before = int(conn.execute(select(func.max(rowid)).select_from(table)).scalar() or 0)
    # identifiers come from the model and SpatiaLite; DDL takes no bound parameters
    for name in found:
        conn.exec_driver_sql(f"DROP TRIGGER {quote(name)}")
    yield
    new_rows = {"before": before}
    if names[0] in found:
        conn.execute(text(
            f"INSERT INTO {quote(spatial_index_name(table.name))} (pkid, xmin, xmax, ymin, ymax) "
            "SELECT ROWID, MbrMinX(geometry), MbrMaxX(geometry), MbrMinY(geometry), "
            f"MbrMaxY(geometry) FROM {quote(table.name)} WHERE ROWID > :before"), new_rows)
    if names[1] in found:
        bad = conn.execute(text(
            f"SELECT count(*) FROM {quote(table.name)} t JOIN geometry_columns g "
            "ON g.f_table_name = :table AND g.f_geometry_column = 'geometry' "
            "WHERE t.ROWID > :before "
            "AND GeometryConstraints(t.geometry, g.geometry_type, g.srid) IS NOT 1"),
            {**new_rows, "table": table.name.lower()}).scalar()
        if bad:
            raise StorageError(f"{bad} geometries of {table.name} do not fit the column "
                               "(type or SRID)")
    if names[2] in found:
        conn.execute(text(
            "UPDATE geometry_columns_time SET last_insert = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
            "WHERE f_table_name = :table AND f_geometry_column = 'geometry'"),
            {"table": table.name.lower()})
    for name in names:
        if name in found:
            conn.exec_driver_sql(str(found[name]))


def _postgis_write(conn: Connection, table: Table, columns: Sequence[str],
                   rows: Sequence[tuple[Any, ...]], *, upsert: bool) -> None:
    from sqlalchemy import Column, MetaData
    from sqlalchemy import Table as SaTable

    attrs = list(columns)
    stage = SaTable(
        f"netgis_stage_{table.name}", MetaData(),
        *(Column(c, table.c[c].type) for c in attrs),
        Column("geometry_wkb", LargeBinary),
        prefixes=["TEMPORARY"], postgresql_on_commit="DROP",
    )
    stage.create(conn)
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    copy_sql = _copy_statement(conn, stage)
    with _driver_errors(conn, copy_sql), \
            dbapi.cursor() as cur, cur.copy(copy_sql) as copy:  # type: ignore[attr-defined]
        for row in rows:
            copy.write_row(row)
    geom = func.ST_SetSRID(func.ST_GeomFromWKB(stage.c.geometry_wkb), SRID)
    source = select(*(stage.c[c] for c in attrs), geom)
    target = [*attrs, "geometry"]
    if upsert:
        stmt = upsert_statement(conn.dialect, table, target).from_select(target, source)
    else:
        stmt = insert(table).from_select(target, source)
    # Into an empty table, building the GIST index once afterwards (a sorted build)
    # is several times faster than growing it row by row. DDL is transactional here.
    rebuild = len(rows) >= _RTREE_BULK_ROWS and conn.execute(
        select(literal_column("1")).select_from(table).limit(1)).first() is None
    index = Index(spatial_index_name(table.name), table.c.geometry, postgresql_using="gist")
    if rebuild:
        index.drop(conn, checkfirst=True)
    conn.execute(stmt)
    if rebuild:
        index.create(conn)
    stage.drop(conn)
    if len(rows) >= _RTREE_BULK_ROWS:
        # fresh statistics, or the planner scans the whole table for a bbox until autovacuum
        # gets round to it; the name comes from the model
        conn.exec_driver_sql(f"ANALYZE {conn.dialect.identifier_preparer.quote(table.name)}")


@contextlib.contextmanager
def _driver_errors(conn: Connection, statement: str) -> Iterator[None]:
    """Errors of the driver used directly (COPY) as SQLAlchemy reports its own.

    Wrapped in SQLAlchemy's exception classes, and a lost connection is
    invalidated, so the caller maps them like any other database error and the
    pool does not hand the broken connection out again.
    """
    dbapi = conn.dialect.loaded_dbapi
    try:
        yield
    except dbapi.Error as exc:
        if conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, None):
            conn.invalidate(exc)
        raise DBAPIError.instance(statement, None, exc, dbapi.Error,
                                  connection_invalidated=conn.invalidated,
                                  dialect=conn.dialect) from exc


def _copy_statement(conn: Connection, stage: Table) -> str:
    """``COPY stage (cols) FROM STDIN`` with identifiers quoted by the dialect."""
    prep = conn.dialect.identifier_preparer
    cols = ", ".join(prep.quote(c.name) for c in stage.columns)
    return f"COPY {prep.quote(stage.name)} ({cols}) FROM STDIN"

