"""Experiments: a base spec and a grid over dotted paths, run as one batch of runs.

``create_experiment`` checks the whole grid before it writes anything: every
combination goes through ``prepare_run`` — exactly the checks of ``POST /runs`` —
and any invalid one is a 422 naming the combination and the field. The runs are
then inserted by ``insert_run``, the code ``submit_run`` uses, in the same
transaction as the experiment, so each run is the run ``POST /runs`` makes from
its spec (same normalised spec, same weights bit for bit); only the name, which
training never reads, says which combination it is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import experiments as store
from app.db import runs as run_store
from app.db import users as user_store
from app.db.tables import ExperimentRow, RunRow, utcnow
from app.errors import AppError, Conflict, LimitExceeded, NotFound, limit_message
from app.jobs.base import Executor
from app.services import audit, registry, storage
from app.services import runs as run_service
from app.services.auth import Caller
from app.services.serving import ModelCache
from core.errors import SpecError
from core.grid import GridError, expand_grid, grid_size, pick_best, run_name, summarize_over_seeds
from core.spec_checks import spec_error_from_validation
from core.specs import RunSpec
from core.stopping import TERMINAL_STATUSES, RunStatus


@dataclass(frozen=True)
class ExperimentView:
    """An experiment with its runs, in the grid's order, as ``GET`` answers it."""

    row: ExperimentRow
    status: str
    runs: list[tuple[RunRow, dict[str, Any]]]
    summary: list[dict[str, Any]]
    best: dict[str, Any] | None


def create_experiment(
    *,
    session: Session,
    name: str,
    base: dict[str, Any],
    grid: dict[str, list[Any]],
    caller: Caller,
    settings: Settings,
    executor: Executor,
) -> ExperimentRow:
    """Validate every combination, then store the experiment and its runs in one
    transaction; commits, then wakes the executor for each run."""
    try:
        count = grid_size(grid)
    except GridError as error:
        raise SpecError(error.message, field=f"grid.{error.path}") from None
    if count > settings.max_experiment_runs:
        raise LimitExceeded(
            "grid: "
            + limit_message(
                "the number of runs", count, settings.max_experiment_runs, "max_experiment_runs"
            )
        )
    try:
        points = expand_grid(base, grid)
    except GridError as error:
        raise SpecError(error.message, field=f"grid.{error.path}") from None
    prepared = []
    for index, point in enumerate(points, start=1):
        where = f"combination {index} of {count} ({params_label(point.params)})"
        document = {**point.spec, "name": run_name(name, point.params)}
        prepared.append(
            _prepare(
                session=session, document=document, caller=caller, settings=settings, where=where
            )
        )
    run_service.check_queue_quota(
        session=session, owner_id=caller.owner_id, settings=settings, adding=count
    )
    storage.check_submission(
        session=session,
        owner=caller,
        settings=settings,
        runs=[ready.storage_estimate for ready in prepared],
    )
    experiment = store.create_experiment(
        session=session,
        experiment_id=store.new_experiment_id(),
        owner_id=caller.owner_id,
        name=name,
        base=base,
        grid=grid,
    )
    pairs: list[list[Any]] = []
    run_ids: list[str] = []
    for point, ready in zip(points, prepared, strict=True):
        run = run_service.insert_run(
            session=session,
            prepared=ready,
            owner_id=caller.owner_id,
            dataset_id=ready.spec.dataset,
            experiment_id=experiment.id,
        )
        pairs.append([run.id, point.params])
        run_ids.append(run.id)
    experiment.points = pairs
    audit.record(
        session=session,
        actor=caller,
        action="experiment.submitted",
        subject=caller.name,
        target=experiment.id,
        detail={"name": name, "runs": run_ids},
    )
    session.commit()
    for run_id in run_ids:
        executor.notify(run_id)
    return experiment


def params_label(params: dict[str, Any]) -> str:
    """``path=value, …`` as in the run names (optimizers as their short label)."""
    return run_name("", params).removeprefix(" · ")


def short_label(params: dict[str, Any]) -> str:
    """A legend entry: ``sgd(lr=0.1, momentum=0.9), seed=0`` (a whole optimizer by its
    value alone, other paths by their last segment)."""
    parts = []
    for path, value in params.items():
        text = params_label({path: value}).partition("=")[2]
        parts.append(text if path == "optimizer" else f"{path.rsplit('.', 1)[-1]}={text}")
    return ", ".join(parts)


