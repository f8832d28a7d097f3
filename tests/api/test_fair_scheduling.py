"""ANNLAB_MAX_RUNNING_RUNS_PER_USER: one user's backlog cannot hold every worker."""

from __future__ import annotations

import time
from typing import Any

from app.config import Settings
from app.db import runs as run_store
from app.db.engine import transaction
from app.db.tables import User

from .conftest import API, get_run, submit, wait_for


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


def test_a_later_user_starts_before_the_first_users_backlog_drains(make_client) -> None:
    client = make_client(workers=2, max_running_runs_per_user=1)
    factory = client.app.state.session_factory
    a_runs = [submit(client, short_spec(seed, epochs=600)) for seed in range(6)]
    # B arrives once A holds a worker: from then on A's backlog is what B must not wait behind.
    deadline = time.monotonic() + 30
    while not any(get_run(client, run["id"])["status"] != "queued" for run in a_runs):
        assert time.monotonic() < deadline, "none of A's runs started"
        time.sleep(0.01)
    with transaction(factory) as session:
        session.add(User(id="user_b", name="b"))
        session.flush()
        template = run_store.get_run(session=session, run_id=a_runs[0]["id"], owner_id=None)
        b_run = run_store.create_run(
            session=session,
            owner_id="user_b",
            dataset_id="iris",
            spec=template.spec,
            name="b's run",
            epochs=template.epochs,
            n_parameters=template.n_parameters,
        ).id
    client.app.state.executor.notify()
    most_running_for_a = 0
    a_left: list[dict[str, Any]] | None = None
    while True:
        # One list request is one query: a consistent snapshot (reading the runs one by
        # one could see a run that just finished and its successor both "running").
        running = client.get(f"{API}/runs", params={"status": "running", "limit": 100}).json()
        a_ids = {run["id"] for run in a_runs}
        running_for_a = sum(item["id"] in a_ids for item in running["items"])
        most_running_for_a = max(most_running_for_a, running_for_a)
        runs = [get_run(client, run["id"]) for run in a_runs]
        b = get_run(client, b_run)
        if b["status"] != "queued" and a_left is None:
            a_left = [r for r in runs if r["status"] == "queued"]
        if b["status"] == "succeeded":
            break
        assert b["status"] in ("queued", "running"), b
        time.sleep(0.01)
    print(f"when B's run started, {len(a_left or [])} of A's 6 runs were still queued")
    assert a_left, "B's run should start while A's backlog still waits"
    assert most_running_for_a == 1, "A never has more than the limit running"
    for run in a_runs:
        assert wait_for(client, run["id"], timeout=120)["status"] == "succeeded"
    assert client.get(f"{API}/runs").status_code == 200


def test_claims_respect_the_limit_under_concurrent_workers(make_client) -> None:
    client = make_client(executor="none")
    factory = client.app.state.session_factory
    for seed in range(8):
        submit(client, short_spec(seed))
    import threading

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
