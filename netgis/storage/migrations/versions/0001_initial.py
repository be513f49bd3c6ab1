"""The four dataset layers, analysis runs, KPI snapshots and the data version.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

from netgis.storage import dialects

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SRID = 4326


def _geom(kind: str) -> sa.Column[object]:
    return sa.Column("geometry", Geometry(kind, srid=SRID, spatial_index=False, nullable=False),
                     nullable=False)


def upgrade() -> None:
    """Prepare the database (SpatiaLite metadata or the PostGIS extension), create the
    tables with their spatial indexes and set the data version to 0."""
    bind = op.get_bind()
    dialects.prepare_database(bind)
    nodes = op.create_table(
        "nodes",
        sa.Column("node_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=True),
        _geom("POINT"),
        sa.PrimaryKeyConstraint("node_id", name="pk_nodes"),
    )
    spans = op.create_table(
        "spans",
        sa.Column("span_id", sa.String(), nullable=False),
        sa.Column("from_node", sa.String(), nullable=False),
        sa.Column("to_node", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("fiber_count", sa.Integer(), nullable=True),
        sa.Column("fibers_used", sa.Integer(), nullable=True),
        sa.Column("placement", sa.String(), nullable=True),
        sa.Column("duct_id", sa.String(), nullable=True),
        sa.Column("owner", sa.String(), nullable=True),
        sa.Column("install_year", sa.Integer(), nullable=True),
        _geom("LINESTRING"),
        sa.ForeignKeyConstraint(["from_node"], ["nodes.node_id"], ondelete="RESTRICT",
                                name="fk_spans_from_node"),
        sa.ForeignKeyConstraint(["to_node"], ["nodes.node_id"], ondelete="RESTRICT",
                                name="fk_spans_to_node"),
        sa.PrimaryKeyConstraint("span_id", name="pk_spans"),
    )
    op.create_index("ix_spans_from_node", "spans", ["from_node"])
    op.create_index("ix_spans_to_node", "spans", ["to_node"])
    premises = op.create_table(
        "premises",
        sa.Column("premise_id", sa.String(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.Column("address", sa.String(), nullable=True),
        sa.Column("location_id", sa.String(), nullable=True),
        _geom("POINT"),
        sa.PrimaryKeyConstraint("premise_id", name="pk_premises"),
    )
    areas = op.create_table(
        "areas",
        sa.Column("area_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=True),
        _geom("GEOMETRY"),
        sa.PrimaryKeyConstraint("area_id", name="pk_areas"),
    )
    for table in (nodes, spans, premises, areas):
        dialects.create_spatial_index(bind, table)
    op.create_table(
        "analysis_runs",
        sa.Column("run_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ran_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("drop_m", sa.Float(), nullable=False),
        sa.Column("data_version", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name="pk_analysis_runs"),
    )
    op.create_table(
        "kpi_snapshots",
        sa.Column("snapshot_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data_version", sa.Integer(), nullable=False),
        sa.Column("kpis", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("snapshot_id", name="pk_kpi_snapshots"),
    )
    op.create_index("ix_kpi_snapshots_taken_at", "kpi_snapshots", ["taken_at"])
    meta = op.create_table(
        "netgis_meta",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_netgis_meta"),
    )
    op.bulk_insert(meta, [{"key": "data_version", "value": 0}])


def downgrade() -> None:
    """Drop every table of the revision, data with it."""
    for name in ("netgis_meta", "kpi_snapshots", "analysis_runs", "areas", "premises", "spans",
                 "nodes"):
        op.drop_table(name)
