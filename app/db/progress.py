"""What a worker writes on the run it has claimed: progress, checkpoints, the outcome;
and putting running runs back in the queue.

Worker-side functions take the ``worker_id`` that claimed the run and change
nothing once the run is no longer theirs (deleted, requeued).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from app.db import snapshots as snapshot_store
from app.db.runs import METRIC_NAMES, finite_or_none, metrics_dict, rowcount
from app.db.tables import (
    CHECKPOINTS,
    METRICS,
    RUNS,
    WEIGHTS,
    CheckpointRow,
    MetricRow,
    RunRow,
    utcnow,
)
from core.stopping import RunStatus, StopReason

#: A worker that crashed this many times on one run makes the run fail.
MAX_ATTEMPTS = 3


def monitored_loss(metrics: dict[str, Any]) -> float | None:
    """What the best epoch is the lowest of: val_loss, or train_loss without validation
    (``core.stopping.EarlyStopping``'s rule)."""
    value = metrics.get("val_loss")
    return finite_or_none(value if value is not None else metrics.get("train_loss"))


def best_of(
    epochs: Iterable[dict[str, Any]], best: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The epoch (its metrics dict, with ``epoch``) of the lowest monitored loss among
    ``best`` and ``epochs``; the first one on ties, as the engine's."""
    best_loss = monitored_loss(best) if best is not None else None
    for entry in epochs:
        loss = monitored_loss(entry)
        if loss is not None and (best_loss is None or loss < best_loss):
            best, best_loss = entry, loss
    return best


def best_values(best: dict[str, Any] | None) -> dict[str, Any]:
    """The run columns of a best epoch (all None for none)."""
    if best is None:
        return {
            "best_epoch": None,
            "best_metrics": None,
            "best_val_loss": None,
            "best_val_accuracy": None,
        }
    metrics = {name: finite_or_none(best.get(name)) for name in METRIC_NAMES}
    return {
        "best_epoch": int(best["epoch"]),
        "best_metrics": metrics,
        "best_val_loss": metrics["val_loss"],
        "best_val_accuracy": metrics["val_accuracy"],
    }


def _stored_epochs(session: Session, run_id: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(MetricRow).where(MetricRow.run_id == run_id).order_by(MetricRow.epoch)
    )
    return [{"epoch": row.epoch, **metrics_dict(row)} for row in rows]


def rewind_to_checkpoint(*, session: Session, run_id: str) -> None:
    """Forget the progress made after the last checkpoint (it will be trained again),
    and the best epoch with it."""
    checkpoint = session.get(CheckpointRow, run_id)
    if checkpoint is None and not session.scalar(select(RUNS.c.epoch).where(RUNS.c.id == run_id)):
        # Never recorded an epoch (every metric and snapshot write sets runs.epoch in
        # the same transaction): nothing to forget. Most claims are of such fresh runs,
        # and for a small run these four statements were a tenth of its overhead.
        return
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
        .values(
            epoch=epoch,
            step=step,
            metrics=metrics_dict(latest) if latest else None,
            **best_values(best_of(_stored_epochs(session, run_id))),
        )
    )


def _update_owned(session: Session, run_id: str, worker_id: str, values: dict[str, Any]) -> bool:
    """Set ``values`` on the run if ``worker_id`` still trains it; whether it did."""
    result = session.execute(
        update(RUNS)
        .where(
            RUNS.c.id == run_id,
            RUNS.c.claimed_by == worker_id,
            RUNS.c.status == RunStatus.RUNNING,
        )
        .values(**values)
    )
    return rowcount(result) == 1


def record_progress(
    *,
    session: Session,
    run_id: str,
    worker_id: str,
    epochs: list[dict[str, Any]],
    trained_seconds: float | None = None,
) -> bool:
    """Store per-epoch metrics, the latest progress and the best epoch so far, and
    (given) the seconds the run has trained in all; False if the run is no longer ours.

    Every checkpoint, pause and outcome write goes through here first, so the stored
    ``trained_seconds`` is at most one flush (or heartbeat) behind the worker's clock
    when the worker dies, and exact at a pause."""
    values = progress_values(epochs, trained_seconds)
    if epochs:
        current = session.execute(
            select(RUNS.c.best_epoch, RUNS.c.best_metrics).where(RUNS.c.id == run_id)
        ).first()
        stored = None
        if current is not None and current.best_epoch is not None and current.best_metrics:
            stored = {"epoch": current.best_epoch, **current.best_metrics}
        best = best_of(epochs, stored)
        if best is not stored:
            values.update(best_values(best))
    if not _update_owned(session, run_id, worker_id, values):
        return False
    write_epochs(session, run_id, epochs)
    return True


def progress_values(epochs: list[dict[str, Any]], trained_seconds: float | None) -> dict[str, Any]:
    """The run's columns a flush of ``epochs`` sets, but the best epoch: the heartbeat,
    the seconds trained, the latest epoch, step and metrics."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if trained_seconds is not None:
        values["trained_seconds"] = trained_seconds
    if epochs:
        last = epochs[-1]
        values.update(
            epoch=last["epoch"],
            step=last["step"],
            metrics={name: finite_or_none(last.get(name)) for name in METRIC_NAMES},
        )
    return values


def write_epochs(session: Session, run_id: str, epochs: list[dict[str, Any]]) -> None:
    """Store the per-epoch metrics of ``epochs`` (consecutive), replacing those stored."""
    if not epochs:
        return
    # What a resumed run writes again (it trains the epochs after its checkpoint
    # anew). The pending epochs are consecutive: a range, not an IN of a fast run's
    # 100 numbers (SQLAlchemy's expansion of that cost 20 ms a flush).
    numbers = [entry["epoch"] for entry in epochs]
    session.execute(
        delete(METRICS).where(
            METRICS.c.run_id == run_id, METRICS.c.epoch.between(min(numbers), max(numbers))
        )
    )
    # One executemany, not ORM objects: a flush of a fast run's 100 epochs through
    # the unit of work cost more than training them.
    session.execute(
        insert(METRICS),
        [
            {
                "run_id": run_id,
                "epoch": entry["epoch"],
                "step": entry["step"],
                **{name: finite_or_none(entry.get(name)) for name in METRIC_NAMES},
            }
            for entry in epochs
        ],
    )


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
    epochs: list[dict[str, Any]] | None = None,
    trained_seconds: float | None = None,
    started_at: datetime | None = None,
) -> bool:
    """The run's outcome, with its last ``epochs`` not yet stored (``record_progress``'s
    work, in the same UPDATE of the run); ``best_epoch`` (the engine's) sets the best
    metrics from that epoch (among ``epochs``, else its stored row). ``started_at``:
    the run's, if the caller read it. False if the run is no longer ours.

    One UPDATE of the run, not a flush's and then the outcome's: a small run's last
    transaction was 11 statements (6 ms for a run of 45 ms of training)."""
    epochs = epochs or []
    now = utcnow()
    if started_at is None:
        started_at = session.scalar(select(RUNS.c.started_at).where(RUNS.c.id == run_id))
    best = None
    if best_epoch is not None:
        best = next((entry for entry in epochs if entry["epoch"] == best_epoch), None)
        if best is None:
            row = session.execute(
                select(*(METRICS.c[name] for name in METRIC_NAMES)).where(
                    METRICS.c.run_id == run_id, METRICS.c.epoch == best_epoch
                )
            ).first()
            best = {"epoch": best_epoch, **row._asdict()} if row is not None else None
    values = progress_values(epochs, trained_seconds)
    values.update(best_values(best))
    values.update(
        best_epoch=best_epoch,
        status=status,
        stop_reason=stop_reason,
        error=error,
        finished_at=now,
        claimed_by=None,
        duration_seconds=(now - started_at).total_seconds() if started_at else None,
    )
    if not _update_owned(session, run_id, worker_id, values):
        return False
    write_epochs(session, run_id, epochs)
    if weights is not None:
        session.execute(insert(WEIGHTS).values(run_id=run_id, data=weights))
    session.execute(delete(CHECKPOINTS).where(CHECKPOINTS.c.run_id == run_id))
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
