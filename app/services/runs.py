"""Runs: submit (idempotency, limits, the queue quota), rename/retag, stop, cancel,
delete, follow.

``submit_run`` is the one way a run enters the queue. An ``Idempotency-Key``
makes a retry safe: the same key and body return the first run (``replayed``),
the same key with another body is a 422, and while the first request with a key
is still being handled a second one gets a 409 (``InFlightKeys``, per process; a
race between processes ends at the unique index and is answered as a replay).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import runs as run_store
from app.db.tables import RunRow
from app.errors import Conflict, NotFound, TooMany, Unprocessable
from app.jobs.base import Executor
from app.limits import check_spec_limits
from app.services import audit, datasets, registry, storage
from app.services.auth import Caller
from app.services.number_checks import check_numbers_fit
from app.services.serving import ModelCache
from core.snapshots import plan_snapshots
from core.specs import NAME_MAX_LENGTH, OptimizerSpec, RunSpec, check_against_dataset
from core.stopping import TERMINAL_STATUSES, RunStatus

#: How long ``delete_run`` waits for the worker of a running run to stop.
DELETE_WAIT_SECONDS = 2.0
#: Seconds between two looks while waiting for a worker to stop.
STOP_POLL_SECONDS = 0.05
#: ``Retry-After`` of the 429 for a full queue.
QUEUE_FULL_RETRY_SECONDS = 10


class InFlightKeys:
    """Idempotency keys whose first request is still being handled (→ 409)."""

    def __init__(self) -> None:
        self._keys: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, key: tuple[str, str]) -> Iterator[None]:
        with self._lock:
            if key in self._keys:
                raise Conflict("a request with this Idempotency-Key is still being handled; retry")
            self._keys.add(key)
        try:
            yield
        finally:
            with self._lock:
                self._keys.discard(key)

    def __contains__(self, key: object) -> bool:
        return key in self._keys


@dataclass(frozen=True)
class Submission:
    run: RunRow
    #: True: the run first created with this Idempotency-Key (answer 200, not 202).
    replayed: bool


@dataclass(frozen=True)
class PreparedRun:
    """A spec checked against its dataset and the limits, ready to be stored."""

    spec: RunSpec  # normalised
    n_parameters: int
    #: Bytes its weights, snapshots and checkpoint may take (``storage.estimate_run``).
    storage_estimate: int


def request_hash(spec: RunSpec) -> str:
    """What an Idempotency-Key is bound to: the request's spec, as parsed."""
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()


def prepare_run(
    *, session: Session, spec: RunSpec, caller: Caller, settings: Settings
) -> PreparedRun:
    """Check ``spec`` against its dataset (404 unknown, 422 not fitting) and the limits
    (422 naming the setting, ``ANNLAB_MAX_SNAPSHOT_BYTES`` included); no write."""
    shape = datasets.get_shape(session=session, dataset_id=spec.dataset, owner_id=caller.scope)
    if spec.name is None:
        dataset_name = datasets.get_dataset(
            session=session, dataset_id=spec.dataset, owner_id=caller.scope
        ).name
        spec = spec.model_copy(update={"name": default_run_name(spec, dataset_name)})
    normalised = check_against_dataset(spec, shape)
    check_numbers_fit(session=session, spec=normalised, owner_id=caller.scope)  # 422 at the door
    n_parameters = check_spec_limits(normalised, n_features=shape.n_features, settings=settings)
    # an explicit snapshot list over ANNLAB_MAX_SNAPSHOT_BYTES: a 422 now, not a failed run
    plan = plan_snapshots(
        normalised, n_parameters=n_parameters, max_bytes=settings.max_snapshot_bytes
    )
    estimate = storage.estimate_run(
        normalised,
        n_parameters=n_parameters,
        n_snapshots=plan.max_count,
        n_samples=shape.n_samples,
        names=storage.dataset_names(session=session, dataset_id=spec.dataset, scope=caller.scope),
    )
    return PreparedRun(spec=normalised, n_parameters=n_parameters, storage_estimate=estimate)


def optimizer_label(optimizer: OptimizerSpec) -> str:
    """``"sgd(momentum=0.9, lr=0.1)"``: the type, the fields set away from their
    defaults, and always the learning rate (``lr``), last."""
    defaults = type(optimizer).model_validate({"type": optimizer.type})
    parts = []
    for field in type(optimizer).model_fields:
        if field in ("type", "learning_rate"):
            continue
        value = getattr(optimizer, field)
        if value != getattr(defaults, field):
            shown = value.type if hasattr(value, "type") else value  # a schedule: its type
            parts.append(f"{field}={shown:g}" if isinstance(shown, float) else f"{field}={shown}")
    parts.append(f"lr={optimizer.learning_rate:g}")
    return f"{optimizer.type}({', '.join(parts)})"


