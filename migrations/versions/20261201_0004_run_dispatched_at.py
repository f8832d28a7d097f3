"""runs.dispatched_at: when a task for the run was last sent to the broker
(ANNLAB_EXECUTOR=celery), so that runs queued but never sent, or lost by the broker,
are sent again.

Revision ID: 0004_dispatched_at
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db.tables import UTCDateTime

revision = "0004_dispatched_at"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("dispatched_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("dispatched_at")
