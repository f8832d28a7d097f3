"""Runs and what belongs to them: metrics, weights, checkpoints.

API-side functions take an ``owner_id`` (None = any owner, for admins and
workers). Worker-side functions take the ``worker_id`` that claimed the run and
change nothing once the run is no longer theirs (deleted, requeued).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.db.tables import CheckpointRow, MetricRow, RunRow, User, WeightsRow, utcnow

TERMINAL_STATUSES = ("succeeded", "failed", "cancelled")
METRIC_NAMES = ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "learning_rate")
#: A worker that crashed this many times on one run makes the run fail.
MAX_ATTEMPTS = 3


def new_run_id() -> str:
    return "run_" + secrets.token_hex(8)


def finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


# ----------------------------------------------------------------------- API side


def create_run(
    *,
    session: Session,
    owner_id: str,
    dataset_id: str,
    spec: dict[str, Any],
    name: str,
    epochs: int,
    n_parameters: int,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> RunRow:
    row = RunRow(
        id=new_run_id(),
        owner_id=owner_id,
        dataset_id=dataset_id,
        name=name,
        spec=spec,
        status="queued",
        created_at=utcnow(),
        epoch=0,
        epochs=epochs,
        step=0,
        n_parameters=n_parameters,
        cancel_requested=False,
        attempts=0,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )
    session.add(row)
    session.flush()
    return row


def get_run(*, session: Session, run_id: str, owner_id: str | None) -> RunRow | None:
    query = select(RunRow).where(RunRow.id == run_id)
    if owner_id is not None:
        query = query.where(RunRow.owner_id == owner_id)
    return session.scalars(query).first()


def find_by_idempotency_key(*, session: Session, owner_id: str, key: str) -> RunRow | None:
    """The caller's run created with this key (kept as long as the run exists)."""
    return session.scalars(
        select(RunRow).where(RunRow.owner_id == owner_id, RunRow.idempotency_key == key)
    ).first()


def list_runs(
    *,
    session: Session,
    owner_id: str | None,
    status: str | None = None,
    dataset_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[RunRow], int]:
    """Runs newest first, and how many match in all."""
    conditions = []
    if owner_id is not None:
        conditions.append(RunRow.owner_id == owner_id)
    if status is not None:
        conditions.append(RunRow.status == status)
    if dataset_id is not None:
        conditions.append(RunRow.dataset_id == dataset_id)
    total = session.scalar(select(func.count()).select_from(RunRow).where(*conditions)) or 0
    rows = session.scalars(
        select(RunRow)
        .where(*conditions)
        .order_by(RunRow.created_at.desc(), RunRow.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total)


def count_queued(*, session: Session, owner_id: str) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(RunRow)
            .where(RunRow.owner_id == owner_id, RunRow.status == "queued")
        )
        or 0
    )


