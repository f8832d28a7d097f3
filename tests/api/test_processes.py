"""Real worker processes, restarts on the same database, and crash recovery."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from app.db.engine import make_engine
from app.db.tables import RunRow, utcnow
from tests.support import waiting

from .conftest import API, get_run, iris_spec, long_spec, submit, wait_for
from .test_lifecycle import check_whole_life


def test_the_whole_life_with_real_worker_processes(make_client: Any) -> None:
    client = make_client(executor="process", workers=1)
    check_whole_life(client)


def test_a_restart_on_the_same_database_keeps_every_run(make_client: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "restart"
    first = make_client(data_dir=data_dir)
    done = submit(first, iris_spec(epochs=3))
    wait_for(first, done["id"])
    queued_later = [submit(first, iris_spec(epochs=2, seed=seed)) for seed in range(3)]
    for run in queued_later:
        wait_for(first, run["id"])
    before = first.get(f"{API}/runs", params={"limit": 100}).json()
    weights = first.get(f"{API}/runs/{done['id']}/weights").json()
    first.__exit__(None, None, None)

    second = make_client(data_dir=data_dir)
    assert second.get(f"{API}/runs", params={"limit": 100}).json() == before
    assert second.get(f"{API}/runs/{done['id']}/weights").json() == weights
    assert second.get("/readyz").status_code == 200


def test_a_run_left_running_by_a_crash_is_requeued_on_start(
    make_client: Any, tmp_path: Path
) -> None:
    data_dir = tmp_path / "crash"
    idle = make_client(data_dir=data_dir, executor="none")
    run = submit(idle, iris_spec(epochs=5))
    idle.__exit__(None, None, None)

    # What a kill -9 leaves behind: the run "running" on a worker that no longer exists.
    engine = make_engine(f"sqlite:///{data_dir / 'annlab.db'}")
    with engine.begin() as connection:
        connection.execute(
            update(RunRow)
            .where(RunRow.id == run["id"])
            .values(
                status="running",
                claimed_by="gone-host:1:dead",
                heartbeat_at=utcnow().replace(year=2000),
                epoch=2,
            )
        )
    engine.dispose()

    restarted = make_client(data_dir=data_dir)
    final = wait_for(restarted, run["id"])
    assert final["status"] == "succeeded", final
    assert final["progress"]["epoch"] == 5
    metrics = restarted.get(f"{API}/runs/{run['id']}/metrics").json()
    assert metrics["epoch"] == [1, 2, 3, 4, 5], "without a checkpoint it starts from zero"


def test_shutdown_requeues_a_running_run_and_it_resumes(make_client: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "shutdown"
    first: TestClient = make_client(data_dir=data_dir, checkpoint_seconds=0.05)
    run = submit(
        # Long enough that the shutdown always finds it running, even on a fast machine.
        first,
        long_spec(epochs=400) | {"training": {"epochs": 400, "batch_size": 1, "seed": 3}},
    )
    wait_for(first, run["id"], lambda r: r["progress"]["epoch"] >= 3)
    first.__exit__(None, None, None)

    second = make_client(data_dir=data_dir, executor="none")
    stopped = get_run(second, run["id"])
    assert stopped["status"] == "queued" and stopped["stop_reason"] is None, stopped
    assert stopped["progress"]["epoch"] >= 1, "resumes from its checkpoint, not from zero"
    second.__exit__(None, None, None)

    third = make_client(data_dir=data_dir)
    final = wait_for(third, run["id"], timeout=120)
    assert final["status"] == "succeeded", final
    metrics = third.get(f"{API}/runs/{run['id']}/metrics").json()
    assert metrics["epoch"] == list(range(1, 401))


def test_worker_processes_train_at_a_lower_cpu_priority(make_client: Any) -> None:
    client = make_client(executor="process", workers=1, worker_nice=3)
    process = client.app.state.executor.slots[0].process  # type: ignore[attr-defined]
    expected = min(19, os.getpriority(os.PRIO_PROCESS, 0) + 3)
    waiting.wait_for(
        lambda: os.getpriority(os.PRIO_PROCESS, process.pid) == expected,
        timeout=10,
        message="the worker's niceness never changed",
    )
    check_whole_life(client)  # and it still trains


def test_the_server_starts_once_its_workers_can_claim_runs(make_client: Any) -> None:
    """The first runs after a start are not left queued while workers import the app."""
    client = make_client(executor="process", workers=2)
    slots = client.app.state.executor.slots  # type: ignore[attr-defined]
    assert len(slots) == 2 and all(slot.ready.is_set() for slot in slots)
    check_whole_life(client)
