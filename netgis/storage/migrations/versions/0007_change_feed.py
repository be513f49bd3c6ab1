"""Indexes for the change feed: ``row_version`` of the four layers, ``audit_log.data_version``.

:meth:`netgis.storage.Repository.changes_since` reads the rows a range of
writes left (``row_version > since``) and the ids they deleted (the entries
with ``data_version > since``, then their ``audit_ids``). With these indexes
both are range scans as long as the change is, not reads of a whole layer.

Indexes only: no column or table changes, so SQLite needs no batch operation
and SpatiaLite's geometry triggers and spatial indexes are not touched. On
PostgreSQL ``CREATE INDEX`` holds off writes to the table while it builds (a
few seconds for a million premises); the migration runs in one transaction
like the others.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-14
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

LAYERS = ("nodes", "spans", "premises", "areas")


def upgrade() -> None:
    """Index ``row_version`` of each layer table and ``audit_log.data_version``."""
    for name in LAYERS:
        op.create_index(f"ix_{name}_row_version", name, ["row_version"])
    op.create_index("ix_audit_log_data_version", "audit_log", ["data_version"])


def downgrade() -> None:
    """Drop the indexes of :func:`upgrade` (no data is touched)."""
    op.drop_index("ix_audit_log_data_version", table_name="audit_log")
    for name in LAYERS:
        op.drop_index(f"ix_{name}_row_version", table_name=name)
