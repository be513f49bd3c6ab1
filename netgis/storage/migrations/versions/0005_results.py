"""Stored analysis results: runs keyed by data version and parameters, one table per layer.

``analysis_runs`` gains the parameters (``params_key``, ``params``) and the KPIs
of a run, and a unique index on (data_version, params_key): two servers that
analyse the same data with the same parameters store it once. The result
tables hold the analysis columns of netgis.schema.RESULT_FIELDS (as of this
revision) and what the API needs to serve loss breakdowns and serviceability
lookups; they carry no geometry and join the layer tables by id. New tables
and new nullable columns only, so SpatiaLite needs no batch operation on the
way up.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_RUN_COLUMNS = ("params_key", "params", "network_kpis", "area_kpis")


def _run_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["run_id"], ["analysis_runs.run_id"], ondelete="CASCADE",
                                   name=f"fk_{table}_run_id")


def _run_id() -> sa.Column[int]:
    return sa.Column("run_id", sa.Integer(), autoincrement=False, nullable=False)


def upgrade() -> None:
    """Add the parameters and KPIs to ``analysis_runs`` and create the three result
    tables."""
    op.add_column("analysis_runs", sa.Column("params_key", sa.String(), nullable=True))
    op.add_column("analysis_runs", sa.Column("params", sa.JSON(), nullable=True))
    op.add_column("analysis_runs", sa.Column("network_kpis", sa.JSON(), nullable=True))
    op.add_column("analysis_runs", sa.Column("area_kpis", sa.JSON(), nullable=True))
    op.create_index("uq_analysis_runs_data_version", "analysis_runs",
                    ["data_version", "params_key"], unique=True)
    op.create_table(
        "premise_results",
        _run_id(),
        sa.Column("premise_id", sa.String(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("distance_m", sa.Float(), nullable=True),
        sa.Column("served_span_id", sa.String(), nullable=True),
        sa.Column("span_protected", sa.Boolean(), nullable=True),
        sa.Column("node_protected", sa.Boolean(), nullable=True),
        sa.Column("duct_protected", sa.Boolean(), nullable=True),
        sa.Column("loss_db", sa.Float(), nullable=True),
        sa.Column("in_budget", sa.Boolean(), nullable=True),
        sa.Column("margin_db", sa.Float(), nullable=True),
        sa.Column("loss_fiber_km", sa.Float(), nullable=True),
        sa.Column("loss_splitter_db", sa.Float(), nullable=True),
        sa.Column("loss_splice_db", sa.Float(), nullable=True),
        sa.Column("loss_end", sa.String(), nullable=True),
        sa.Column("loss_along_m", sa.Float(), nullable=True),
        _run_fk("premise_results"),
        sa.PrimaryKeyConstraint("run_id", "premise_id", name="pk_premise_results"),
    )
    op.create_table(
        "span_results",
        _run_id(),
        sa.Column("span_id", sa.String(), nullable=False),
        sa.Column("lit", sa.Boolean(), nullable=True),
        sa.Column("cut_premises", sa.Integer(), nullable=True),
        sa.Column("cut_units", sa.Integer(), nullable=True),
        sa.Column("length_m", sa.Float(), nullable=True),
        sa.Column("eu_node", sa.String(), nullable=True),
        sa.Column("ev_node", sa.String(), nullable=True),
        sa.Column("eu_dist_db", sa.Float(), nullable=True),
        sa.Column("ev_dist_db", sa.Float(), nullable=True),
        sa.Column("edge_reversed", sa.Boolean(), nullable=True),
        sa.Column("span_protected", sa.Boolean(), nullable=True),
        sa.Column("node_protected", sa.Boolean(), nullable=True),
        sa.Column("duct_protected", sa.Boolean(), nullable=True),
        _run_fk("span_results"),
        sa.PrimaryKeyConstraint("run_id", "span_id", name="pk_span_results"),
    )
    op.create_table(
        "node_results",
        _run_id(),
        sa.Column("node_id", sa.String(), nullable=False),
        sa.Column("failure_premises", sa.Integer(), nullable=True),
        sa.Column("failure_units", sa.Integer(), nullable=True),
        sa.Column("tree_parent", sa.String(), nullable=True),
        sa.Column("dist_db", sa.Float(), nullable=True),
        sa.Column("node_loss_db", sa.Float(), nullable=True),
        sa.Column("is_splice", sa.Boolean(), nullable=True),
        sa.Column("split_ratio", sa.Integer(), nullable=True),
        sa.Column("tree_edge_m", sa.Float(), nullable=True),
        _run_fk("node_results"),
        sa.PrimaryKeyConstraint("run_id", "node_id", name="pk_node_results"),
    )


def downgrade() -> None:
    """Drop the result tables and the runs that stored results, then the added columns."""
    for name in ("node_results", "span_results", "premise_results"):
        op.drop_table(name)
    # runs that held stored results go with them: the old schema cannot tell them apart
    op.execute("DELETE FROM analysis_runs WHERE params_key IS NOT NULL")
    op.drop_index("uq_analysis_runs_data_version", table_name="analysis_runs")
    with op.batch_alter_table("analysis_runs") as batch:
        for name in reversed(_RUN_COLUMNS):
            batch.drop_column(name)