def _prepare(
    *, session: Session, document: dict[str, Any], caller: Caller, settings: Settings, where: str
) -> run_service.PreparedRun:
    """``prepare_run`` on one combination; its 422s say which combination failed."""
    try:
        spec = RunSpec.model_validate(document)
    except ValidationError as error:
        first = spec_error_from_validation(error)
        raise SpecError(f"{where}: {first.field}: {first}", field=f"base.{first.field}") from None
    try:
        return run_service.prepare_run(session=session, spec=spec, caller=caller, settings=settings)
    except SpecError as error:
        field = f" {error.field}:" if error.field else ""
        raise SpecError(f"{where}:{field} {error}", field=f"base.{error.field}") from None
    except AppError as error:
        if error.status_code != 422:
            raise
        raise type(error)(f"{where}: {error.detail}", headers=error.headers) from None


def get_experiment(*, session: Session, experiment_id: str, scope: str | None) -> ExperimentRow:
    """404 for an unknown experiment or another user's."""
    row = store.get_experiment(session=session, experiment_id=experiment_id, owner_id=scope)
    if row is None:
        raise NotFound(f"experiment {experiment_id!r} not found")
    return row


def view(*, session: Session, row: ExperimentRow) -> ExperimentView:
    """The experiment's runs (those not deleted), status, summary and best run."""
    by_id = {run.id: run for run in store.runs_of(session=session, experiment_id=row.id)}
    runs = [(by_id[run_id], params) for run_id, params in row.points if run_id in by_id]
    best = pick_best([(run.id, run.best_metrics) for run, _ in runs])
    summary = summarize_over_seeds([(params, run.best_metrics) for run, params in runs])
    return ExperimentView(
        row=row,
        status=status_of(row, [RunStatus(run.status) for run, _ in runs]),
        runs=runs,
        summary=[item.as_dict() for item in summary],
        best=best.as_dict() if best is not None else None,
    )


def status_of(row: ExperimentRow, statuses: list[RunStatus]) -> str:
    """queued (no run started), running, finished, or cancelled (finished after a
    cancel of the experiment)."""
    if all(status in TERMINAL_STATUSES for status in statuses):
        return "cancelled" if row.cancelled_at is not None else "finished"
    if all(status == RunStatus.QUEUED for status in statuses):
        return "queued"
    return "running"


def cancel_experiment(*, session: Session, row: ExperimentRow, actor: Caller) -> ExperimentRow:
    """Cancel every run not finished yet; 409 when all have. Commits."""
    runs = store.runs_of(session=session, experiment_id=row.id)
    pending = [run for run in runs if run.status not in TERMINAL_STATUSES]
    if not pending:
        raise Conflict(f"experiment {row.id!r} already finished: every run has ended")
    for run in pending:
        if not run_store.cancel_queued(session=session, run_id=run.id):
            run_store.request_cancel(session=session, run_id=run.id)
    row.cancelled_at = utcnow()
    audit.record(
        session=session,
        actor=actor,
        action="experiment.cancelled",
        subject=_owner_name(session=session, owner_id=row.owner_id),
        target=row.id,
        detail={"runs": [run.id for run in pending]},
    )
    session.commit()
    session.expire_all()
    return row


def delete_experiment(
    *,
    session: Session,
    row: ExperimentRow,
    cache: ModelCache,
    actor: Caller,
    wait_seconds: float = run_service.DELETE_WAIT_SECONDS,
) -> None:
    """Delete the experiment and its runs (running ones cancelled first); 409 naming
    the model when a model version refers to one of them. Commits."""
    runs = list(store.runs_of(session=session, experiment_id=row.id))
    run_ids = [run.id for run in runs]
    registry.protect_runs(session=session, run_ids=run_ids)
    asked = False
    for run in runs:
        if run.status == RunStatus.QUEUED:
            run_store.cancel_queued(session=session, run_id=run.id)
        asked = run_store.request_cancel(session=session, run_id=run.id) or asked
    if asked:
        session.commit()
        _wait_stopped(session=session, run_ids=run_ids, timeout=wait_seconds)
    for run_id in run_ids:
        run_store.delete_run(session=session, run_id=run_id)
    audit.record(
        session=session,
        actor=actor,
        action="experiment.deleted",
        subject=_owner_name(session=session, owner_id=row.owner_id),
        target=row.id,
        detail={"runs": run_ids},
    )
    store.delete_experiment(session=session, experiment_id=row.id)
    session.commit()
    for run_id in run_ids:
        cache.evict(run_id)


def _wait_stopped(*, session: Session, run_ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        running = [
            run_id
            for run_id in run_ids
            if run_store.get_status(session=session, run_id=run_id) == RunStatus.RUNNING
        ]
        session.rollback()  # SQLite: a read transaction holds the lock workers need
        if not running or time.monotonic() >= deadline:
            return
        time.sleep(run_service.STOP_POLL_SECONDS)


def _owner_name(*, session: Session, owner_id: str) -> str:
    owner = user_store.get_user(session=session, user_id=owner_id)
    return owner.name if owner is not None else owner_id
