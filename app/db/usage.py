"""Bytes stored per user: uploaded datasets, and their runs' weights, snapshots and
checkpoints (``ANNLAB_MAX_STORAGE_BYTES_PER_USER``). ``length()`` of a BLOB (SQLite)
or a ``bytea`` (PostgreSQL) is its size in bytes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ScalarSelect, func, select
from sqlalchemy.orm import Session

from app.db.tables import CheckpointRow, DatasetRow, RunRow, SnapshotRow, WeightsRow
from core.stopping import RunStatus

UNFINISHED = (RunStatus.QUEUED, RunStatus.RUNNING)


@dataclass(frozen=True)
class Usage:
    """What a user stores now, and what their queued and running runs may still add."""

    datasets: int
    runs: int
    #: Σ over unfinished runs of max(0, estimate − stored so far).
    reserved: int

    @property
    def used(self) -> int:
        return self.datasets + self.runs


def _stored_per_run(
    table: type[WeightsRow] | type[SnapshotRow] | type[CheckpointRow],
) -> ScalarSelect[int]:
    """Bytes of ``table``'s blobs for the run of the outer query's row."""
    return (
        select(func.coalesce(func.sum(func.length(table.data)), 0))
        .where(table.run_id == RunRow.id)
        .correlate(RunRow)
        .scalar_subquery()
    )


def usage(*, session: Session, owner_id: str) -> Usage:
    datasets = session.scalar(
        select(func.coalesce(func.sum(func.length(DatasetRow.data)), 0)).where(
            DatasetRow.owner_id == owner_id
        )
    )
    stored = (
        _stored_per_run(WeightsRow) + _stored_per_run(SnapshotRow) + _stored_per_run(CheckpointRow)
    )
    rows = session.execute(
        select(RunRow.status, RunRow.storage_estimate, stored).where(RunRow.owner_id == owner_id)
    ).all()
    runs = 0
    reserved = 0
    for status, estimate, run_bytes in rows:
        runs += int(run_bytes)
        if status in UNFINISHED and estimate is not None:
            reserved += max(0, int(estimate) - int(run_bytes))
    return Usage(datasets=int(datasets or 0), runs=runs, reserved=reserved)
