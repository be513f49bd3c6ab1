"""Alembic environment of netgis: runs on the connection handed over by netgis.storage.migrate.

Autogenerate compares against :mod:`netgis.storage.models` and ignores the
internal tables of SpatiaLite and PostGIS.
"""

from __future__ import annotations

from alembic import context
from geoalchemy2 import alembic_helpers

from netgis.storage.migrate import include_object
from netgis.storage.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through netgis.storage.migrate (netgis db upgrade)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    include_object=include_object,
    process_revision_directives=alembic_helpers.writer,
    render_item=alembic_helpers.render_item,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
