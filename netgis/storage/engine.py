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

from typing import Any

import pyogrio  # noqa: F401  -- GDAL's SQLite must be loaded before mod_spatialite
import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import make_url

from netgis.errors import ConfigError
from netgis.storage.dialects import load_spatialite

#: The database used when none is named: a SpatiaLite file in the working directory.
DEFAULT_DATABASE_URL = "sqlite:///./netgis.db"


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
        return sqlalchemy.create_engine(full, pool_pre_ping=True, **kwargs)
    engine = sqlalchemy.create_engine(full, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy issue BEGIN itself so that DDL and InitSpatialMetaData are
        # transactional too (pysqlite would otherwise start transactions only before DML).
        dbapi_conn.isolation_level = None
        load_spatialite(dbapi_conn)
        cur = dbapi_conn.cursor()
        try:
            cur.execute("PRAGMA foreign_keys = ON")
            cur.execute("PRAGMA busy_timeout = 30000")
            # a larger page cache (up to 128 MiB, allocated as used) keeps bulk loads of
            # a million rows from thrashing the R*Tree and primary-key B-trees
            cur.execute("PRAGMA cache_size = -131072")
            if make_url(full).database not in (None, "", ":memory:"):
                cur.execute("PRAGMA journal_mode = WAL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sqlalchemy.Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine
