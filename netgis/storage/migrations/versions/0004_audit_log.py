"""The audit log: one row per write of features, written in the write's own transaction.

A new table only: the layer tables (and SpatiaLite's geometry triggers and
spatial indexes on them) are not touched, so no batch operation is needed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``audit_log`` with its indexes on time and layer."""
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("layer", sa.String(), nullable=False),
        sa.Column("feature_ids", sa.JSON(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(), nullable=True),
        sa.Column("data_version", sa.Integer(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_changed_at", "audit_log", ["changed_at"])
    op.create_index("ix_audit_log_layer", "audit_log", ["layer"])


def downgrade() -> None:
    """Drop ``audit_log`` and its indexes (the log is lost)."""
    op.drop_index("ix_audit_log_layer", table_name="audit_log")
    op.drop_index("ix_audit_log_changed_at", table_name="audit_log")
    op.drop_table("audit_log")