def default_run_name(spec: RunSpec, dataset_name: str) -> str:
    """``"<optimizer label> on <dataset name>"``, cut to the name limit: what tells
    two unnamed runs apart in a list."""
    assert spec.optimizer is not None, "RunSpec fills in the default optimizer"
    name = f"{optimizer_label(spec.optimizer)} on {dataset_name}"
    return name if len(name) <= NAME_MAX_LENGTH else name[: NAME_MAX_LENGTH - 1] + "…"


def check_queue_quota(
    *, session: Session, owner_id: str, settings: Settings, adding: int = 1
) -> None:
    """429 (``Retry-After``) when ``adding`` more queued runs would pass
    ``ANNLAB_MAX_QUEUED_RUNS`` for this owner."""
    queued = run_store.count_queued(session=session, owner_id=owner_id)
    if queued + adding > settings.max_queued_runs:
        raise TooMany(
            f"you have {queued} runs queued and the limit is {settings.max_queued_runs} "
            f"(ANNLAB_MAX_QUEUED_RUNS): wait for some to start (retry in about "
            f"{QUEUE_FULL_RETRY_SECONDS} s) or ask an admin to raise the limit",
            headers={"Retry-After": str(QUEUE_FULL_RETRY_SECONDS)},
        )


def insert_run(
    *,
    session: Session,
    prepared: PreparedRun,
    owner_id: str,
    dataset_id: str,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    experiment_id: str | None = None,
) -> RunRow:
    """Add a queued run to the session (flushed, not committed)."""
    spec = prepared.spec
    return run_store.create_run(
        session=session,
        owner_id=owner_id,
        dataset_id=dataset_id,
        spec=spec.model_dump(mode="json"),
        name=spec.name or dataset_id,  # normalised specs always have a name
        epochs=spec.training.epochs,
        n_parameters=prepared.n_parameters,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        tags=dict(spec.tags),
        experiment_id=experiment_id,
        storage_estimate=prepared.storage_estimate,
    )


def submit_run(
    *,
    session: Session,
    spec: RunSpec,
    caller: Caller,
    settings: Settings,
    executor: Executor,
    in_flight: InFlightKeys,
    idempotency_key: str | None = None,
) -> Submission:
    """Queue a run for ``caller``; commits, then wakes the executor.

    404 unknown dataset, 422 invalid or over a limit (or a key reused with another
    body, or a key not 1-255 characters), 409 the key's first request still running,
    429 the caller's queue full. With a key seen before: that run, ``replayed``."""
    if idempotency_key is None:
        run = _submit_new(session=session, spec=spec, caller=caller, settings=settings)
    else:
        if not 1 <= len(idempotency_key) <= 255:
            raise Unprocessable("the Idempotency-Key header must have 1 to 255 characters")
        with in_flight.hold((caller.owner_id, idempotency_key)):
            submission = _submit_keyed(
                session=session, spec=spec, caller=caller, settings=settings, key=idempotency_key
            )
        if submission.replayed:
            return submission
        run = submission.run
    executor.notify(run.id)
    return Submission(run=run, replayed=False)


def _submit_new(
    *,
    session: Session,
    spec: RunSpec,
    caller: Caller,
    settings: Settings,
    key: str | None = None,
    hashed: str | None = None,
) -> RunRow:
    prepared = prepare_run(session=session, spec=spec, caller=caller, settings=settings)
    check_queue_quota(session=session, owner_id=caller.owner_id, settings=settings)
    storage.check_submission(
        session=session, owner=caller, settings=settings, runs=[prepared.storage_estimate]
    )
    run = insert_run(
        session=session,
        prepared=prepared,
        owner_id=caller.owner_id,
        dataset_id=spec.dataset,
        idempotency_key=key,
        request_hash=hashed,
    )
    audit.record(
        session=session,
        actor=caller,
        action="run.submitted",
        subject=caller.name,
        target=run.id,
        detail={"dataset": spec.dataset, "name": run.name},
    )
    session.commit()
    return run


def _submit_keyed(
    *, session: Session, spec: RunSpec, caller: Caller, settings: Settings, key: str
) -> Submission:
    hashed = request_hash(spec)
    existing = run_store.find_by_idempotency_key(session=session, owner_id=caller.owner_id, key=key)
    if existing is not None:
        return _replay(existing, hashed)
    tombstone = run_store.find_tombstone(session=session, owner_id=caller.owner_id, key=key)
    if tombstone is not None:
        if tombstone.request_hash != hashed:
            raise Unprocessable(
                "this Idempotency-Key was already used with another request body; use a new key"
            )
        raise Conflict(
            f"this Idempotency-Key made run {tombstone.run_id!r}, which was deleted since; "
            "keys are remembered for 24 hours: use a new key to submit the run again"
        )
    try:
        run = _submit_new(
            session=session, spec=spec, caller=caller, settings=settings, key=key, hashed=hashed
        )
    except IntegrityError:
        # Another process stored the same key first.
        session.rollback()
        existing = run_store.find_by_idempotency_key(
            session=session, owner_id=caller.owner_id, key=key
        )
        if existing is None:
            raise
        return _replay(existing, hashed)
    return Submission(run=run, replayed=False)


