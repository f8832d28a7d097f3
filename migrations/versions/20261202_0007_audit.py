"""audit_events: user and admin actions (users created, rotated, deleted; runs
submitted, cancelled, deleted; datasets; models and aliases; backups and restores).

Names rather than foreign keys, so that a row outlives the user or run it names.
Also ``runs.storage_estimate`` (ANNLAB_MAX_STORAGE_BYTES_PER_USER: the bytes a queued
or running run reserves; null for runs submitted before, which reserve nothing).

Revision ID: 0007_audit
Revises: 0006_idempotency_tombstones
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db.tables import UTCDateTime

revision = "0007_audit"
down_revision = "0006_idempotency_tombstones"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(200), nullable=True),
        sa.Column("target", sa.String(1000), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index(op.f("ix_audit_events_actor"), "audit_events", ["actor"])
    op.create_index(op.f("ix_audit_events_subject"), "audit_events", ["subject"])
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("storage_estimate", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("storage_estimate")
    op.drop_index(op.f("ix_audit_events_subject"), table_name="audit_events")
    op.drop_index(op.f("ix_audit_events_actor"), table_name="audit_events")
    op.drop_index("ix_audit_events_at", table_name="audit_events")
    op.drop_table("audit_events")
