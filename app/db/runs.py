"""Runs and what belongs to them: metrics, weights; and the claim of a queued run.

API-side functions take an ``owner_id`` (None = any owner, for admins and
workers). What a worker writes once it holds a run is ``app.db.progress``.
"""

from __future__ import annotations

import functools
import math
import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import Select, case, delete, func, select, update
from sqlalchemy.orm import Session

from app.db.tables import (
    RUNS,
    CheckpointRow,
    IdempotencyTombstoneRow,
    MetricRow,
    RunRow,
    SnapshotRow,
    User,
    WeightsRow,
    utcnow,
)
from core.stopping import RunStatus, StopReason

SelectT = TypeVar("SelectT", bound=Select[*tuple[Any, ...]])

#: How long an Idempotency-Key stays bound after its run was deleted (API.md: 24 h);
#: the key of a run that still exists is kept as long as the run.
IDEMPOTENCY_KEY_SECONDS = 24 * 3600

METRIC_NAMES = ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "learning_rate")


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
    tags: dict[str, str] | None = None,
    experiment_id: str | None = None,
    storage_estimate: int | None = None,
) -> RunRow:
    row = RunRow(
        id=new_run_id(),
        owner_id=owner_id,
        dataset_id=dataset_id,
        name=name,
        spec=spec,
        status=RunStatus.QUEUED,
        created_at=utcnow(),
        epoch=0,
        epochs=epochs,
        step=0,
        n_parameters=n_parameters,
        cancel_requested=False,
        stop_requested=False,
        attempts=0,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        tags=dict(tags or {}),
        experiment_id=experiment_id,
        storage_estimate=storage_estimate,
    )
    session.add(row)
    session.flush()
    return row


def rowcount(result: Any) -> int:
    """Rows an UPDATE matched. ``Session.execute`` is typed as returning ``Result``, which
    has no ``rowcount``; for an UPDATE it is a ``CursorResult``, which has."""
    return int(result.rowcount)


def get_status(*, session: Session, run_id: str) -> str | None:
    """The run's status alone (None: no such run), for a cheap poll."""
    return session.scalar(select(RunRow.status).where(RunRow.id == run_id))


def get_run(
    *, session: Session, run_id: str, owner_id: str | None, fresh: bool = False
) -> RunRow | None:
    """The run (``owner_id``'s; None: any owner). ``fresh``: as stored now, even if the
    session holds an older copy."""
    query = select(RunRow).where(RunRow.id == run_id)
    if owner_id is not None:
        query = query.where(RunRow.owner_id == owner_id)
    if fresh:
        query = query.execution_options(populate_existing=True)
    return session.scalars(query).first()


def find_by_idempotency_key(*, session: Session, owner_id: str, key: str) -> RunRow | None:
    """The caller's run created with this key (kept as long as the run exists)."""
    return session.scalars(
        select(RunRow).where(RunRow.owner_id == owner_id, RunRow.idempotency_key == key)
    ).first()


def find_tombstone(*, session: Session, owner_id: str, key: str) -> IdempotencyTombstoneRow | None:
    """The key of the caller's deleted run, if used less than ``IDEMPOTENCY_KEY_SECONDS``
    ago; an older tombstone is removed (the key is free again)."""
    row = session.get(IdempotencyTombstoneRow, (owner_id, key))
    if row is None:
        return None
    if row.created_at < utcnow() - timedelta(seconds=IDEMPOTENCY_KEY_SECONDS):
        session.delete(row)
        session.flush()
        return None
    return row


#: ``GET /runs?sort=`` keys (each also with ``-``: descending) → the column sorted by.
SORT_COLUMNS: dict[str, Any] = {
    "created_at": RunRow.created_at,
    "best_val_loss": RunRow.best_val_loss,
    "best_val_accuracy": RunRow.best_val_accuracy,
    "duration": RunRow.duration_seconds,
}
#: The default order: newest first.
DEFAULT_SORT = "-created_at"


