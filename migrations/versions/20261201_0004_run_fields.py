"""Run fields a user relies on: tags, experiment_id, best-epoch metrics, duration,
and the stop-and-keep request.

``best_val_loss`` and ``best_val_accuracy`` are columns (not only inside the
``best_metrics`` JSON) so that ``GET /runs?sort=best_val_loss`` is an ORDER BY in
SQL, paged by the database. Existing runs are filled in from their stored epochs.

Revision ID: 0004
Revises: 0003_queued_at
Create Date: 2026-12-01
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003_queued_at"
branch_labels = None
depends_on = None

METRIC_NAMES = ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "learning_rate")


#: Plain ALTER TABLE, not batch mode: on SQLite a batch recreates ``runs`` (copy, drop,
#: rename), and with foreign keys on, dropping it deletes every ``run_metrics``,
#: ``run_weights`` and ``checkpoints`` row through their ON DELETE CASCADE. SQLite
#: (3.35+) adds and drops these columns in place.
NEW_COLUMNS = (
    sa.Column("tags", sa.JSON(), nullable=True),
    sa.Column("experiment_id", sa.String(40), nullable=True),
    sa.Column("best_metrics", sa.JSON(), nullable=True),
    sa.Column("best_val_loss", sa.Float(), nullable=True),
    sa.Column("best_val_accuracy", sa.Float(), nullable=True),
    sa.Column("duration_seconds", sa.Float(), nullable=True),
    sa.Column("stop_requested", sa.Boolean(), nullable=False, server_default=sa.false()),
)


def upgrade() -> None:
    for column in NEW_COLUMNS:
        op.add_column("runs", column)
    op.create_index(op.f("ix_runs_experiment_id"), "runs", ["experiment_id"])
    _backfill(op.get_bind())


def _seconds(start: Any, end: Any) -> float | None:
    if start is None or end is None:
        return None
    if isinstance(start, str):  # SQLite without type information
        start, end = datetime.fromisoformat(start), datetime.fromisoformat(end)
    return float((end - start).total_seconds())


def _backfill(bind: sa.Connection) -> None:
    runs = sa.table(
        "runs",
        sa.column("id", sa.String),
        sa.column("spec", sa.JSON),
        sa.column("best_epoch", sa.Integer),
        sa.column("started_at", sa.DateTime),
        sa.column("finished_at", sa.DateTime),
        sa.column("tags", sa.JSON),
        sa.column("best_metrics", sa.JSON),
        sa.column("best_val_loss", sa.Float),
        sa.column("best_val_accuracy", sa.Float),
        sa.column("duration_seconds", sa.Float),
    )
    metrics = sa.table(
        "run_metrics",
        sa.column("run_id", sa.String),
        sa.column("epoch", sa.Integer),
        *(sa.column(name, sa.Float) for name in METRIC_NAMES),
    )
    rows = bind.execute(
        sa.select(runs.c.id, runs.c.spec, runs.c.best_epoch, runs.c.started_at, runs.c.finished_at)
    ).all()
    for run_id, spec, best_epoch, started_at, finished_at in rows:
        values: dict[str, Any] = {
            "tags": dict((spec or {}).get("tags") or {}),
            "duration_seconds": _seconds(started_at, finished_at),
        }
        if best_epoch is not None:
            best = bind.execute(
                sa.select(*(metrics.c[name] for name in METRIC_NAMES)).where(
                    metrics.c.run_id == run_id, metrics.c.epoch == best_epoch
                )
            ).first()
            if best is not None:
                values["best_metrics"] = dict(zip(METRIC_NAMES, best, strict=True))
                values["best_val_loss"] = best.val_loss
                values["best_val_accuracy"] = best.val_accuracy
        bind.execute(sa.update(runs).where(runs.c.id == run_id).values(**values))


def downgrade() -> None:
    op.drop_index(op.f("ix_runs_experiment_id"), table_name="runs")
    for column in reversed(NEW_COLUMNS):
        op.drop_column("runs", column.name)
