"""Experiments and their runs, on a Session (keyword-only, nothing commits)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.tables import ExperimentRow, RunRow, utcnow


def new_experiment_id() -> str:
    return "exp_" + secrets.token_hex(12)


def create_experiment(
    *, session: Session, experiment_id: str, owner_id: str, name: str, base: Any, grid: Any
) -> ExperimentRow:
    row = ExperimentRow(
        id=experiment_id,
        owner_id=owner_id,
        name=name,
        base=base,
        grid=grid,
        points=[],
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def get_experiment(
    *, session: Session, experiment_id: str, owner_id: str | None
) -> ExperimentRow | None:
    """The experiment if it exists and ``owner_id`` (None: anyone's) owns it."""
    row = session.get(ExperimentRow, experiment_id)
    if row is None or (owner_id is not None and row.owner_id != owner_id):
        return None
    return row


def list_experiments(
    *, session: Session, owner_id: str | None, limit: int, offset: int
) -> tuple[list[ExperimentRow], int]:
    """A page, newest first, and how many there are in all."""
    conditions = [] if owner_id is None else [ExperimentRow.owner_id == owner_id]
    total = session.scalar(select(func.count()).select_from(ExperimentRow).where(*conditions))
    rows = session.scalars(
        select(ExperimentRow)
        .where(*conditions)
        .order_by(ExperimentRow.created_at.desc(), ExperimentRow.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)


def runs_of(*, session: Session, experiment_id: str) -> Sequence[RunRow]:
    """The experiment's runs that still exist (a run may be deleted on its own)."""
    return session.scalars(select(RunRow).where(RunRow.experiment_id == experiment_id)).all()


def delete_experiment(*, session: Session, experiment_id: str) -> None:
    row = session.get(ExperimentRow, experiment_id)
    if row is not None:
        session.delete(row)
