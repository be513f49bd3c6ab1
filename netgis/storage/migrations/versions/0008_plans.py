"""Design plans: ``plans``, the features each plan writes or deletes (``plan_features``)
and the log of each plan's writes (``plan_audit``).

A plan is main plus a small set of edits (netgis.storage.plans): new tables, and a
nullable ``audit_log.plan`` naming the plan a ``merge`` entry applied. Main's layer
tables are not touched; on the way down the column is dropped in place (SQLite
3.35 or newer), never by copying ``audit_log``, whose ids ``audit_ids`` would lose
by cascade.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``plans``, ``plan_features`` and ``plan_audit``; ``audit_log.plan`` names a
    merged plan."""
    op.add_column("audit_log", sa.Column("plan", sa.String(), nullable=True))
    op.create_table(
        "plans",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("description", sa.String(), nullable=True),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_plans"),
    )
    op.create_table(
        "plan_features",
        sa.Column("plan", sa.String(), nullable=False),
        sa.Column("layer", sa.String(), nullable=False),
        sa.Column("feature_id", sa.String(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("properties", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("geometry", sa.LargeBinary(), nullable=True),
        sa.Column("main_version", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["plan"], ["plans.name"], ondelete="CASCADE",
                                name="fk_plan_features_plan"),
        sa.PrimaryKeyConstraint("plan", "layer", "feature_id", name="pk_plan_features"),
    )
    op.create_table(
        "plan_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("plan", sa.String(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("layer", sa.String(), nullable=True),
        sa.Column("feature_ids", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["plan"], ["plans.name"], ondelete="CASCADE",
                                name="fk_plan_audit_plan"),
        sa.PrimaryKeyConstraint("id", name="pk_plan_audit"),
    )
    op.create_index("ix_plan_audit_plan", "plan_audit", ["plan"])


def downgrade() -> None:
    """Drop the plan tables (every plan is lost; main is not touched)."""
    op.drop_index("ix_plan_audit_plan", table_name="plan_audit")
    op.drop_table("plan_audit")
    op.drop_table("plan_features")
    op.drop_table("plans")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite >= 3.35 drops a plain column in place; a batch copy of audit_log would
        # drop the table, and with it (ON DELETE CASCADE) every row of audit_ids
        op.execute('ALTER TABLE audit_log DROP COLUMN "plan"')
    else:
        op.drop_column("audit_log", "plan")
