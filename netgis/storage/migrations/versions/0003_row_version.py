"""A version per feature (the API's ETag): ``row_version`` on the four layers.

Rows stored before this revision take the current data version: it is at least
the version of the write that last changed them, and every later write gets a
larger one.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

LAYERS = ("nodes", "spans", "premises", "areas")


def upgrade() -> None:
    """Add ``row_version`` to the four layers, set to the current data version."""
    meta = sa.table("netgis_meta", sa.column("key", sa.String), sa.column("value", sa.Integer))
    current = sa.select(meta.c.value).where(meta.c.key == "data_version").scalar_subquery()
    for name in LAYERS:
        # a plain ALTER TABLE ... ADD COLUMN on both databases: a batch (copy and rename)
        # on SQLite would lose SpatiaLite's geometry triggers and spatial index
        op.add_column(name, sa.Column("row_version", sa.Integer(), nullable=False,
                                      server_default="0"))
        table = sa.table(name, sa.column("row_version", sa.Integer))
        op.execute(table.update().values(row_version=current))


def downgrade() -> None:
    """Drop ``row_version`` from the four layers."""
    for name in LAYERS:
        op.drop_column(name, "row_version")
