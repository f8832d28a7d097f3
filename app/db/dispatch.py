"""What ANNLAB_EXECUTOR=celery records about sending runs to the broker.

The database, not the broker, says what must be trained: a queued run whose
``dispatched_at`` is null has not been sent since it last joined the queue
(created, paused after a slice, requeued after a crash), so the server's sweep
sends it. Sending twice is harmless (the task's claim of the row makes the
second delivery a no-op); never sending would leave the run queued for ever.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from app.db.runs import queue_order
from app.db.tables import RunRow, utcnow
from core.stopping import RunStatus


def to_dispatch(*, session: Session, sent_before: datetime | None, limit: int = 500) -> list[str]:
    """Queued runs never sent since they were queued, and (``sent_before`` given) those
    sent before it; in the queue's order."""
    never = RunRow.dispatched_at.is_(None)
    condition = never if sent_before is None else or_(never, RunRow.dispatched_at < sent_before)
    query = (
        select(RunRow.id)
        .where(RunRow.status == RunStatus.QUEUED, condition)
        .order_by(queue_order(), RunRow.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def mark_dispatched(*, session: Session, run_ids: Sequence[str]) -> None:
    """The tasks of ``run_ids`` are in the broker now (a run no longer queued is left as is)."""
    if run_ids:
        session.execute(
            update(RunRow)
            .where(RunRow.id.in_(list(run_ids)), RunRow.status == RunStatus.QUEUED)
            .values(dispatched_at=utcnow())
        )


def count_dispatched_queued(*, session: Session) -> int:
    """Queued runs whose task was sent: each should have one message in the broker."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(RunRow)
            .where(RunRow.status == RunStatus.QUEUED, RunRow.dispatched_at.is_not(None))
        )
        or 0
    )


def stale_before(seconds: float) -> datetime:
    """The dispatch time before which a queued run's task may have been lost."""
    return utcnow() - timedelta(seconds=seconds)
