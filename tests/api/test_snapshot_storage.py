"""The run_snapshots table on SQLite and on PostgreSQL: a second write of an epoch is
ignored, a rewind forgets what will be trained again, the run's deletion takes them."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db import progress
from app.db import runs as run_store
from app.db import snapshots as snapshot_store
from app.db.engine import transaction
from app.db.tables import RunRow, SnapshotRow

from .test_storage import engine, factory, queue_run

__all__ = ["engine", "factory"]  # the fixtures, on both databases


def count(session: Session, run_id: str) -> int:
    query = select(func.count()).select_from(SnapshotRow).where(SnapshotRow.run_id == run_id)
    return int(session.scalar(query) or 0)


def test_a_second_write_of_an_epoch_is_ignored(factory: sessionmaker[Session]) -> None:
    run_id = queue_run(factory)
    with transaction(factory) as session:
        snapshot_store.save_snapshots(session=session, run_id=run_id, snapshots=[(1, b"a")])
    with transaction(factory) as session:
        snapshot_store.save_snapshots(
            session=session, run_id=run_id, snapshots=[(1, b"again"), (2, b"b"), (5, b"c")]
        )
    with factory() as session:
        assert snapshot_store.epochs(session=session, run_id=run_id) == [1, 2, 5]
        assert snapshot_store.get_snapshot(session=session, run_id=run_id, epoch=1) == b"a"
        assert snapshot_store.get_snapshot(session=session, run_id=run_id, epoch=3) is None
        assert snapshot_store.latest_epoch(session=session, run_id=run_id) == 5
        assert count(session, run_id) == 3


def test_a_rewind_forgets_the_snapshots_after_the_checkpoint(
    factory: sessionmaker[Session],
) -> None:
    run_id = queue_run(factory)
    with transaction(factory) as session:
        run_store.claim_next(session=session, worker_id="w")
        snapshot_store.save_snapshots(
            session=session, run_id=run_id, snapshots=[(1, b"1"), (2, b"2"), (3, b"3"), (5, b"5")]
        )
        progress.save_checkpoint(
            session=session, run_id=run_id, worker_id="w", epoch=3, step=30, data=b"x"
        )
    with transaction(factory) as session:
        assert progress.requeue(session=session, run_ids=[run_id], crashed=True) == [run_id]
    with factory() as session:
        assert snapshot_store.epochs(session=session, run_id=run_id) == [1, 2, 3]


def test_snapshots_go_with_their_run(factory: sessionmaker[Session]) -> None:
    kept, deleted, cascaded = (queue_run(factory) for _ in range(3))
    with transaction(factory) as session:
        for run_id in (kept, deleted, cascaded):
            snapshot_store.save_snapshots(session=session, run_id=run_id, snapshots=[(1, b"x")])
    with transaction(factory) as session:
        run_store.delete_run(session=session, run_id=deleted)
    with transaction(factory) as session:  # ON DELETE CASCADE, without the service's help
        session.execute(delete(RunRow).where(RunRow.id == cascaded))
    with factory() as session:
        assert (count(session, kept), count(session, deleted), count(session, cascaded)) == (
            1,
            0,
            0,
        )
