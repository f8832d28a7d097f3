"""ANNLAB_MAX_RUNNING_RUNS_PER_USER under Celery, at the database: which queued runs
the sender may put in the broker (``app.db.dispatch.to_dispatch``), and a task's claim
that finds the owner at the limit (``app.jobs.slices``), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from app.db import dispatch
from app.db import runs as run_store
from app.db.engine import make_engine, make_session_factory, transaction
from app.db.migrate import upgrade_to_head
from app.db.tables import RunRow, utcnow
from app.db.users import create_user
from app.jobs import slices
from core.stopping import RunStatus


@pytest.fixture
def factory(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    upgrade_to_head(engine)
    yield make_session_factory(engine)
    engine.dispose()


def _queue(factory: sessionmaker[Session], owners: list[str]) -> tuple[dict[str, str], list[str]]:
    """Users by name and one queued run per entry of ``owners``, queued in that order."""
    with transaction(factory) as session:
        users = {
            name: create_user(session=session, name=name).user.id for name in sorted(set(owners))
        }
        ids = []
        for position, name in enumerate(owners):
            row = run_store.create_run(
                session=session,
                owner_id=users[name],
                dataset_id="iris",
                spec={},
                name=f"{name} {position}",
                epochs=1,
                n_parameters=1,
            )
            row.queued_at = utcnow() + timedelta(seconds=position)
            ids.append(row.id)
    return users, ids


def _set(factory: sessionmaker[Session], run_id: str, **values: object) -> None:
    with transaction(factory) as session:
        session.execute(update(RunRow).where(RunRow.id == run_id).values(**values))


def _to_send(factory: sessionmaker[Session], limit: int, owner: str | None = None) -> list[str]:
    with factory() as session:
        return dispatch.to_dispatch(
            session=session, sent_before=None, max_running_per_user=limit, owner_id=owner
        )


def test_only_the_runs_a_users_free_slots_allow_are_sent(
    factory: sessionmaker[Session],
) -> None:
    users, (a1, a2, a3, b1) = _queue(factory, ["alice", "alice", "alice", "bob"])
    assert _to_send(factory, 0) == [a1, a2, a3, b1]  # no limit: everything
    assert _to_send(factory, 1) == [a1, b1]
    assert _to_send(factory, 2) == [a1, a2, b1]
    with transaction(factory) as session:
        dispatch.mark_dispatched(session=session, run_ids=[a1, b1])
    assert _to_send(factory, 1) == []  # a sent run holds its owner's slot
    _set(factory, a1, status=RunStatus.RUNNING)
    assert _to_send(factory, 1) == []  # so does a running one
    assert _to_send(factory, 2) == [a2]
    # a1 yields its slice: requeued behind, unsent; alice's next run in turn is a2
    _set(
        factory, a1, status=RunStatus.QUEUED, dispatched_at=None, queued_at=utcnow() + timedelta(1)
    )
    assert _to_send(factory, 1, owner=users["alice"]) == [a2]
    assert _to_send(factory, 3, owner=users["alice"]) == [a2, a3, a1]


def test_a_claim_at_the_limit_leaves_the_run_queued_and_unsent(
    factory: sessionmaker[Session],
) -> None:
    _, (a1, a2) = _queue(factory, ["alice", "alice"])
    with transaction(factory) as session:
        assert run_store.claim(session=session, run_id=a1, worker_id="h:1:x")
        dispatch.mark_dispatched(session=session, run_ids=[a2])
    assert not slices._claim(factory, a2, "h:2:y", max_running_per_user=1)
    with factory() as session:
        row = session.get(RunRow, a2)
        assert row is not None
        assert (row.status, row.dispatched_at, row.claimed_by) == (RunStatus.QUEUED, None, None)
    assert slices._claim(factory, a2, "h:2:y", max_running_per_user=2)
