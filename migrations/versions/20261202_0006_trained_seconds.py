"""runs.trained_seconds: the seconds a run has trained so far, over all its slices,
pauses and resumes, so that ANNLAB_MAX_RUN_SECONDS bounds the whole run and not one
worker's stretch of it.

Revision ID: 0006_trained_seconds
Revises: 0004_dispatched_at
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_trained_seconds"
down_revision = "0004_dispatched_at"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column("trained_seconds", sa.Float(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("trained_seconds")
