"""ANNLAB_MAX_RUNNING_RUNS_PER_USER: one user's backlog cannot hold every worker."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import progress
from app.db import runs as run_store
from app.db.engine import transaction
from app.db.tables import User
from app.jobs.worker import WorkerConfig
from core.stopping import RunStatus, StopReason

from .conftest import API, submit


def short_spec(seed: int, epochs: int = 60) -> dict[str, Any]:
    return {
        "name": f"fair {seed}",
        "dataset": "iris",
        "model": {
            "layers": [{"units": 16, "activation": "tanh"}, {"units": 3, "activation": "softmax"}]
        },
        "optimizer": {"type": "sgd", "learning_rate": 0.01},
        "training": {"epochs": epochs, "batch_size": 1, "seed": seed},
        "dtype": "float64",
    }


def test_the_default_limit(tmp_path) -> None:
    assert Settings(data_dir=tmp_path, workers=4, auth=True).resolved_max_running_runs_per_user == 3
    assert Settings(data_dir=tmp_path, workers=1, auth=True).resolved_max_running_runs_per_user == 1
    assert Settings(data_dir=tmp_path, workers=4).resolved_max_running_runs_per_user == 0
    explicit = Settings(data_dir=tmp_path, workers=4, auth=True, max_running_runs_per_user=0)
    assert explicit.resolved_max_running_runs_per_user == 0


def claim(factory: sessionmaker[Session], worker: str, limit: int) -> str | None:
    with transaction(factory) as session:
        return run_store.claim_next(session=session, worker_id=worker, max_running_per_user=limit)


def finish(factory: sessionmaker[Session], run_id: str, worker: str) -> None:
    with transaction(factory) as session:
        assert progress.finish_run(
            session=session,
            run_id=run_id,
            worker_id=worker,
            status=RunStatus.SUCCEEDED,
            stop_reason=StopReason.COMPLETED,
        )


def test_a_later_user_starts_before_the_first_users_backlog_drains(make_client) -> None:
    # The workers are stepped by hand: the order of claims is the store's alone, however
    # fast the machine trains.
    client = make_client(executor="none")
    factory = client.app.state.session_factory
    a_runs = [submit(client, short_spec(seed))["id"] for seed in range(6)]
    with transaction(factory) as session:
        session.add(User(id="user_b", name="b"))
        session.flush()
        template = run_store.get_run(session=session, run_id=a_runs[0], owner_id=None)
        b_run = run_store.create_run(
            session=session,
            owner_id="user_b",
            dataset_id="iris",
            spec=template.spec,
            name="b's run",
            epochs=template.epochs,
            n_parameters=template.n_parameters,
        ).id
    assert claim(factory, "w1", limit=1) == a_runs[0], "the oldest run first"
    assert claim(factory, "w2", limit=1) == b_run, "B's run before A's older backlog"
    assert claim(factory, "w3", limit=1) is None, "A and B are both at the limit"
    finish(factory, a_runs[0], "w1")
    assert claim(factory, "w1", limit=1) == a_runs[1], "A's next run once its first is done"
    assert claim(factory, "w3", limit=0) == a_runs[2], "no limit: the oldest queued run"
    running = client.get(f"{API}/runs", params={"status": "running"}).json()["items"]
    assert {run["id"] for run in running} == {a_runs[1], a_runs[2], b_run}


def test_workers_claim_with_the_configured_limit(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, workers=3, auth=True)
    assert WorkerConfig.from_settings("w", settings).max_running_per_user == 2
    unlimited = Settings(data_dir=tmp_path, workers=3, max_running_runs_per_user=0, auth=True)
    assert WorkerConfig.from_settings("w", unlimited).max_running_per_user == 0


def test_claims_respect_the_limit_under_concurrent_workers(make_client) -> None:
    client = make_client(executor="none")
    factory = client.app.state.session_factory
    for seed in range(8):
        submit(client, short_spec(seed))

    claimed: list[str | None] = []
    barrier = threading.Barrier(6)

    def claim(index: int) -> None:
        barrier.wait()
        with transaction(factory) as session:
            claimed.append(
                run_store.claim_next(session=session, worker_id=f"w{index}", max_running_per_user=2)
            )

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([run for run in claimed if run is not None]) == 2, claimed


def runs_of_b(factory: sessionmaker[Session], template_id: str, n: int) -> list[str]:
    with transaction(factory) as session:
        session.add(User(id="user_b", name="b"))
        session.flush()
        template = run_store.get_run(session=session, run_id=template_id, owner_id=None)
        return [
            run_store.create_run(
                session=session,
                owner_id="user_b",
                dataset_id="iris",
                spec=template.spec,
                name=f"b's run {i}",
                epochs=template.epochs,
                n_parameters=template.n_parameters,
            ).id
            for i in range(n)
        ]


def test_two_backlogs_of_short_runs_alternate_on_one_worker(make_client) -> None:
    # A submits 4 runs, then B 4: a first-come queue would train all of A's first.
    client = make_client(executor="none")
    factory = client.app.state.session_factory
    a_runs = [submit(client, short_spec(seed))["id"] for seed in range(4)]
    b_runs = runs_of_b(factory, a_runs[0], 4)
    order = []
    while (run_id := claim(factory, "w1", limit=0)) is not None:
        order.append(run_id)
        finish(factory, run_id, "w1")
    turns = [run for pair in zip(a_runs, b_runs, strict=True) for run in pair]
    assert order == turns, "each user's runs in their order, the users taking turns"


def test_a_sliced_run_takes_turns_with_another_users_backlog(make_client) -> None:
    # A's long run started first; after each of its slices it rejoins the queue, and B
    # (served since) must still get the next turn: the turn goes by when each user was
    # last on a worker, not by when A's run first started.
    client = make_client(executor="none")
    factory = client.app.state.session_factory
    giant = submit(client, short_spec(0))["id"]
    assert claim(factory, "w1", limit=0) == giant
    b_runs = runs_of_b(factory, giant, 3)
    order = []
    for _ in range(3):
        with transaction(factory) as session:  # the end of the giant's slice
            progress.requeue(
                session=session, run_ids=[giant], crashed=False, only_worker="w1", behind=True
            )
        taken = claim(factory, "w1", limit=0)
        order.append(taken)
        finish(factory, taken, "w1")
        assert claim(factory, "w1", limit=0) == giant, "A's run again after B's turn"
    assert order == b_runs
