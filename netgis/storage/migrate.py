"""Alembic migrations packaged with netgis, run programmatically (no alembic.ini needed).

Examples
--------
>>> from netgis.storage.engine import create_engine
>>> engine = create_engine("sqlite:///:memory:")
>>> current_revision(engine) is None
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from netgis.storage.dialects import SPATIALITE_TABLE_PREFIXES
from netgis.storage.engine import begin_write

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def include_object(obj: Any, name: str | None, obj_type: str, reflected: bool,
                   compare_to: Any) -> bool:
    """Alembic filter: leave the spatial extensions' own tables and indexes alone."""
    internal = (SPATIALITE_TABLE_PREFIXES, "spatial_ref_sys", "alembic_version")
    if obj_type == "table" and name is not None and name.startswith(internal[0]):
        return False
    if obj_type == "table" and name in internal[1:]:
        return False
    # spatial indexes are made by netgis.storage.dialects, not described in the model
    return not (obj_type == "index" and name is not None and name.startswith("idx_"))


def alembic_config(connection: sqlalchemy.Connection | None = None) -> Config:
    """An Alembic configuration pointing at the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: sqlalchemy.Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: the newest), in one transaction.

    A database already at the newest revision is only read, so a server can start
    on a database it cannot write (and answer reads). Otherwise the migration is a
    write transaction that waits for other writers (SQLite: ``BEGIN IMMEDIATE``).
    """
    if revision == "head" and current_revision(engine) == head_revision():
        return
    with begin_write(engine) as conn:
        command.upgrade(alembic_config(conn), revision)


def downgrade(engine: sqlalchemy.Engine, revision: str) -> None:
    """Take the database down to ``revision`` (an earlier one), in one write transaction.

    Every revision has a downgrade; what ``revision`` has no place for is dropped with the
    columns and tables that held it (each migration's docstring says what). Run it with
    the netgis version that upgraded the database: an older one lacks the newer scripts.
    """
    with begin_write(engine) as conn:
        command.downgrade(alembic_config(conn), revision)


def known_revision(revision: str) -> bool:
    """Whether ``revision`` names a migration shipped with netgis (or is ``head``/``base``)."""
    if revision in ("head", "base"):
        return True
    script = ScriptDirectory.from_config(alembic_config())
    return any(s.revision == revision for s in script.walk_revisions())


def current_revision(engine: sqlalchemy.Engine) -> str | None:
    """The revision the database is at, or None for a database never migrated."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this version of netgis."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
