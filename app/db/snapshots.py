"""Run snapshots in the database: the ``.npz`` of the model after chosen epochs.

The worker writes them (``save_snapshots``) in the transaction that records the
epoch's metrics, so a crash never leaves one without the other; a resumed run
that trains an epoch again writes the same bits again, and the insert is then
ignored (``ON CONFLICT DO NOTHING`` on the unique (run_id, epoch)). What a
rewind forgets (``delete_after``) the resumed run writes again.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db.tables import SNAPSHOTS, SnapshotRow, utcnow

#: The unique key an insert may conflict on.
KEY = ["run_id", "epoch"]


def save_snapshots(
    *, session: Session, run_id: str, snapshots: Sequence[tuple[int, bytes]]
) -> None:
    """Store ``(epoch, npz)`` pairs; an epoch already stored for the run is left alone."""
    if not snapshots:
        return
    rows = [
        {"run_id": run_id, "epoch": epoch, "data": data, "created_at": utcnow()}
        for epoch, data in snapshots
    ]
    dialect = session.get_bind().dialect.name
    # On the Core table: through the ORM the insert cost more than the snapshot's bytes.
    if dialect == "postgresql":
        session.execute(
            postgresql.insert(SNAPSHOTS).on_conflict_do_nothing(index_elements=KEY), rows
        )
    elif dialect == "sqlite":
        session.execute(sqlite.insert(SNAPSHOTS).on_conflict_do_nothing(index_elements=KEY), rows)
    else:  # any other database: look first (the worker holds the run, nobody races it)
        stored = set(epochs(session=session, run_id=run_id))
        session.add_all(SnapshotRow(**row) for row in rows if row["epoch"] not in stored)


def epochs(*, session: Session, run_id: str) -> list[int]:
    """The epochs with a snapshot, ascending."""
    return list(
        session.scalars(
            select(SnapshotRow.epoch)
            .where(SnapshotRow.run_id == run_id)
            .order_by(SnapshotRow.epoch)
        )
    )


def latest_epoch(*, session: Session, run_id: str) -> int | None:
    """The last epoch with a snapshot, or None."""
    return session.scalar(select(func.max(SnapshotRow.epoch)).where(SnapshotRow.run_id == run_id))


def get_snapshot(*, session: Session, run_id: str, epoch: int) -> bytes | None:
    """The ``.npz`` of the snapshot at ``epoch``, or None."""
    return session.scalar(
        select(SnapshotRow.data).where(SnapshotRow.run_id == run_id, SnapshotRow.epoch == epoch)
    )


def delete_after(*, session: Session, run_id: str, epoch: int) -> None:
    """Forget the snapshots after ``epoch`` (the run is rewound to a checkpoint there)."""
    session.execute(
        delete(SnapshotRow).where(SnapshotRow.run_id == run_id, SnapshotRow.epoch > epoch)
    )


def delete_all(*, session: Session, run_id: str) -> None:
    session.execute(delete(SnapshotRow).where(SnapshotRow.run_id == run_id))
