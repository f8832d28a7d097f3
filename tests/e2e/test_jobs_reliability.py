"""Graceful stop, worker death and the run time limit, with real processes.

- SIGTERM: the server stops claiming, every worker pauses its run between two
  mini-batches and stores that exact state as a checkpoint, the runs go back to
  ``queued`` (``stop_reason`` null, no attempt counted), the process group is gone
  within 10 s, and after a restart the runs resume from the pause, bit for bit.
- A run whose worker process dies three times fails (``error``), saying so.
- ``ANNLAB_MAX_RUN_SECONDS`` ends a run (``succeeded``/``interrupted``, model kept) with an
  ``error`` naming the limit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import time
from typing import Any

import pytest

from .server import (
    API,
    TERMINAL,
    Server,
    get_run,
    long_spec,
    submit,
    wait_epoch,
    wait_status,
    wait_until,
    weights_json,
    worker_pids,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


def db_rows(server: Server, query: str, *args: Any) -> list[tuple]:
    connection = sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True, timeout=5)
    try:
        return connection.execute(query, args).fetchall()
    finally:
        connection.close()


def test_sigterm_pauses_running_runs_at_a_batch_and_they_resume_bit_for_bit(make_server) -> None:
    # No periodic checkpoint within the test: whatever checkpoint exists is the pause's.
    server: Server = make_server(
        "pause", ANNLAB_WORKERS="2", ANNLAB_CHECKPOINT_SECONDS="3600"
    ).start()
    with server.client() as client:
        runs = [
            submit(client, long_spec(400, seed=seed, name=f"pause {seed}")) for seed in (11, 12)
        ]
        for run in runs:
            wait_epoch(client, run["id"], 3, timeout=30)
        at_stop = {run["id"]: get_run(client, run["id"])["progress"]["epoch"] for run in runs}

    elapsed = server.stop(signal.SIGTERM, timeout=10)
    print(f"SIGTERM -> exit in {elapsed:.2f}s")
    assert elapsed < 10
    assert not server.wait_group_gone(timeout=5), "worker processes outlived the server"
    log = server.log_text()
    assert log.count("paused for shutdown") == 2, log[-3000:]

    for run in runs:
        [(status, stop_reason, attempts, error)] = db_rows(
            server, "SELECT status, stop_reason, attempts, error FROM runs WHERE id = ?", run["id"]
        )
        assert (status, stop_reason, attempts, error) == ("queued", None, 0, None)
        [(epoch, step)] = db_rows(
            server, "SELECT epoch, step FROM checkpoints WHERE run_id = ?", run["id"]
        )
        # the pause's checkpoint: at least the epochs seen before the stop, and (pure SGD,
        # 120 steps per epoch) most likely inside an epoch
        assert epoch >= at_stop[run["id"]] and step >= epoch * 120, (epoch, step)
        print(f"{run['id']}: epoch {at_stop[run['id']]} at SIGTERM, paused at step {step}")

    server.start()
    with server.client() as client:
        finals = {run["id"]: wait_status(client, run["id"], timeout=90) for run in runs}
        for run_id, final in finals.items():
            assert (final["status"], final["stop_reason"]) == ("succeeded", "completed"), final
            metrics = client.get(f"{API}/runs/{run_id}/metrics").json()
            assert metrics["epoch"] == list(range(1, 401))
            fresh = submit(client, final["spec"])
            assert wait_status(client, fresh["id"], timeout=90)["status"] == "succeeded"
            assert weights_json(client, run_id) == weights_json(client, fresh["id"]), (
                "paused and resumed run differs from an uninterrupted one"
            )
    server.stop()


def test_a_run_whose_worker_dies_three_times_fails_saying_so(make_server) -> None:
    server: Server = make_server("deaths", ANNLAB_WORKERS="1").start()
    with server.client() as client:
        run = submit(client, long_spec(100_000, name="killer run"))
        killed: list[int] = []
        claims: list[str | None] = [None]
        for attempt in range(1, 4):
            # the run must be held again, by the replacement worker: counted deaths ==
            # kills so far, a new claim (``host:server-pid:token``, a token per worker),
            # and the pool's single live worker is one we have not killed. Killing a
            # replacement that has not claimed the run yet would count for no run.
            def training_worker() -> int | None:
                [(status, claimed_by, attempts)] = db_rows(
                    server,
                    "SELECT status, claimed_by, attempts FROM runs WHERE id = ?",
                    run["id"],
                )
                if status != "running" or claimed_by in claims or attempts != len(killed):
                    return None
                fresh = [pid for pid in worker_pids(server.pid) if pid not in killed]
                if len(fresh) != 1:
                    return None
                claims.append(claimed_by)
                return fresh[0]

            pid = wait_until(training_worker, 30, f"run not running again before kill {attempt}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            print(f"kill {attempt}: worker {pid}")
        final = wait_status(client, run["id"], timeout=60)
        assert (final["status"], final["stop_reason"]) == ("failed", "error"), final
        assert "died 3 times" in final["error"], final["error"]
        assert server.running and client.get("/readyz").status_code == 200
        # the pool is whole again and takes new work
        after = submit(client, long_spec(2, name="after the deaths"))
        assert wait_status(client, after["id"], timeout=60)["status"] == "succeeded"
    server.stop()


def test_the_run_time_limit_ends_the_run_keeping_its_model(make_server) -> None:
    server: Server = make_server("limit", ANNLAB_WORKERS="1", ANNLAB_MAX_RUN_SECONDS="1.5").start()
    with server.client() as client:
        run = submit(client, long_spec(100_000, name="too long"))
        started = time.monotonic()
        final = wait_status(client, run["id"], frozenset(TERMINAL), timeout=30)
        print(f"limit: run ended after {time.monotonic() - started:.2f}s")
        assert (final["status"], final["stop_reason"]) == ("succeeded", "interrupted"), final
        assert "ANNLAB_MAX_RUN_SECONDS=1.5" in final["error"], final["error"]
        assert client.get(f"/api/v1/runs/{run['id']}/weights").status_code == 200
    server.stop()
