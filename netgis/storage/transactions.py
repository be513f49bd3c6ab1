"""What every write and consistent read of the database shares: the data version (read, and
raised as a write's first step, which is also its turn) and database errors as netgis errors.

Kept apart from :mod:`netgis.storage.repository` so that the modules it builds on (the strand
layers, :mod:`netgis.storage.strand_store`) use the same rules without importing it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Collection, Iterator

import psycopg
import sqlalchemy
from sqlalchemy import Connection, select, update

from netgis.errors import (
    ConflictError,
    PreconditionFailed,
    Problem,
    StorageError,
    StorageUnavailable,
)
from netgis.storage import faults
from netgis.storage.models import DATA_VERSION_KEY, META


def read_version(conn: Connection) -> int:
    """The data version (a :class:`StorageError` when the database has none: not initialised)."""
    table = META
    value = conn.execute(select(table.c.value).where(table.c.key == DATA_VERSION_KEY)).scalar()
    if value is None:
        raise StorageError("the database has no data version: run `netgis db init`")
    return int(value)


def next_version(conn: Connection) -> int:
    """Raise the data version as the first step of a write and return the new value.

    Done first, it is also the write's turn: on PostgreSQL the row lock on the
    version makes concurrent writes run one after the other (as SQLite's write
    lock does), so the version identifies the write and every row it writes.
    """
    table = META
    value = conn.execute(update(table).where(table.c.key == DATA_VERSION_KEY)
                         .values(value=table.c.value + 1).returning(table.c.value)).scalar()
    if value is None:
        raise StorageError("the database has no data version: run `netgis db init`")
    return int(value)


def check_version(layer: str, item_id: str, current: int,
                   if_match: Collection[int] | None) -> None:
    """:class:`PreconditionFailed` unless ``if_match`` is None or holds ``current``."""
    if if_match is not None and current not in {int(v) for v in if_match}:
        raise PreconditionFailed(layer, item_id, current)


@contextlib.contextmanager
def storage_errors() -> Iterator[None]:
    """Database trouble as NetgisErrors.

    A concurrent id clash is a :class:`ConflictError`; an outage, a file fault or
    contention past the busy timeout is :class:`StorageUnavailable` (retry later);
    any other database error (most often: not initialised) is a :class:`StorageError`.
    """
    try:
        yield
    except sqlalchemy.exc.IntegrityError as exc:
        raise ConflictError([Problem("database", None, None,
                                     f"a concurrent write conflicts: {exc.orig}")]) from exc
    except (sqlalchemy.exc.SQLAlchemyError, sqlite3.Error, psycopg.Error) as exc:
        if faults.is_unavailable(exc):
            raise StorageUnavailable(f"database unavailable: {exc}",
                                     reason=faults.public_reason(exc)) from exc
        if isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.ProgrammingError):
            raise StorageError(f"database error (is it reachable and initialised with "
                               f"`netgis db init`?): {exc.orig}") from exc
        raise
