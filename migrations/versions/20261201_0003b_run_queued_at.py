"""runs.queued_at: when a run last joined the queue (a run paused after its slice goes
behind the runs that waited).

Revision ID: 0003_queued_at
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db.tables import UTCDateTime

revision = "0003_queued_at"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("queued_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("queued_at")
