"""What ANNLAB_EXECUTOR=celery records about sending runs to the broker.

The database, not the broker, says what must be trained: a queued run whose
``dispatched_at`` is null has not been sent since it last joined the queue
(created, paused after a slice, requeued after a crash), so the server's sweep
sends it. Sending twice is harmless (the task's claim of the row makes the
second delivery a no-op); never sending would leave the run queued for ever.

ANNLAB_MAX_RUNNING_RUNS_PER_USER is applied here, at sending: a user's run is
sent only while that user's running runs plus their queued runs already sent
(each a message on its way to a worker) are fewer than the limit, so the
broker never holds more of one user's runs than the user may train at once, and
the others stay queued, unsent, until one of that user's runs finishes or
yields its slot. The task's claim checks the limit again (``app.jobs.slices``),
for the races between two senders.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from app.db.runs import queue_order
from app.db.tables import RunRow, utcnow
from core.stopping import RunStatus


def to_dispatch(
    *,
    session: Session,
    sent_before: datetime | None,
    limit: int = 500,
    max_running_per_user: int = 0,
    owner_id: str | None = None,
) -> list[str]:
    """Queued runs never sent since they were queued, and (``sent_before`` given) those
    sent before it; in the queue's order; only ``owner_id``'s runs if given.

    ``max_running_per_user`` > 0: a run never sent is left out when its owner's
    running and sent runs, with those picked before it, reach the limit (a run sent
    before and sent again takes no new slot)."""
    never = RunRow.dispatched_at.is_(None)
    condition = never if sent_before is None else or_(never, RunRow.dispatched_at < sent_before)
    query = select(RunRow.id, RunRow.owner_id, RunRow.dispatched_at).where(
        RunRow.status == RunStatus.QUEUED, condition
    )
    if owner_id is not None:
        query = query.where(RunRow.owner_id == owner_id)
    rows = session.execute(query.order_by(queue_order(), RunRow.id).limit(limit)).all()
    if max_running_per_user <= 0:
        return [row.id for row in rows]
    slots = _slots_in_use(session, {row.owner_id for row in rows if row.dispatched_at is None})
    picked: list[str] = []
    for row in rows:
        if row.dispatched_at is None:
            if slots.get(row.owner_id, 0) >= max_running_per_user:
                continue
            slots[row.owner_id] = slots.get(row.owner_id, 0) + 1
        picked.append(row.id)
    return picked


def _slots_in_use(session: Session, owner_ids: set[str]) -> dict[str, int]:
    """Per owner: runs running, and queued runs sent (a worker may claim them any time)."""
    if not owner_ids:
        return {}
    taken = or_(
        RunRow.status == RunStatus.RUNNING,
        and_(RunRow.status == RunStatus.QUEUED, RunRow.dispatched_at.is_not(None)),
    )
    rows = session.execute(
        select(RunRow.owner_id, func.count())
        .where(taken, RunRow.owner_id.in_(owner_ids))
        .group_by(RunRow.owner_id)
    ).all()
    return {owner: int(count) for owner, count in rows}


def forget_dispatch(*, session: Session, run_id: str) -> None:
    """The task of ``run_id`` was taken and the run not trained (its owner at the per-user
    limit): it is queued and unsent again, and the sweep sends it once a slot frees."""
    session.execute(
        update(RunRow)
        .where(RunRow.id == run_id, RunRow.status == RunStatus.QUEUED)
        .values(dispatched_at=None)
    )


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
