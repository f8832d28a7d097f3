"""idempotency_tombstones: the Idempotency-Key of a deleted run, remembered for 24 h
(API.md), so that a retry after the run was deleted is a 409, not a second run.

Revision ID: 0006_idempotency_tombstones
Revises: 0006_trained_seconds
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db.tables import UTCDateTime

revision = "0006_idempotency_tombstones"
down_revision = "0006_trained_seconds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_tombstones",
        sa.Column("owner_id", sa.String(40), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=True),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id", "key", name="pk_idempotency_tombstones"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_tombstones")
