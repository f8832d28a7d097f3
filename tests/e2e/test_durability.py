"""Nothing accepted is lost: restarts, SIGTERM, kill -9 and dead workers.

Each test gets its own server and data directory (``make_server``) because it
stops, kills or restarts it. "Bit for bit" is checked by comparing the weights
JSON of a resumed run with the one of a fresh, uninterrupted run of the same spec
and seed: API.md promises the same weights whichever worker ran it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.waiting import wait_for

from .server import (
    API,
    TERMINAL,
    Server,
    cmdline,
    descendants,
    get_run,
    iris_spec,
    long_spec,
    npz_arrays,
    sse_events,
    submit,
    wait_epoch,
    wait_status,
    weights_json,
    weights_npz,
    worker_pids,
)

# Generous: on a loaded machine (load 15+ on 2 cores) a resume check trains 4 long runs.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

#: Epochs of a "long" run: a few seconds of pure SGD on iris, so that it is still
#: running when the server is killed, yet short enough to run twice per test.
LONG_EPOCHS = 600
#: Checkpoint often, so that a kill loses at most a fraction of a second of work.
DURABLE_ENV = {"ANNLAB_WORKERS": "2", "ANNLAB_CHECKPOINT_SECONDS": "0.2"}


# --------------------------------------------------------------------- helpers


def all_runs(client: httpx.Client) -> dict[str, dict[str, Any]]:
    first = client.get(f"{API}/runs", params={"limit": 100})
    assert first.status_code == 200, first.text
    runs = {run["id"]: run for run in first.json()["items"]}
    for offset in range(100, first.json()["total"], 100):
        page = client.get(f"{API}/runs", params={"limit": 100, "offset": offset})
        assert page.status_code == 200, page.text
        runs.update({run["id"]: run for run in page.json()["items"]})
    return runs


def checkpoint_epochs(db_path: Path) -> dict[str, int]:
    """The epoch of each run's stored checkpoint, read from the server's SQLite file
    (read-only, beside the running server: WAL lets a reader in)."""
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        return dict(connection.execute("SELECT run_id, epoch FROM checkpoints").fetchall())
    finally:
        connection.close()


def wait_checkpoints(server: Server, run_ids: list[str], epoch: int) -> dict[str, int]:
    """The checkpoint epochs of ``run_ids`` once each has a checkpoint at ``epoch`` or later."""

    def reached() -> dict[str, int] | None:
        epochs = checkpoint_epochs(server.db_path)
        mine = {run_id: epochs.get(run_id, -1) for run_id in run_ids}
        return mine if min(mine.values()) >= epoch else None

    return wait_for(reached, timeout=30, message=f"no checkpoint at epoch {epoch} of {run_ids}")


def integrity_check(db_path: Path) -> None:
    """Open the SQLite file after the server is gone; PRAGMA integrity_check must say ok."""
    assert db_path.exists(), f"no database at {db_path}"
    connection = sqlite3.connect(f"file:{db_path}?mode=rw", uri=True, timeout=5)
    try:
        result = connection.execute("PRAGMA integrity_check").fetchall()
    finally:
        connection.close()
    assert result == [("ok",)], f"integrity_check: {result}"


def diverging_spec() -> dict[str, Any]:
    """Linear regression with an absurd learning rate: the loss overflows within a few epochs."""
    return {
        "name": "e2e diverges",
        "dataset": "sine",
        "model": {"layers": [{"units": 1, "activation": "linear"}]},
        "optimizer": {"type": "sgd", "learning_rate": 1000.0},
        "training": {"epochs": 200, "batch_size": 8, "seed": 0},
        "dtype": "float64",
    }


def assert_same_as_fresh_run(
    client: httpx.Client, run: dict[str, Any], timeout: float = 60
) -> None:
    """A fresh run of the same spec ends with the same weights, bit for bit."""
    spec = {key: run["spec"][key] for key in run["spec"]}
    fresh = submit(client, spec)
    finished = wait_status(client, fresh["id"], timeout=timeout)
    assert finished["status"] == "succeeded", finished
    resumed_json, fresh_json = weights_json(client, run["id"]), weights_json(client, fresh["id"])
    assert resumed_json == fresh_json, (
        f"run {run['id']} (interrupted, resumed) and {fresh['id']} (uninterrupted) "
        "have different weights for the same spec and seed"
    )
    assert npz_arrays(weights_npz(client, run["id"])) == npz_arrays(
        weights_npz(client, fresh["id"])
    )


def follow(client: httpx.Client, run_ids: list[str], timeout: float = 90) -> tuple[dict, dict]:
    """Poll runs until all are finished: (final Run by id, lowest progress epoch seen by id).

    A run resumed from a checkpoint never shows an epoch below that checkpoint; a run
    restarted from scratch drops back to epoch 0 or 1.
    """
    finals: dict[str, dict[str, Any]] = {}
    lowest: dict[str, int] = {}

    def all_finished() -> bool:
        for run_id in run_ids:
            if run_id not in finals:
                run = get_run(client, run_id)
                lowest[run_id] = min(lowest.get(run_id, 1 << 62), run["progress"]["epoch"])
                if run["status"] in TERMINAL:
                    finals[run_id] = run
        return len(finals) == len(run_ids)

    wait_for(
        all_finished,
        timeout=timeout,
        message="runs not finished",
        describe=lambda: sorted(set(run_ids) - set(finals)),
    )
    return finals, lowest


def assert_resumed(run_id: str, checkpointed: int, lowest: int) -> None:
    """``checkpointed``: the epoch of a checkpoint stored before the interruption."""
    print(
        f"{run_id}: checkpoint at epoch {checkpointed} before the interruption, lowest after: {lowest}"
    )
    assert checkpointed >= 1 and lowest >= checkpointed, (
        f"run {run_id} had a checkpoint at epoch {checkpointed} when interrupted and went back "
        f"to epoch {lowest} afterwards: restarted from scratch instead of from its checkpoint"
    )


def watch_events(server: Server, run_id: str, connected: threading.Event) -> None:
    """Read a run's event stream until the server goes away (for the SIGTERM test);
    ``connected`` is set at its first event."""
    with contextlib.suppress(httpx.HTTPError), server.client(timeout=30) as client:
        for _ in sse_events(client, f"{API}/runs/{run_id}/events", timeout=60):
            connected.set()


def assert_contiguous_metrics(client: httpx.Client, run: dict[str, Any]) -> None:
    metrics = client.get(f"{API}/runs/{run['id']}/metrics").json()
    epochs = run["progress"]["epoch"]
    assert metrics["epoch"] == list(range(1, epochs + 1)), (
        f"run {run['id']}: recorded epochs are not 1..{epochs} once each: {metrics['epoch'][:20]}..."
    )
    for name, values in metrics.items():
        assert len(values) == epochs, name


# ---------------------------------------------------------------------- tests


def test_restart_keeps_every_run_and_its_weights(make_server) -> None:
    server: Server = make_server("restart", ANNLAB_WORKERS="2").start()
    with server.client() as client:
        succeeded = submit(client, iris_spec(epochs=10))
        diverged = submit(client, diverging_spec())
        cancelled = submit(client, long_spec(100_000, name="e2e cancelled"))
        wait_epoch(client, cancelled["id"], 1)
        assert client.post(f"{API}/runs/{cancelled['id']}/cancel").status_code == 202
        finals = {
            run["id"]: wait_status(client, run["id"]) for run in (succeeded, diverged, cancelled)
        }
        assert [run["status"] for run in finals.values()] == ["succeeded", "failed", "cancelled"], (
            finals
        )
        assert finals[diverged["id"]]["stop_reason"] == "diverged"
        assert "epoch" in (finals[diverged["id"]]["error"] or ""), finals[diverged["id"]]
        before = all_runs(client)
        weights_before = weights_json(client, succeeded["id"])
        npz_before = npz_arrays(weights_npz(client, succeeded["id"]))
        metrics_before = client.get(f"{API}/runs/{succeeded['id']}/metrics").json()

    server.stop()
    integrity_check(server.db_path)
    server.start()

    with server.client() as client:
        after = all_runs(client)
        assert after == before, "runs changed across a restart"
        assert weights_json(client, succeeded["id"]) == weights_before
        assert npz_arrays(weights_npz(client, succeeded["id"])) == npz_before
        assert client.get(f"{API}/runs/{succeeded['id']}/metrics").json() == metrics_before
        predict = client.post(
            f"{API}/runs/{succeeded['id']}/predict", json={"inputs": [[5.1, 3.5, 1.4, 0.2]]}
        )
        assert predict.status_code == 200, predict.text
    server.stop()


def test_kill_9_loses_no_run_and_resumes_bit_for_bit(make_server) -> None:
    server: Server = make_server("kill9", **DURABLE_ENV).start()
    with server.client() as client:
        finished = submit(client, iris_spec(epochs=10))
        finished_run = wait_status(client, finished["id"])
        assert finished_run["status"] == "succeeded", finished_run
        finished_json = weights_json(client, finished["id"])
        finished_npz = npz_arrays(weights_npz(client, finished["id"]))

        running = [
            submit(client, long_spec(LONG_EPOCHS, seed=seed, name=f"kill9 long {seed}"))
            for seed in (1, 2)
        ]
        for run in running:
            wait_epoch(client, run["id"], 3, timeout=30)
        queued = [submit(client, iris_spec(epochs=15, seed=seed)) for seed in (3, 4)]
        checkpointed = wait_checkpoints(server, [run["id"] for run in running], epoch=3)
        before = {
            run_id: get_run(client, run_id) for run_id in [r["id"] for r in (*running, *queued)]
        }
        assert [before[run["id"]]["status"] for run in running] == ["running", "running"], before
        assert [before[run["id"]]["status"] for run in queued] == ["queued", "queued"], (
            "with 2 workers busy the next runs should wait",
            before,
        )
        accepted = all_runs(client)

    server.kill9()
    integrity_check(server.db_path)
    server.start()

    with server.client() as client:
        for run in running:
            current = get_run(client, run["id"])
            assert current["status"] in ("queued", "running"), f"after kill -9: {current}"
        after = all_runs(client)
        assert set(after) == set(accepted), f"lost runs: {set(accepted) - set(after)}"
        assert get_run(client, finished["id"]) == finished_run
        assert weights_json(client, finished["id"]) == finished_json
        assert npz_arrays(weights_npz(client, finished["id"])) == finished_npz

        finals, lowest = follow(client, [run["id"] for run in (*running, *queued)])
        bad = {
            run_id: (run["status"], run["stop_reason"], run["error"])
            for run_id, run in finals.items()
            if run["status"] != "succeeded"
        }
        assert not bad, bad
        for run in running:
            final = finals[run["id"]]
            assert final["stop_reason"] == "completed", final
            assert final["progress"]["epoch"] == LONG_EPOCHS, final
            assert_resumed(run["id"], checkpointed[run["id"]], lowest[run["id"]])
            assert_contiguous_metrics(client, final)
            assert_same_as_fresh_run(client, final)

    server.stop()
    integrity_check(server.db_path)


def test_sigterm_stops_within_10_s_and_the_runs_continue_after_restart(make_server) -> None:
    server: Server = make_server("sigterm", **DURABLE_ENV).start()
    with server.client() as client:
        running = [
            submit(client, long_spec(LONG_EPOCHS, seed=seed, name=f"sigterm {seed}"))
            for seed in (5, 6)
        ]
        for run in running:
            wait_epoch(client, run["id"], 3, timeout=30)
        # a browser watching the run keeps an event stream open across the shutdown
        connected = threading.Event()
        watcher = threading.Thread(
            target=watch_events, args=(server, running[0]["id"], connected), daemon=True
        )
        watcher.start()
        assert connected.wait(timeout=10), "the event stream never answered"
        at_stop = {run["id"]: get_run(client, run["id"])["progress"]["epoch"] for run in running}

    pgid = server.pid
    elapsed = server.stop(signal.SIGTERM, timeout=10)
    print(f"SIGTERM -> exit in {elapsed:.2f}s")
    assert elapsed < 10
    stragglers = server.wait_group_gone(timeout=5)
    assert not stragglers, (
        f"processes of the stopped server still alive 5 s after it exited: "
        f"{[(pid, cmdline(pid)) for pid in stragglers]} (group {pgid})"
    )
    integrity_check(server.db_path)

    server.start()
    with server.client() as client:
        for run in running:
            current = get_run(client, run["id"])
            assert current["status"] in ("queued", "running", "succeeded"), (
                f"after SIGTERM: {current}"
            )
        finals, lowest = follow(client, [run["id"] for run in running])
        for run in running:
            final = finals[run["id"]]
            assert final["status"] == "succeeded" and final["stop_reason"] == "completed", final
            assert_resumed(run["id"], at_stop[run["id"]], lowest[run["id"]])
            assert_contiguous_metrics(client, final)
            assert_same_as_fresh_run(client, final)
    server.stop()


def test_a_killed_worker_is_replaced_and_the_run_still_succeeds(make_server) -> None:
    server: Server = make_server(
        "worker", ANNLAB_WORKERS="1", ANNLAB_CHECKPOINT_SECONDS="0.2"
    ).start()
    with server.client() as client:
        run = submit(client, long_spec(LONG_EPOCHS, seed=7, name="worker death"))
        wait_epoch(client, run["id"], 3, timeout=30)
        at_kill = wait_checkpoints(server, [run["id"]], epoch=3)[run["id"]]
        workers = worker_pids(server.pid)
        assert workers, (
            f"no worker process found under the server {server.pid}: "
            f"{[(pid, cmdline(pid)) for pid in descendants(server.pid)]}"
        )
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

        replacements: set[int] = set()
        lowest = at_kill
        final: dict[str, Any] = {}

        def finished() -> bool:
            nonlocal lowest
            replacements.update(set(worker_pids(server.pid)) - set(workers))
            final.update(get_run(client, run["id"]))
            lowest = min(lowest, final["progress"]["epoch"])
            return final["status"] in TERMINAL

        wait_for(finished, timeout=60, message="the run never finished", describe=lambda: final)
        print(f"killed workers {workers}, replacements seen {sorted(replacements)}")
        assert final["status"] == "succeeded", f"after its worker was killed: {final}"
        assert server.running, "the server died with its worker"
        assert replacements, "no replacement worker process was started"
        assert_resumed(run["id"], at_kill, lowest)
        assert_contiguous_metrics(client, final)
        assert_same_as_fresh_run(client, final)
        assert client.get("/readyz").status_code == 200
    server.stop()