def _replay(existing: RunRow, hashed: str) -> Submission:
    if existing.request_hash != hashed:
        raise Unprocessable(
            "this Idempotency-Key was already used with another request body; use a new key"
        )
    return Submission(run=existing, replayed=True)


def cancel_run(*, session: Session, run: RunRow, actor: Caller) -> RunRow:
    """Cancel a queued run at once, or ask a running run's worker to stop; 409 for a
    finished run. Commits; returns the run as stored."""
    run_id = run.id
    owner = run.owner.name
    if run.status in TERMINAL_STATUSES:
        raise Conflict(f"run {run_id!r} already finished ({run.status})")
    changed = False
    for _ in range(3):  # a run trained in slices flips running -> queued -> running
        changed = run_store.cancel_queued(
            session=session, run_id=run_id
        ) or run_store.request_cancel(session=session, run_id=run_id)
        if changed:
            break
    if changed:
        audit.record(
            session=session, actor=actor, action="run.cancelled", subject=owner, target=run_id
        )
    session.commit()
    # Read the run again: a DELETE may have removed it meanwhile (404, not a 500 from
    # refreshing a row that is gone), or a worker finished it (409).
    current = run_store.get_run(session=session, run_id=run_id, owner_id=None, fresh=True)
    if current is None:
        raise NotFound(f"run {run_id!r} not found")
    if not changed:
        raise Conflict(f"run {run_id!r} already finished ({current.status})")
    return current


def stop_run(*, session: Session, run: RunRow, actor: Caller) -> RunRow:
    """Ask a running run's worker to end training at the next mini-batch boundary and
    keep the model (``succeeded``, ``stopped``). A queued run has nothing trained to
    keep: it is cancelled at once. 409 for a finished run. Commits."""
    if run.status in TERMINAL_STATUSES:
        raise Conflict(f"run {run.id!r} already finished ({run.status})")
    if not run_store.cancel_queued(session=session, run_id=run.id) and not run_store.request_stop(
        session=session, run_id=run.id
    ):
        raise Conflict(f"run {run.id!r} already finished")
    audit.record(
        session=session, actor=actor, action="run.stopped", subject=run.owner.name, target=run.id
    )
    session.commit()
    session.refresh(run)
    return run


def update_run(
    *, session: Session, run: RunRow, name: str | None, tags: dict[str, str] | None
) -> RunRow:
    """``PATCH /runs/{id}``: rename and/or retag, in any status. Commits."""
    run_store.update_run(session=session, run=run, name=name, tags=tags)
    session.commit()
    session.refresh(run)
    return run


def delete_run(
    *,
    session: Session,
    run: RunRow,
    cache: ModelCache,
    actor: Caller,
    wait_seconds: float = DELETE_WAIT_SECONDS,
) -> None:
    """Delete a run and what belongs to it; a running run is cancelled first and its
    worker given ``wait_seconds`` to stop. Commits, then forgets its cached models.
    409 naming the model when a model version refers to the run."""
    run_id = run.id
    owner = run.owner.name
    registry.protect_runs(session=session, run_ids=[run_id])
    if run.status == RunStatus.QUEUED:
        run_store.cancel_queued(session=session, run_id=run_id)
    if run_store.request_cancel(session=session, run_id=run_id):
        session.commit()
        _wait_until_stopped(session=session, run_id=run_id, timeout=wait_seconds)
    run_store.delete_run(session=session, run_id=run_id)
    audit.record(session=session, actor=actor, action="run.deleted", subject=owner, target=run_id)
    session.commit()
    cache.evict(run_id)


def _wait_until_stopped(*, session: Session, run_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = run_store.get_status(session=session, run_id=run_id)
        # End the read: on SQLite every transaction holds the write lock the worker needs.
        session.rollback()
        if status != RunStatus.RUNNING or time.monotonic() >= deadline:
            return
        time.sleep(STOP_POLL_SECONDS)


@dataclass(frozen=True)
class RunSnapshot:
    """What an event stream sends: the run's state and the epochs recorded since."""

    status: RunStatus
    stop_reason: str | None
    error: str | None
    epochs: int
    #: (epoch, metrics) of each epoch after the one asked for, in order.
    metrics: list[tuple[int, dict[str, Any]]]

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


def snapshot(
    *, session: Session, run_id: str, scope: str | None, after_epoch: int
) -> RunSnapshot | None:
    """The run's state and its metrics after ``after_epoch``; None if it is gone (or
    not the caller's)."""
    row = run_store.get_run(session=session, run_id=run_id, owner_id=scope)
    if row is None:
        return None
    metrics = [
        (metric.epoch, run_store.metrics_dict(metric))
        for metric in run_store.get_metrics(session=session, run_id=run_id, after_epoch=after_epoch)
    ]
    return RunSnapshot(
        status=RunStatus(row.status),
        stop_reason=row.stop_reason,
        error=row.error,
        epochs=row.epochs,
        metrics=metrics,
    )