def cancel_queued(*, session: Session, run_id: str) -> bool:
    """A queued run is cancelled at once (no worker has it); False if it was not queued."""
    now = utcnow()
    result = session.execute(
        update(RunRow)
        .where(RunRow.id == run_id, RunRow.status == "queued")
        .values(
            status="cancelled",
            stop_reason="cancelled",
            cancel_requested=True,
            finished_at=now,
            claimed_by=None,
        )
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def request_cancel(*, session: Session, run_id: str) -> bool:
    """Ask the worker of a running run to stop; False if the run is not running."""
    result = session.execute(
        update(RunRow)
        .where(RunRow.id == run_id, RunRow.status == "running")
        .values(cancel_requested=True)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def delete_run(*, session: Session, run_id: str) -> None:
    for table in (MetricRow, WeightsRow, CheckpointRow):
        session.execute(delete(table).where(table.run_id == run_id))
    session.execute(delete(RunRow).where(RunRow.id == run_id))


def get_metrics(*, session: Session, run_id: str, after_epoch: int = 0) -> Sequence[MetricRow]:
    return session.scalars(
        select(MetricRow)
        .where(MetricRow.run_id == run_id, MetricRow.epoch > after_epoch)
        .order_by(MetricRow.epoch)
    ).all()


def get_weights(*, session: Session, run_id: str) -> bytes | None:
    return session.scalar(select(WeightsRow.data).where(WeightsRow.run_id == run_id))


# -------------------------------------------------------------------- worker side


def claim_next(*, session: Session, worker_id: str, max_running_per_user: int = 0) -> str | None:
    """Take the oldest eligible queued run for ``worker_id``; None when there is none.

    Eligible: its owner has fewer than ``max_running_per_user`` runs running
    (0 = no limit), so that one user's backlog cannot hold every worker while
    other users wait (``ANNLAB_MAX_RUNNING_RUNS_PER_USER``).

    The conditional UPDATE (… WHERE status = 'queued') makes the claim atomic
    across processes and machines: of two workers racing for a run, one updates
    a row and the other updates none and tries the next candidate. The per-user
    limit holds under races too: on PostgreSQL the owner's ``users`` row is
    locked (``FOR NO KEY UPDATE``, which does not block inserting runs that
    reference it) before its running runs are counted, so two claims for one
    user are serialised; SQLite transactions start with ``BEGIN IMMEDIATE`` and
    are serialised already.
    """
    query = select(RunRow.id, RunRow.owner_id).where(RunRow.status == "queued")
    if max_running_per_user > 0:
        saturated = (
            select(RunRow.owner_id)
            .where(RunRow.status == "running")
            .group_by(RunRow.owner_id)
            .having(func.count() >= max_running_per_user)
        )
        query = query.where(RunRow.owner_id.not_in(saturated))
    candidates = session.execute(query.order_by(RunRow.created_at, RunRow.id).limit(5)).all()
    now = utcnow()
    for run_id, owner_id in candidates:
        if max_running_per_user > 0:
            session.execute(
                select(User.id).where(User.id == owner_id).with_for_update(key_share=True)
            )
            running = session.scalar(
                select(func.count())
                .select_from(RunRow)
                .where(RunRow.owner_id == owner_id, RunRow.status == "running")
            )
            if (running or 0) >= max_running_per_user:
                continue
        result = session.execute(
            update(RunRow)
            .where(RunRow.id == run_id, RunRow.status == "queued")
            .values(
                status="running",
                claimed_by=worker_id,
                heartbeat_at=now,
                started_at=func.coalesce(RunRow.started_at, now),
            )
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return run_id
    return None


def load_checkpoint(*, session: Session, run_id: str) -> CheckpointRow | None:
    return session.get(CheckpointRow, run_id)


def rewind_to_checkpoint(*, session: Session, run_id: str) -> None:
    """Forget the progress made after the last checkpoint (it will be trained again)."""
    checkpoint = session.get(CheckpointRow, run_id)
    epoch = checkpoint.epoch if checkpoint is not None else 0
    step = checkpoint.step if checkpoint is not None else 0
    session.execute(delete(MetricRow).where(MetricRow.run_id == run_id, MetricRow.epoch > epoch))
    latest = session.scalars(
        select(MetricRow).where(MetricRow.run_id == run_id).order_by(MetricRow.epoch.desc())
    ).first()
    session.execute(
        update(RunRow)
        .where(RunRow.id == run_id)
        .values(epoch=epoch, step=step, metrics=metrics_dict(latest) if latest else None)
    )


def metrics_dict(row: MetricRow) -> dict[str, float | None]:
    return {name: getattr(row, name) for name in METRIC_NAMES}


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
        .where(RunRow.id == run_id, RunRow.claimed_by == worker_id, RunRow.status == "running")
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
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
    if row is None or row.claimed_by != worker_id or row.status != "running":
        return False, False
    return True, bool(row.cancel_requested)


def save_checkpoint(
    *, session: Session, run_id: str, worker_id: str, epoch: int, step: int, data: bytes
) -> bool:
    owned = session.scalar(
        select(func.count())
        .select_from(RunRow)
        .where(RunRow.id == run_id, RunRow.claimed_by == worker_id, RunRow.status == "running")
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
    status: str,
    stop_reason: str,
    error: str | None = None,
    best_epoch: int | None = None,
    weights: bytes | None = None,
) -> bool:
    result = session.execute(
        update(RunRow)
        .where(RunRow.id == run_id, RunRow.claimed_by == worker_id, RunRow.status == "running")
        .values(
            status=status,
            stop_reason=stop_reason,
            error=error,
            best_epoch=best_epoch,
            finished_at=utcnow(),
            claimed_by=None,
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    if weights is not None:
        session.add(WeightsRow(run_id=run_id, data=weights))
    session.execute(delete(CheckpointRow).where(CheckpointRow.run_id == run_id))
    return True


def requeue(
    *, session: Session, run_ids: Sequence[str], crashed: bool, only_worker: str | None = None
) -> list[str]:
    """Put running runs back in the queue (their checkpoint stays).

    ``crashed``: the worker died; count an attempt, and at ``MAX_ATTEMPTS`` fail
    the run instead of retrying it forever. Returns the ids requeued.
    """
    requeued: list[str] = []
    for run_id in run_ids:
        query = select(RunRow).where(RunRow.id == run_id, RunRow.status == "running")
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
            row.status, row.stop_reason, row.finished_at = "failed", "error", utcnow()
            row.error = f"the worker process training this run died {row.attempts} times; giving up"
            session.execute(delete(CheckpointRow).where(CheckpointRow.run_id == run_id))
            continue
        if row.cancel_requested:
            row.status, row.stop_reason, row.finished_at = "cancelled", "cancelled", utcnow()
            continue
        row.status = "queued"
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
    query = select(RunRow.id).where(RunRow.status == "running")
    if claimed_by is not None:
        query = query.where(RunRow.claimed_by == claimed_by)
    if stale_before is not None:
        query = query.where(RunRow.heartbeat_at < stale_before)
    return list(session.scalars(query))


def stale_cutoff(seconds: float) -> datetime:
    return utcnow() - timedelta(seconds=seconds)
