"""KPI snapshots estimated from the spans' ``install_year``: ``kpi_snapshots.estimated``.

``netgis kpis backfill`` writes a new installation's coverage history for the years before
its first measured snapshot, each point marked ``estimated``. Every snapshot stored before
this revision was measured: the column defaults to false.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``kpi_snapshots.estimated`` (false for every stored snapshot)."""
    # a plain ALTER TABLE ... ADD COLUMN on both databases (as revision 0003 does)
    op.add_column("kpi_snapshots", sa.Column("estimated", sa.Boolean(), nullable=False,
                                             server_default=sa.false()))


def downgrade() -> None:
    """Drop the estimated snapshots, then the column (in place: SQLite 3.35 or newer)."""
    table = sa.table("kpi_snapshots", sa.column("estimated", sa.Boolean))
    op.execute(table.delete().where(table.c.estimated == sa.true()))
    op.drop_column("kpi_snapshots", "estimated")
