"""User API keys: a unique name per user and a key prefix to look keys up by.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("key_prefix", sa.String(20), nullable=True))
        batch.create_index(batch.f("ix_users_key_prefix"), ["key_prefix"])
        batch.create_unique_constraint(batch.f("uq_users_name"), ["name"])


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(batch.f("uq_users_name"), type_="unique")
        batch.drop_index(batch.f("ix_users_key_prefix"))
        batch.drop_column("key_prefix")
