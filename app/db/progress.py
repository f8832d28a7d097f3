"""What a worker writes on the run it has claimed: progress, checkpoints, the outcome;
and putting running runs back in the queue.

Worker-side functions take the ``worker_id`` that claimed the run and change
nothing once the run is no longer theirs (deleted, requeued).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.db import snapshots as snapshot_store
from app.db.runs import METRIC_NAMES, finite_or_none, metrics_dict, rowcount
from app.db.tables import CheckpointRow, MetricRow, RunRow, WeightsRow, utcnow
from core.stopping import RunStatus, StopReason

#: A worker that crashed this many times on one run makes the run fail.
MAX_ATTEMPTS = 3
#: How long a worker keeps retrying a write the database refused as locked (each
#: attempt already waits the busy timeout), and the pauses between attempts.
LOCKED_RETRY_SECONDS = 600.0
LOCKED_BACKOFF_SECONDS = (0.05, 0.2, 0.5, 1.0, 2.0)

log = logging.getLogger("annlab.worker")
T = TypeVar("T")


def is_locked(error: BaseException) -> bool:
    """SQLite's "database is locked" / "database table is locked" (SQLITE_BUSY)."""
    return isinstance(error, OperationalError) and "locked" in str(error.orig).lower()


def retry_locked(
    write: Callable[[], T],
    *,
    deadline_seconds: float = LOCKED_RETRY_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``write()`` (a whole transaction), again while the database answers "locked".

    A worker's progress, checkpoint and outcome must not be lost to a busy moment of
    the database (hundreds of readers, a long write elsewhere): that used to fail a
    run that was still training. Any other error, or a lock past the deadline, is
    raised."""
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            return write()
        except OperationalError as error:
            if not is_locked(error) or time.monotonic() - started > deadline_seconds:
                raise
            pause = LOCKED_BACKOFF_SECONDS[min(attempt, len(LOCKED_BACKOFF_SECONDS) - 1)]
            attempt += 1
            log.warning("database locked (attempt %d), retrying in %.2f s", attempt, pause)
            sleep(pause)


def load_checkpoint(*, session: Session, run_id: str) -> CheckpointRow | None:
    return session.get(CheckpointRow, run_id)


def rewind_to_checkpoint(*, session: Session, run_id: str) -> None:
    """Forget the progress made after the last checkpoint (it will be trained again)."""
    checkpoint = session.get(CheckpointRow, run_id)
    epoch = checkpoint.epoch if checkpoint is not None else 0
    step = checkpoint.step if checkpoint is not None else 0
    session.execute(delete(MetricRow).where(MetricRow.run_id == run_id, MetricRow.epoch > epoch))
    snapshot_store.delete_after(session=session, run_id=run_id, epoch=epoch)  # trained again
    latest = session.scalars(
        select(MetricRow).where(MetricRow.run_id == run_id).order_by(MetricRow.epoch.desc())
    ).first()
    session.execute(
        update(RunRow)
        .where(RunRow.id == run_id)
        .values(epoch=epoch, step=step, metrics=metrics_dict(latest) if latest else None)
    )


def record_progress(
    *, session: Session, run_id: str, worker_id: str, epochs: list[dict[str, Any]]
) -> bool:
    """Store per-epoch metrics and the latest progress; False if the run is no longer ours."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if epochs:
        last = epochs[-1]
        values.update(
            epoch=last["epoch"],
            step=last["step"],
            metrics={name: finite_or_none(last.get(name)) for name in METRIC_NAMES},
        )
    result = session.execute(
        update(RunRow)
        .where(
            RunRow.id == run_id, RunRow.claimed_by == worker_id, RunRow.status == RunStatus.RUNNING
        )
        .values(**values)
    )
    if rowcount(result) != 1:
        return False
    if epochs:
        numbers = [entry["epoch"] for entry in epochs]
        session.execute(
            delete(MetricRow).where(MetricRow.run_id == run_id, MetricRow.epoch.in_(numbers))
        )
        session.add_all(
            MetricRow(
                run_id=run_id,
                epoch=entry["epoch"],
                step=entry["step"],
                **{name: finite_or_none(entry.get(name)) for name in METRIC_NAMES},
            )
            for entry in epochs
        )
    return True


def poll_run(*, session: Session, run_id: str, worker_id: str) -> tuple[bool, bool]:
    """(still ours, cancel requested) for a worker's ``should_stop``."""
    row = session.execute(
        select(RunRow.claimed_by, RunRow.status, RunRow.cancel_requested).where(RunRow.id == run_id)
    ).first()
    if row is None or row.claimed_by != worker_id or row.status != RunStatus.RUNNING:
        return False, False
    return True, bool(row.cancel_requested)


def save_checkpoint(
    *, session: Session, run_id: str, worker_id: str, epoch: int, step: int, data: bytes
) -> bool:
    owned = session.scalar(
        select(func.count())
        .select_from(RunRow)
        .where(
            RunRow.id == run_id, RunRow.claimed_by == worker_id, RunRow.status == RunStatus.RUNNING
        )
    )
    if not owned:
        return False
    row = session.get(CheckpointRow, run_id)
    if row is None:
        session.add(CheckpointRow(run_id=run_id, epoch=epoch, step=step, data=data))
    else:
        row.epoch, row.step, row.data, row.updated_at = epoch, step, data, utcnow()
    return True


def finish_run(
    *,
    session: Session,
    run_id: str,
    worker_id: str,
    status: RunStatus,
    stop_reason: StopReason,
    error: str | None = None,
    best_epoch: int | None = None,
    weights: bytes | None = None,
) -> bool:
    result = session.execute(
        update(RunRow)
        .where(
            RunRow.id == run_id, RunRow.claimed_by == worker_id, RunRow.status == RunStatus.RUNNING
        )
        .values(
            status=status,
            stop_reason=stop_reason,
            error=error,
            best_epoch=best_epoch,
            finished_at=utcnow(),
            claimed_by=None,
        )
    )
    if rowcount(result) != 1:
        return False
    if weights is not None:
        session.add(WeightsRow(run_id=run_id, data=weights))
    session.execute(delete(CheckpointRow).where(CheckpointRow.run_id == run_id))
    return True


def requeue(
    *,
    session: Session,
    run_ids: Sequence[str],
    crashed: bool,
    only_worker: str | None = None,
    behind: bool = False,
) -> list[str]:
    """Put running runs back in the queue (their checkpoint stays).

    ``crashed``: the worker died; count an attempt, and at ``MAX_ATTEMPTS`` fail
    the run instead of retrying it forever. ``behind``: the run goes to the end of
    the queue (a run paused after its slice); otherwise it keeps its place.
    Returns the ids requeued.
    """
    requeued: list[str] = []
    for run_id in run_ids:
        query = select(RunRow).where(RunRow.id == run_id, RunRow.status == RunStatus.RUNNING)
        if only_worker is not None:
            query = query.where(RunRow.claimed_by == only_worker)
        # FOR UPDATE: on PostgreSQL a worker finishing the run meanwhile either commits
        # first (the row no longer matches) or waits; never a finished run put back
        # in the queue (its weights then stored twice). SQLite: serialised already.
        row = session.scalars(query.with_for_update()).first()
        if row is None:
            continue
        row.claimed_by = None
        row.heartbeat_at = None
        if crashed:
            row.attempts += 1
        if crashed and row.attempts >= MAX_ATTEMPTS:
            row.status, row.stop_reason = RunStatus.FAILED, StopReason.ERROR
            row.finished_at = utcnow()
            row.error = f"the worker process training this run died {row.attempts} times; giving up"
            session.execute(delete(CheckpointRow).where(CheckpointRow.run_id == run_id))
            continue
        if row.cancel_requested:
            row.status, row.stop_reason = RunStatus.CANCELLED, StopReason.CANCELLED
            row.finished_at = utcnow()
            continue
        row.status = RunStatus.QUEUED
        row.dispatched_at = None  # not sent for this stay in the queue yet
        if behind:
            row.queued_at = utcnow()
        session.flush()
        rewind_to_checkpoint(session=session, run_id=run_id)
        requeued.append(run_id)
    session.flush()
    return requeued


def running_run_ids(
    *,
    session: Session,
    claimed_by: str | None = None,
    stale_before: datetime | None = None,
) -> list[str]:
    query = select(RunRow.id).where(RunRow.status == RunStatus.RUNNING)
    if claimed_by is not None:
        query = query.where(RunRow.claimed_by == claimed_by)
    if stale_before is not None:
        query = query.where(RunRow.heartbeat_at < stale_before)
    return list(session.scalars(query))


def stale_cutoff(seconds: float) -> datetime:
    return utcnow() - timedelta(seconds=seconds)
