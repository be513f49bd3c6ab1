"""Which database errors mean "cannot serve now" rather than a bug or a bad request.

Two kinds, both answered with :class:`netgis.errors.StorageUnavailable` (HTTP 503
with ``Retry-After``):

- **contention** past the busy timeout: SQLite ``SQLITE_BUSY``/``SQLITE_LOCKED``,
  PostgreSQL lock timeouts, deadlocks and serialization failures, and a
  connection pool with no free connection in time;
- **faults**: the PostgreSQL server is down, restarting, unreachable or refuses
  writes; the SpatiaLite file is missing, moved, read-only or broken, or the
  disk is full.

SQLite file faults stick to the connection that saw them (a connection opened
while the file was read-only stays read-only), so :func:`invalidates_pool` tells
the engine to drop every pooled connection and open fresh ones.

Examples
--------
>>> import sqlite3
>>> busy = sqlite3.OperationalError("database is locked")
>>> busy.sqlite_errorcode = 5
>>> is_unavailable(busy), invalidates_pool(busy), public_reason(busy)
(True, False, 'the database is busy')
"""

from __future__ import annotations

import sqlite3

import psycopg
import sqlalchemy

# SQLite primary result codes (https://www.sqlite.org/rescode.html)
SQLITE_PERM = 3
SQLITE_BUSY = 5
SQLITE_LOCKED = 6
SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14
SQLITE_NOTADB = 26

SQLITE_CONTENTION = {SQLITE_BUSY, SQLITE_LOCKED}
#: Codes that come from the file rather than the statement: a new connection may heal them.
SQLITE_FILE_FAULTS = {SQLITE_PERM, SQLITE_READONLY, SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL,
                      SQLITE_CANTOPEN, SQLITE_NOTADB}

#: PostgreSQL SQLSTATEs of contention: lock_not_available (lock_timeout), deadlock_detected,
#: serialization_failure, query_canceled (statement_timeout).
PG_CONTENTION = {"55P03", "40P01", "40001", "57014"}
#: SQLSTATE classes and codes of an unavailable server: connection exceptions, insufficient
#: resources (disk full, too many connections), shutdown/restart, a read-only standby.
PG_UNAVAILABLE_CLASSES = {"08", "53"}
PG_UNAVAILABLE = {"57P01", "57P02", "57P03", "25006"}


def _sqlite_code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(exc, sqlite3.Error) and isinstance(code, int):
        return code & 0xFF  # extended codes carry the primary code in the low byte
    return None


def _dbapi_error(exc: BaseException) -> BaseException:
    """The driver's own exception behind a SQLAlchemy wrapper (or ``exc`` itself)."""
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.orig is not None:
        return exc.orig
    return exc


def is_contention(exc: BaseException) -> bool:
    """Whether ``exc`` means other work held the database longer than the busy timeout."""
    if isinstance(exc, sqlalchemy.exc.TimeoutError):  # no pooled connection free in time
        return True
    orig = _dbapi_error(exc)
    if _sqlite_code(orig) in SQLITE_CONTENTION:
        return True
    return isinstance(orig, psycopg.Error) and orig.sqlstate in PG_CONTENTION


def is_fault(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is down, unreachable or its file is unusable."""
    if isinstance(exc, sqlalchemy.exc.DisconnectionError):
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True
    orig = _dbapi_error(exc)
    if _sqlite_code(orig) in SQLITE_FILE_FAULTS:
        return True
    if isinstance(orig, psycopg.Error):
        state = orig.sqlstate
        if state is None:
            # no SQLSTATE: the client library itself failed (refused, reset, timed out)
            return isinstance(orig, psycopg.OperationalError | psycopg.InterfaceError)
        return state[:2] in PG_UNAVAILABLE_CLASSES or state in PG_UNAVAILABLE
    return False


def is_unavailable(exc: BaseException) -> bool:
    """Contention or a fault: the request may succeed if retried later."""
    return is_contention(exc) or is_fault(exc)


def invalidates_pool(exc: BaseException) -> bool:
    """Whether pooled SQLite connections must be replaced after ``exc``.

    A connection keeps the file it opened (even when the path now names another
    file) and the access it got then (read-only stays read-only), so after a
    file fault only new connections see the file as it is now.
    """
    return _sqlite_code(_dbapi_error(exc)) in SQLITE_FILE_FAULTS


def public_reason(exc: BaseException) -> str:
    """A short phrase for clients: what is wrong, without hosts, paths or SQL."""
    if is_contention(exc):
        return "the database is busy"
    code = _sqlite_code(_dbapi_error(exc))
    if code in (SQLITE_READONLY, SQLITE_PERM):
        return "the database file is read-only"
    if code == SQLITE_CANTOPEN:
        return "the database file cannot be opened"
    if code == SQLITE_FULL:
        return "the disk of the database is full"
    if code in (SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_NOTADB):
        return "the database file cannot be read or written"
    orig = _dbapi_error(exc)
    if isinstance(orig, psycopg.Error) and orig.sqlstate == "25006":
        return "the database server refuses writes"
    return "the database server is not reachable"