def sort_keys() -> list[str]:
    """Every accepted ``sort`` value, ascending then descending."""
    return [key for name in SORT_COLUMNS for key in (name, "-" + name)]


def list_runs(
    *,
    session: Session,
    owner_id: str | None,
    status: str | None = None,
    dataset_id: str | None = None,
    experiment_id: str | None = None,
    tags: dict[str, str] | None = None,
    sort: str = DEFAULT_SORT,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[RunRow], int]:
    """A page of runs in ``sort`` order (a ``sort_keys()`` value; runs without the
    value, e.g. no best validation loss yet, come last either way), and how many
    match in all. ``tags``: each key must have that value."""
    conditions = []
    if owner_id is not None:
        conditions.append(RunRow.owner_id == owner_id)
    if status is not None:
        conditions.append(RunRow.status == status)
    if dataset_id is not None:
        conditions.append(RunRow.dataset_id == dataset_id)
    if experiment_id is not None:
        conditions.append(RunRow.experiment_id == experiment_id)
    for key, value in (tags or {}).items():
        conditions.append(RunRow.tags[key].as_string() == value)
    descending = sort.startswith("-")
    column = SORT_COLUMNS[sort.removeprefix("-")]
    order = [column.is_(None), column.desc() if descending else column.asc()]
    # Ties (and equal created_at) in a stable order, so pages neither repeat nor skip.
    order.append(RunRow.id.desc() if descending else RunRow.id.asc())
    total = session.scalar(select(func.count()).select_from(RunRow).where(*conditions)) or 0
    rows = session.scalars(
        select(RunRow).where(*conditions).order_by(*order).limit(limit).offset(offset)
    )
    return list(rows), int(total)


def update_run(
    *, session: Session, run: RunRow, name: str | None, tags: dict[str, str] | None
) -> None:
    """``PATCH``: a new name and/or tags (the stored spec follows, so a replay or a
    copy of the spec carries them)."""
    spec = dict(run.spec)
    if name is not None:
        run.name = spec["name"] = name
    if tags is not None:
        run.tags = dict(tags)
        spec["tags"] = dict(tags)
    run.spec = spec


def count_using_dataset(*, session: Session, dataset_id: str) -> int:
    """Runs (any status) trained or to be trained on this dataset."""
    return int(
        session.scalar(
            select(func.count()).select_from(RunRow).where(RunRow.dataset_id == dataset_id)
        )
        or 0
    )


def count_queued(*, session: Session, owner_id: str) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(RunRow)
            .where(RunRow.owner_id == owner_id, RunRow.status == RunStatus.QUEUED)
        )
        or 0
    )


def cancel_queued(*, session: Session, run_id: str) -> bool:
    """A queued run is cancelled at once (no worker has it); False if it was not queued."""
    now = utcnow()
    result = session.execute(
        update(RunRow)
        .where(RunRow.id == run_id, RunRow.status == RunStatus.QUEUED)
        .values(
            status=RunStatus.CANCELLED,
            stop_reason=StopReason.CANCELLED,
            cancel_requested=True,
            finished_at=now,
            claimed_by=None,
        )
    )
    return rowcount(result) == 1


def request_cancel(*, session: Session, run_id: str) -> bool:
    """Ask the worker of a running run to stop and drop the model; False if the run is
    not running."""
    result = session.execute(
        update(RunRow)
        .where(RunRow.id == run_id, RunRow.status == RunStatus.RUNNING)
        .values(cancel_requested=True)
    )
    return rowcount(result) == 1


def request_stop(*, session: Session, run_id: str) -> bool:
    """Ask the worker of a running run to stop and keep the model (``stop_requested``:
    read by the same cheap poll as a cancel); False if the run is not running."""
    result = session.execute(
        update(RunRow)
        .where(RunRow.id == run_id, RunRow.status == RunStatus.RUNNING)
        .values(stop_requested=True)
    )
    return rowcount(result) == 1


