"""The strand-level plant: seven attribute tables beside the route layers.

``cables``, ``cable_spans``, ``splitters``, ``olt_ports``, ``connections``,
``drops`` and ``strand_state`` (fields: :data:`netgis.schema.STRAND_LAYERS`).
No geometry: each row names the route features it lies on by id. Ids are text;
``cable_spans`` is keyed by (cable_id, seq) and ``strand_state`` by (cable_id,
strand), every other table by its id field. No foreign keys: the references
(into the route layers, and the typed terminals of connections and drops) are
checked by the strand validation on every write. Each table has ``row_version``
(indexed, like the route tables since 0007) for ETags and the change feed, and
the columns that route deletes and lookups search by are indexed.

New tables only: the route tables and SpatiaLite's triggers are not touched.

Revision ID: 0009
Revises: 0008
Create Date: 2027-01-11
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _version() -> sa.Column[int]:
    return sa.Column("row_version", sa.Integer(), server_default="0", nullable=False)


#: Per table, the columns searched by (a node, span or premise deleted from the route
#: layers is looked up in them).
_INDEXED = {
    "cables": ("from_node", "to_node"),
    "cable_spans": ("span_id",),
    "splitters": ("node_id",),
    "olt_ports": ("node_id",),
    "connections": ("node_id",),
    "drops": ("premise_id", "node_id"),
    "strand_state": (),
}


def upgrade() -> None:
    """Create the seven strand tables with their keys and indexes."""
    text, integer, real = sa.String, sa.Integer, sa.Float
    op.create_table(
        "cables",
        sa.Column("cable_id", text(), nullable=False),
        sa.Column("from_node", text(), nullable=False),
        sa.Column("to_node", text(), nullable=False),
        sa.Column("fiber_count", integer(), nullable=False),
        sa.Column("fibers_per_tube", integer(), nullable=True),
        sa.Column("status", text(), nullable=False),
        sa.Column("name", text(), nullable=True),
        sa.Column("install_year", integer(), nullable=True),
        _version(),
        sa.PrimaryKeyConstraint("cable_id", name="pk_cables"),
    )
    op.create_table(
        "cable_spans",
        sa.Column("cable_id", text(), nullable=False),
        sa.Column("seq", integer(), autoincrement=False, nullable=False),
        sa.Column("span_id", text(), nullable=False),
        _version(),
        sa.PrimaryKeyConstraint("cable_id", "seq", name="pk_cable_spans"),
    )
    op.create_table(
        "splitters",
        sa.Column("splitter_id", text(), nullable=False),
        sa.Column("node_id", text(), nullable=False),
        sa.Column("ratio", integer(), nullable=False),
        sa.Column("inputs", integer(), nullable=False),
        sa.Column("loss_db", real(), nullable=True),
        _version(),
        sa.PrimaryKeyConstraint("splitter_id", name="pk_splitters"),
    )
    op.create_table(
        "olt_ports",
        sa.Column("olt_port_id", text(), nullable=False),
        sa.Column("node_id", text(), nullable=False),
        sa.Column("olt_id", text(), nullable=True),
        _version(),
        sa.PrimaryKeyConstraint("olt_port_id", name="pk_olt_ports"),
    )
    op.create_table(
        "connections",
        sa.Column("connection_id", text(), nullable=False),
        sa.Column("node_id", text(), nullable=False),
        sa.Column("kind", text(), nullable=False),
        sa.Column("a_type", text(), nullable=False),
        sa.Column("a_id", text(), nullable=False),
        sa.Column("a_num", integer(), nullable=True),
        sa.Column("a_side", text(), nullable=True),
        sa.Column("b_type", text(), nullable=False),
        sa.Column("b_id", text(), nullable=False),
        sa.Column("b_num", integer(), nullable=True),
        sa.Column("b_side", text(), nullable=True),
        sa.Column("loss_db", real(), nullable=True),
        _version(),
        sa.PrimaryKeyConstraint("connection_id", name="pk_connections"),
    )
    op.create_table(
        "drops",
        sa.Column("drop_id", text(), nullable=False),
        sa.Column("premise_id", text(), nullable=False),
        sa.Column("node_id", text(), nullable=False),
        sa.Column("src_type", text(), nullable=False),
        sa.Column("src_id", text(), nullable=False),
        sa.Column("src_num", integer(), nullable=True),
        sa.Column("src_side", text(), nullable=True),
        sa.Column("length_m", real(), nullable=True),
        _version(),
        sa.PrimaryKeyConstraint("drop_id", name="pk_drops"),
    )
    op.create_table(
        "strand_state",
        sa.Column("cable_id", text(), nullable=False),
        sa.Column("strand", integer(), autoincrement=False, nullable=False),
        sa.Column("state", text(), nullable=False),
        _version(),
        sa.PrimaryKeyConstraint("cable_id", "strand", name="pk_strand_state"),
    )
    for table, columns in _INDEXED.items():
        op.create_index(f"ix_{table}_row_version", table, ["row_version"])
        for column in columns:
            op.create_index(f"ix_{table}_{column}", table, [column])


def downgrade() -> None:
    """Drop the strand tables (their rows are lost; the route layers are not touched)."""
    for table, columns in reversed(_INDEXED.items()):
        for column in columns:
            op.drop_index(f"ix_{table}_{column}", table_name=table)
        op.drop_index(f"ix_{table}_row_version", table_name=table)
        op.drop_table(table)
