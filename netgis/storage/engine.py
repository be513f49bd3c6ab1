"""One engine factory for both databases.

``sqlite:///path.db`` is a SpatiaLite file (mod_spatialite is loaded on every
connection, transactions are real SQLite transactions, DDL included);
``postgresql+psycopg://user@host/db`` is PostGIS through psycopg 3.

Examples
--------
>>> engine = create_engine("sqlite://")
>>> with engine.connect() as conn:
...     conn.exec_driver_sql("SELECT spatialite_version() IS NOT NULL").scalar()
1
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pyogrio  # noqa: F401  -- GDAL's SQLite must be loaded before mod_spatialite
import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import make_url

from netgis.errors import ConfigError
from netgis.storage import faults
from netgis.storage.dialects import load_spatialite

#: The database used when none is named: a SpatiaLite file in the working directory.
DEFAULT_DATABASE_URL = "sqlite:///./netgis.db"
#: How long a write waits for other writers before it gives up (SPEC: at least 30 s).
BUSY_TIMEOUT_S = 30
#: Execution option marking a connection whose transactions write (see :func:`begin_write`).
WRITE_OPTION = "netgis_write"


def default_database_url() -> str:
    """The default database: the SpatiaLite file ``./netgis.db``.

    Examples
    --------
    >>> default_database_url()
    'sqlite:///./netgis.db'
    """
    return DEFAULT_DATABASE_URL


def normalize_url(url: str) -> str:
    """Pick the driver netgis uses: psycopg 3 for PostgreSQL, pysqlite for SQLite.

    Examples
    --------
    >>> normalize_url("postgresql://postgres@127.0.0.1/netgis")
    'postgresql+psycopg://postgres@127.0.0.1/netgis'
    """
    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError as exc:
        raise ConfigError(f"not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend == "sqlite":
        parsed = parsed.set(drivername="sqlite")
    else:
        raise ConfigError(f"unsupported database {backend!r}: use sqlite:///FILE (SpatiaLite) "
                          "or postgresql+psycopg://... (PostGIS)")
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str | None = None, **kwargs: Any) -> sqlalchemy.Engine:
    """An engine for ``url`` (default :func:`default_database_url`).

    SQLite connections load mod_spatialite, run in WAL mode with a busy
    timeout (readers and one writer in several processes) and enforce
    foreign keys.
    """
    full = normalize_url(url or default_database_url())
    if make_url(full).get_backend_name() == "postgresql":
        connect_args = _postgres_connect_args(full, kwargs.pop("connect_args", {}))
        return sqlalchemy.create_engine(full, pool_pre_ping=True, connect_args=connect_args,
                                        **kwargs)
    engine = sqlalchemy.create_engine(full, **kwargs)

    @event.listens_for(engine, "handle_error")
    def _on_error(context: sqlalchemy.engine.ExceptionContext) -> None:
        # a file fault sticks to the connections that saw it: replace them all
        if faults.invalidates_pool(context.original_exception):
            context.is_disconnect = True

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy issue BEGIN itself so that DDL and InitSpatialMetaData are
        # transactional too (pysqlite would otherwise start transactions only before DML).
        dbapi_conn.isolation_level = None
        load_spatialite(dbapi_conn)
        cur = dbapi_conn.cursor()
        try:
            cur.execute("PRAGMA foreign_keys = ON")
            cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
            # a larger page cache (up to 128 MiB, allocated as used) keeps bulk loads of
            # a million rows from thrashing the R*Tree and primary-key B-trees
            cur.execute("PRAGMA cache_size = -131072")
            if make_url(full).database not in (None, "", ":memory:"):
                cur.execute("PRAGMA journal_mode = WAL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sqlalchemy.Connection) -> None:
        # A plain BEGIN takes the write lock only at the first write, and a reader that
        # then wants to write fails at once with "database is locked" (waiting could
        # deadlock). A write transaction asks for the lock first and so waits its turn.
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _postgres_connect_args(url: str, given: dict[str, Any]) -> dict[str, Any]:
    """Connect and lock timeouts, unless the URL or the caller sets their own."""
    query = make_url(url).query
    args: dict[str, Any] = {}
    if "connect_timeout" not in query:
        # a server that does not answer is an outage (503), not a request that hangs
        args["connect_timeout"] = 10
    if "options" not in query:
        # a write waiting this long for a lock gives up (503 with Retry-After)
        args["options"] = f"-c lock_timeout={BUSY_TIMEOUT_S}s"
    return {**args, **given}


@contextlib.contextmanager
def begin_write(engine: sqlalchemy.Engine) -> Iterator[sqlalchemy.Connection]:
    """A transaction that writes: committed at the end, rolled back on any exception.

    On SQLite it starts with ``BEGIN IMMEDIATE``: it takes the write lock first,
    waiting up to :data:`BUSY_TIMEOUT_S` for other writers, so that concurrent
    writes queue instead of failing.
    """
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            yield conn


@contextlib.contextmanager
def begin_read(engine: sqlalchemy.Engine) -> Iterator[sqlalchemy.Connection]:
    """A read-only transaction whose statements all see one snapshot of the database.

    PostgreSQL: ``REPEATABLE READ READ ONLY`` (the snapshot is taken at the first
    statement; a write committed meanwhile stays invisible). SQLite: one
    transaction is a snapshot already (in WAL mode readers see the database as of
    their first read; otherwise the read lock keeps writers from committing).
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            yield conn
