"""Nodes carry the split ratio of a 1:N splitter (optical reach).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the nullable ``split_ratio`` column to ``nodes``."""
    # a plain nullable column: SQLite adds it without rebuilding the table
    op.add_column("nodes", sa.Column("split_ratio", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Drop ``split_ratio`` from ``nodes`` (its values are lost)."""
    # plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35): a batch copy would lose
    # SpatiaLite's geometry triggers and spatial index
    op.drop_column("nodes", "split_ratio")
