"""The dataset's optional ``streets`` context layer: ``streets`` (name, WKB geometry).

A dataset loaded with streets keeps them in the database, so that a server names spans
and builds by street as a file does (netgis.products.names). Not plant: no row version,
no spatial index, untouched by the layers' writes.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``streets``."""
    op.create_table(
        "streets",
        sa.Column("street_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("geometry", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("street_id", name="pk_streets"),
    )


def downgrade() -> None:
    """Drop ``streets``."""
    op.drop_table("streets")
