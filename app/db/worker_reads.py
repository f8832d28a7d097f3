"""What a worker reads of the run it has claimed: the run before training it, and the
polls of ``should_stop`` while it trains. Reads only, on the Core tables (no lock)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.tables import CHECKPOINTS, RUNS
from core.stopping import RunStatus


@dataclass(frozen=True)
class ClaimedRun:
    """What a worker reads of a run it claimed before training it."""

    spec: dict[str, Any]
    dataset_id: str
    owner_id: str
    n_parameters: int
    trained_seconds: float
    started_at: datetime | None
    checkpoint: bytes | None
    #: Progress was recorded: ``rewind_to_checkpoint`` first (a resumed run).
    rewind: bool


def read_claimed(*, session: Session, run_id: str) -> ClaimedRun | None:
    """The run and its checkpoint in one read, no lock: a fresh run (most claims) then
    needs no write before training (the setup's write transaction and its four
    statements were a quarter of a small run's overhead)."""
    row = session.execute(
        select(
            RUNS.c.spec,
            RUNS.c.dataset_id,
            RUNS.c.owner_id,
            RUNS.c.n_parameters,
            RUNS.c.trained_seconds,
            RUNS.c.started_at,
            RUNS.c.epoch,
            CHECKPOINTS.c.data,
        )
        .select_from(RUNS.outerjoin(CHECKPOINTS, CHECKPOINTS.c.run_id == RUNS.c.id))
        .where(RUNS.c.id == run_id)
    ).first()
    if row is None:
        return None
    return ClaimedRun(
        spec=row.spec,
        dataset_id=row.dataset_id,
        owner_id=row.owner_id,
        n_parameters=row.n_parameters,
        trained_seconds=float(row.trained_seconds or 0.0),
        started_at=row.started_at,
        checkpoint=row.data,
        rewind=row.data is not None or bool(row.epoch),
    )


@dataclass(frozen=True)
class Poll:
    """What a worker's ``should_stop`` reads of its run."""

    owned: bool  # still claimed by this worker and running
    cancel: bool  # drop the model
    stop: bool  # end early, keep the model


def poll_run(*, session: Session, run_id: str, worker_id: str) -> Poll:
    """One small SELECT by primary key, for a worker's ``should_stop``."""
    row = session.execute(
        select(
            RUNS.c.claimed_by, RUNS.c.status, RUNS.c.cancel_requested, RUNS.c.stop_requested
        ).where(RUNS.c.id == run_id)
    ).first()
    if row is None or row.claimed_by != worker_id or row.status != RunStatus.RUNNING:
        return Poll(owned=False, cancel=False, stop=False)
    return Poll(owned=True, cancel=bool(row.cancel_requested), stop=bool(row.stop_requested))
