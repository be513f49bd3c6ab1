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
import os
import sqlite3
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyogrio  # noqa: F401  -- GDAL's SQLite must be loaded before mod_spatialite
import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import make_url

from netgis.errors import ConfigError, StorageUnavailable
from netgis.storage import faults
from netgis.storage.dialects import load_spatialite

#: The database used when none is named: a SpatiaLite file in the working directory.
DEFAULT_DATABASE_URL = "sqlite:///./netgis.db"
#: How long a write waits for other writers before it gives up (docs/spec.md §3.5: at least 30 s).
BUSY_TIMEOUT_S = 30
#: Execution option marking a connection whose transactions write (see :func:`begin_write`).
WRITE_OPTION = "netgis_write"
#: Engine execution option naming the SpatiaLite file an engine serves (see :func:`sqlite_file`).
FILE_OPTION = "netgis_sqlite_file"
#: Key of a pooled connection's :class:`FileState` at the time it was opened.
_FILE_STATE = "netgis_file_state"
_PRE_OPEN_STATE = "netgis_file_state_before_open"


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


def create_engine(url: str | None = None, *, create: bool = True,
                  **kwargs: Any) -> sqlalchemy.Engine:
    """An engine for ``url`` (default :func:`default_database_url`).

    SQLite connections load mod_spatialite, run in WAL mode with a busy
    timeout (readers and one writer in several processes) and enforce
    foreign keys.

    A SpatiaLite file is watched, so that the engine follows the file at its
    path instead of whatever its connections opened once: every checkout
    checks that the file is still there and the same (device and inode), and
    replaces connections opened while it was read-only once it is writable
    again; a file fault (read-only, missing, I/O error) replaces every pooled
    connection; :func:`begin_write` refuses to start when the file cannot be
    written (:class:`StorageUnavailable`, no 500 halfway through).

    Parameters
    ----------
    create
        Whether opening a SpatiaLite file that does not exist creates it (an
        empty database). A server passes False: a file that went missing is an
        outage to report, not a new empty database to fill.
    """
    full = normalize_url(url or default_database_url())
    if make_url(full).get_backend_name() == "postgresql":
        connect_args = _postgres_connect_args(full, kwargs.pop("connect_args", {}))
        return sqlalchemy.create_engine(full, pool_pre_ping=True, connect_args=connect_args,
                                        **kwargs)
    target, path = _sqlite_target(make_url(full), create=create)
    engine = sqlalchemy.create_engine(target, **kwargs)

    @event.listens_for(engine, "handle_error")
    def _on_error(context: sqlalchemy.engine.ExceptionContext) -> None:
        # a file fault sticks to the connections that saw it: replace them all
        if faults.invalidates_pool(context.original_exception):
            context.is_disconnect = True

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        _set_up_sqlite_connection(dbapi_conn, wal=path is not None)
        if path is not None:
            _record_opened_file(record, path)

    if path is not None:
        engine.update_execution_options(**{FILE_OPTION: str(path)})
        _watch_file(engine, path)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sqlalchemy.Connection) -> None:
        # A plain BEGIN takes the write lock only at the first write, and a reader that
        # then wants to write fails at once with "database is locked" (waiting could
        # deadlock). A write transaction asks for the lock first and so waits its turn.
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _set_up_sqlite_connection(dbapi_conn: Any, *, wal: bool) -> None:
    """Load mod_spatialite into a new pysqlite connection and set its pragmas: foreign keys,
    the busy timeout, the page cache and (``wal``: a file, not memory) WAL mode."""
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
        if wal:
            # a read-only file that is not in WAL mode yet cannot switch; it can
            # still be read, and writes will say why they cannot happen
            with contextlib.suppress(sqlite3.OperationalError):
                cur.execute("PRAGMA journal_mode = WAL")
    finally:
        cur.close()


def _record_opened_file(record: Any, path: Path) -> None:
    """Keep in the pool ``record`` of a connection just opened the state of the file it
    holds, which every checkout compares with the file at ``path`` then."""
    # stat after opening: the file this connection holds; writable only if it was so
    # before the open too (SQLite opens a file it cannot write read-only for good, and a
    # chmod or chown right after the open must not make that connection look writable)
    after = file_state(path)
    before: FileState | None = record.info.pop(_PRE_OPEN_STATE, None)
    if after is not None and (before is None or not before.writable):
        after = FileState(after.identity, False)
    record.info[_FILE_STATE] = after