def delete_run(*, session: Session, run_id: str) -> None:
    """Delete the run and its rows; its Idempotency-Key (if any) is kept as a tombstone,
    so that a retry within ``IDEMPOTENCY_KEY_SECONDS`` is not a second run."""
    keyed = session.execute(
        select(
            RunRow.owner_id, RunRow.idempotency_key, RunRow.request_hash, RunRow.created_at
        ).where(RunRow.id == run_id, RunRow.idempotency_key.is_not(None))
    ).first()
    if keyed is not None:
        # the expired ones go first: the table holds at most a day of deleted keyed runs
        cutoff = utcnow() - timedelta(seconds=IDEMPOTENCY_KEY_SECONDS)
        session.execute(
            delete(IdempotencyTombstoneRow).where(IdempotencyTombstoneRow.created_at < cutoff)
        )
        session.merge(
            IdempotencyTombstoneRow(
                owner_id=keyed.owner_id,
                key=keyed.idempotency_key,
                request_hash=keyed.request_hash,
                run_id=run_id,
                created_at=keyed.created_at,
            )
        )
    for table in (MetricRow, WeightsRow, CheckpointRow, SnapshotRow):
        session.execute(delete(table).where(table.run_id == run_id))
    session.execute(delete(RunRow).where(RunRow.id == run_id))


def get_metrics(*, session: Session, run_id: str, after_epoch: int = 0) -> Sequence[MetricRow]:
    return session.scalars(
        select(MetricRow)
        .where(MetricRow.run_id == run_id, MetricRow.epoch > after_epoch)
        .order_by(MetricRow.epoch)
    ).all()


def metrics_dict(row: MetricRow) -> dict[str, float | None]:
    return {name: getattr(row, name) for name in METRIC_NAMES}


def get_weights(*, session: Session, run_id: str) -> bytes | None:
    return session.scalar(select(WeightsRow.data).where(WeightsRow.run_id == run_id))


# -------------------------------------------------------------------- worker side


def queue_order() -> Any:
    """The queue's order: when a run last joined it (a run paused after its slice of
    training goes behind the runs that were waiting), first come first served."""
    return func.coalesce(RunRow.queued_at, RunRow.created_at)


def fair_order(query: SelectT) -> SelectT:
    """``query`` (over queued runs) in the order workers take them: the owner with the
    fewest runs running first, then the owner served least recently (whose runs were
    last on a worker earliest; never served: first), then the queue's order. So two users'
    backlogs of short runs alternate on the workers instead of draining first come,
    first served, and a user's run paused after its slice goes behind another's
    waiting run. Within one user the queue's order stands."""
    running = (
        select(RunRow.owner_id.label("owner_id"), func.count().label("n"))
        .where(RunRow.status == RunStatus.RUNNING)
        .group_by(RunRow.owner_id)
        .subquery()
    )
    # When a run was last on a worker: its start, or the end of its last slice (a run
    # paused after its slice rejoined the queue then: ``queued_at``), whichever is later.
    served_at = case(
        (RunRow.queued_at > RunRow.started_at, RunRow.queued_at), else_=RunRow.started_at
    )
    served = (
        select(RunRow.owner_id.label("owner_id"), func.max(served_at).label("last"))
        .where(RunRow.started_at.is_not(None))
        .group_by(RunRow.owner_id)
        .subquery()
    )
    return (
        query.outerjoin(running, running.c.owner_id == RunRow.owner_id)
        .outerjoin(served, served.c.owner_id == RunRow.owner_id)
        .order_by(
            func.coalesce(running.c.n, 0),
            served.c.last.asc().nulls_first(),
            queue_order(),
            RunRow.id,
        )
    )


def eligible_queued(max_running_per_user: int, query: SelectT) -> SelectT:
    """``query`` restricted to queued runs a worker may claim: their owner has fewer
    than ``max_running_per_user`` runs running (0 = no limit)."""
    query = query.where(RunRow.status == RunStatus.QUEUED)
    if max_running_per_user > 0:
        saturated = (
            select(RunRow.owner_id)
            .where(RunRow.status == RunStatus.RUNNING)
            .group_by(RunRow.owner_id)
            .having(func.count() >= max_running_per_user)
        )
        query = query.where(RunRow.owner_id.not_in(saturated))
    return query


