"""The ids an audit entry wrote in a table of their own (``audit_ids``); a bulk load is one
entry with counts per layer.

``audit_ids`` holds one row per feature an entry wrote (entry, layer, id, what
happened to it, and for a bulk load the feature before it was replaced or
deleted), so that a feature's history is found on an index and the ids of a
load are read a page at a time instead of inline. ``audit_log`` gains
``counts`` and lets ``layer`` and ``feature_ids`` be null (a bulk load spans
the layers and keeps its ids in ``audit_ids`` only).

Existing entries keep what they had: their ids move to ``audit_ids`` (a bulk
load's ``feature_ids`` become null; an insert load gets its counts, an upsert
load, which did not record which ids existed, only its total). On SQLite the
``audit_log`` changes are a batch operation (copy and rename): the table has
no geometry, so no SpatiaLite trigger or spatial index is involved. A downgrade
puts the ids back inline, a bulk load as one entry per layer; what the earlier
revisions have no place for (the ids a replace deleted, the features before a
bulk load) is dropped.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BULK = ("load", "import")
#: What happened to each id of an entry logged before this revision, by the entry's action.
_ID_ACTION = {"create": "insert", "replace": "replace", "patch": "patch", "delete": "delete"}


def _log() -> sa.TableClause:
    return sa.table("audit_log", sa.column("id", sa.Integer), sa.column("changed_at"),
                    sa.column("actor", sa.String), sa.column("action", sa.String),
                    sa.column("layer", sa.String),
                    sa.column("feature_ids", sa.JSON(none_as_null=True)),
                    sa.column("count", sa.Integer),
                    sa.column("counts", sa.JSON(none_as_null=True)),
                    sa.column("mode", sa.String), sa.column("data_version", sa.Integer),
                    sa.column("before", sa.JSON), sa.column("after", sa.JSON))


def _ids() -> sa.TableClause:
    return sa.table("audit_ids", sa.column("audit_id", sa.Integer),
                    sa.column("layer", sa.String), sa.column("feature_id", sa.String),
                    sa.column("action", sa.String))


def upgrade() -> None:
    """Create ``audit_ids`` and move the ids of existing entries into it."""
    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column("layer", existing_type=sa.String(), nullable=True)
        batch.alter_column("feature_ids", existing_type=sa.JSON(), nullable=True)
        batch.add_column(sa.Column("counts", sa.JSON(), nullable=True))
    op.create_table(
        "audit_ids",
        sa.Column("audit_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("layer", sa.String(), nullable=False),
        sa.Column("feature_id", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["audit_id"], ["audit_log.id"], ondelete="CASCADE",
                                name="fk_audit_ids_audit_id"),
        sa.PrimaryKeyConstraint("audit_id", "layer", "feature_id", name="pk_audit_ids"),
    )
    op.create_index("ix_audit_ids_feature_id", "audit_ids", ["feature_id", "layer"])
    conn = op.get_bind()
    log, ids = _log(), _ids()
    entries = conn.execute(sa.select(log.c.id, log.c.action, log.c.layer, log.c.feature_ids,
                                     log.c.count, log.c.mode)).all()
    for entry_id, action, layer, feature_ids, count, mode in entries:
        bulk = action in _BULK
        change = ("insert" if mode == "insert" else "upsert") if bulk else _ID_ACTION[action]
        rows = [{"audit_id": entry_id, "layer": layer, "feature_id": str(i), "action": change}
                for i in dict.fromkeys(feature_ids)]
        if rows:
            conn.execute(ids.insert(), rows)
        if bulk:
            counts = {layer: {"inserted": count, "replaced": 0, "deleted": 0}} \
                if mode == "insert" else None
            conn.execute(log.update().where(log.c.id == entry_id)
                         .values(feature_ids=None, counts=counts))


def downgrade() -> None:
    """Put the written ids back inline, a bulk load as one entry per layer again, then drop
    ``audit_ids`` and ``counts`` (deleted ids and the features before a load are lost)."""
    conn = op.get_bind()
    log, ids = _log(), _ids()
    written: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for entry_id, layer, feature_id in conn.execute(
            sa.select(ids.c.audit_id, ids.c.layer, ids.c.feature_id)
            .where(ids.c.action != "delete")
            .order_by(ids.c.audit_id, ids.c.layer, ids.c.feature_id)):
        written[entry_id][layer].append(feature_id)
    bulk = conn.execute(sa.select(log).where(log.c.feature_ids.is_(None))).mappings().all()
    for entry in bulk:
        per_layer = written.get(entry["id"], {})
        if entry["layer"] is not None:
            # logged before this revision: its ids go back inline
            conn.execute(log.update().where(log.c.id == entry["id"]).values(
                feature_ids=per_layer.get(entry["layer"], [])))
            continue
        # one entry per layer, as the earlier revisions log a bulk load
        copy: dict[str, Any] = {k: v for k, v in entry.items() if k not in ("id", "counts")}
        rows = [{**copy, "layer": layer, "feature_ids": found, "count": len(found)}
                for layer, found in per_layer.items()]
        conn.execute(log.delete().where(log.c.id == entry["id"]))
        if rows:
            conn.execute(log.insert(), rows)
    op.drop_index("ix_audit_ids_feature_id", table_name="audit_ids")
    op.drop_table("audit_ids")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("counts")
        batch.alter_column("feature_ids", existing_type=sa.JSON(), nullable=False)
        batch.alter_column("layer", existing_type=sa.String(), nullable=False)