def _watch_file(engine: sqlalchemy.Engine, path: Path) -> None:
    """Make ``engine`` follow the SpatiaLite file at ``path``: note its state before each
    open, and at checkout replace the pool when the file is gone or another one, and a
    connection opened read-only when the file is writable again."""

    @event.listens_for(engine, "do_connect")
    def _before_connect(_dialect: Any, record: Any, _cargs: Any, _cparams: Any) -> None:
        record.info[_PRE_OPEN_STATE] = file_state(path)

    @event.listens_for(engine, "checkout")
    def _on_checkout(_dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        opened: FileState | None = record.info.get(_FILE_STATE)
        now = file_state(path)
        if now is None:
            raise sqlalchemy.exc.InvalidatePoolError(f"the database file {path} is gone")
        if opened is None or opened.identity != now.identity:
            raise sqlalchemy.exc.InvalidatePoolError(f"the database file {path} was replaced")
        if now.writable and not opened.writable:
            # SQLite opened it read-only and would stay so: open it anew
            raise sqlalchemy.exc.DisconnectionError(f"{path} is writable again")


@dataclass(frozen=True)
class FileState:
    """What a SpatiaLite file is (device and inode) and whether it can be written."""

    identity: tuple[int, int]
    writable: bool


def file_state(path: Path) -> FileState | None:
    """The state of the database file at ``path`` now, None when there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return FileState((st.st_dev, st.st_ino), file_writable(path))


def file_writable(path: Path) -> bool:
    """Whether a write to the SpatiaLite file ``path`` can succeed, as far as the OS says.

    The file itself, its WAL and shared-memory files when they exist, and the
    folder when the WAL file must still be created.
    """
    if not os.access(path, os.W_OK):
        return False
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists() and not os.access(extra, os.W_OK):
            return False
    wal = path.with_name(path.name + "-wal")
    return wal.exists() or os.access(path.parent, os.W_OK | os.X_OK)


def sqlite_file(engine: sqlalchemy.Engine) -> Path | None:
    """The SpatiaLite file an engine made by :func:`create_engine` serves (None: none)."""
    value = engine.get_execution_options().get(FILE_OPTION)
    return None if value is None else Path(value)


def check_file_writable(conn: sqlalchemy.Connection) -> None:
    """:class:`StorageUnavailable` unless the connection's SpatiaLite file can take writes.

    Nothing to check for PostgreSQL or an in-memory database.
    """
    path = sqlite_file(conn.engine)
    if path is None:
        return
    opened: FileState | None = conn.connection.info.get(_FILE_STATE)
    now = file_state(path)
    if now is None or opened is None or now.identity != opened.identity:
        raise StorageUnavailable(f"the database file {path} is missing or was replaced",
                                 reason="the database file cannot be opened")
    if not now.writable or not opened.writable:
        raise StorageUnavailable(f"the database file {path} is read-only",
                                 reason="the database file is read-only")


def _sqlite_target(url: sqlalchemy.URL, *, create: bool) -> tuple[sqlalchemy.URL, Path | None]:
    """The URL to connect with and the file to watch (None: in memory or a URI of its own).

    Without ``create`` the file is opened as the URI ``file:PATH?mode=rw``: a
    missing file is then an error instead of a new, empty database.
    """
    database = url.database
    if database in (None, "", ":memory:") or database.startswith("file:") or \
            "uri" in url.query:
        return url, None
    path = Path(os.path.abspath(database))
    if create:
        return url, path
    uri = "file:" + urllib.parse.quote(str(path))
    return url.set(database=uri, query={**url.query, "mode": "rw", "uri": "true"}), path


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
    writes queue instead of failing. A SpatiaLite file that cannot be written
    (read-only, missing, replaced) is a :class:`StorageUnavailable` before
    anything starts.
    """
    with engine.connect() as conn:
        # a write into a read-only or vanished file would fail halfway (or, worse, go
        # into a file that is no longer at its path): refuse it before it starts
        check_file_writable(conn)
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