def another_user_waits(*, session: Session, owner_id: str, max_running_per_user: int) -> bool:
    """A queued run of another owner could be claimed now (the fair-share check of a
    worker whose run has trained for its slice)."""
    query = eligible_queued(max_running_per_user, select(RunRow.id)).where(
        RunRow.owner_id != owner_id
    )
    return session.execute(query.limit(1)).first() is not None


def claim_next(*, session: Session, worker_id: str, max_running_per_user: int = 0) -> str | None:
    """Take the oldest eligible queued run for ``worker_id``; None when there is none.

    Eligible: its owner has fewer than ``max_running_per_user`` runs running
    (0 = no limit), so that one user's backlog cannot hold every worker while
    other users wait (``ANNLAB_MAX_RUNNING_RUNS_PER_USER``). Of two workers racing
    for a run, one takes it and the other tries the next candidate (``claim``).
    """
    candidates = session.execute(_claim_candidates(max_running_per_user)).all()
    for run_id, owner_id in candidates:
        if _claim(
            session=session,
            run_id=run_id,
            owner_id=owner_id,
            worker_id=worker_id,
            max_running_per_user=max_running_per_user,
        ):
            return str(run_id)
    return None


@functools.lru_cache(maxsize=8)
def _claim_candidates(max_running_per_user: int) -> Select[str, str]:
    """The five runs a claim tries, in ``fair_order``: built once per limit (the
    statement, two subqueries and its cache key took a worker 1–2 ms per claim)."""
    return fair_order(
        eligible_queued(max_running_per_user, select(RunRow.id, RunRow.owner_id))
    ).limit(5)


def claim(*, session: Session, run_id: str, worker_id: str, max_running_per_user: int = 0) -> bool:
    """Take this queued run for ``worker_id`` (an executor told which run to train, e.g.
    a task queue's message); False when it is not queued (taken, cancelled, deleted) or
    its owner is at ``max_running_per_user`` (0 = no limit)."""
    owner_id = session.scalar(
        select(RunRow.owner_id).where(RunRow.id == run_id, RunRow.status == RunStatus.QUEUED)
    )
    if owner_id is None:
        return False
    return _claim(
        session=session,
        run_id=run_id,
        owner_id=owner_id,
        worker_id=worker_id,
        max_running_per_user=max_running_per_user,
    )


def _claim(
    *, session: Session, run_id: str, owner_id: str, worker_id: str, max_running_per_user: int
) -> bool:
    """The claim of one row: a conditional UPDATE (… WHERE status = 'queued'), atomic
    across processes and machines, which touches no other row.

    The per-user limit holds under races too: on PostgreSQL the owner's ``users``
    row is locked (``FOR NO KEY UPDATE``, which does not block inserting runs that
    reference it) before its running runs are counted, so two claims for one user
    are serialised; SQLite transactions start with ``BEGIN IMMEDIATE`` and are
    serialised already. ``heartbeat_at`` is the claim's lease: a running run whose
    heartbeat is older than the recovery's stale limit is requeued.
    """
    if max_running_per_user > 0:
        session.execute(select(User.id).where(User.id == owner_id).with_for_update(key_share=True))
        running = session.scalar(
            select(func.count())
            .select_from(RunRow)
            .where(RunRow.owner_id == owner_id, RunRow.status == RunStatus.RUNNING)
        )
        if (running or 0) >= max_running_per_user:
            return False
    now = utcnow()
    result = session.execute(
        update(RUNS)
        .where(RUNS.c.id == run_id, RUNS.c.status == RunStatus.QUEUED)
        .values(
            status=RunStatus.RUNNING,
            claimed_by=worker_id,
            heartbeat_at=now,
            started_at=func.coalesce(RUNS.c.started_at, now),
        )
    )
    return rowcount(result) == 1
