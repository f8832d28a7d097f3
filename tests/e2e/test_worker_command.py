"""`annlab worker`: the process pool outside the server, on the server's database.

A server with ``ANNLAB_EXECUTOR=none`` trains nothing itself; an `annlab worker`
process started beside it claims its runs. SIGTERM on the worker pauses the run it
trains (an exact checkpoint) and puts it back in the queue; another worker resumes it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.waiting import wait_for

from .server import (
    ANNLAB,
    Server,
    get_run,
    group_members,
    iris_spec,
    long_spec,
    submit,
    wait_epoch,
    wait_status,
)

pytestmark = pytest.mark.slow


class WorkerProcess:
    """One `annlab worker` process (its own process group) on a server's data dir."""

    def __init__(self, server: Server, log: Path, concurrency: int = 1) -> None:
        environment = {
            **os.environ,
            "ANNLAB_DATA_DIR": str(server.data_dir),
            "ANNLAB_CHECKPOINT_SECONDS": "0.2",
            "PYTHONUNBUFFERED": "1",
        }
        environment.pop("ANNLAB_DATABASE_URL", None)
        self.log = log
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                [str(ANNLAB), "worker", "--concurrency", str(concurrency)],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,
            )

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM to the worker command alone (not its group); its exit code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"annlab worker did not exit within {timeout}s of SIGTERM\n{self.log.read_text()}"
            ) from None

    def cleanup(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[Server], WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(server: Server) -> WorkerProcess:
        worker = WorkerProcess(server, tmp_path / f"worker-{len(started) + 1}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.cleanup()


def test_a_server_without_executor_and_a_worker_process_train_runs(
    make_server, start_worker
) -> None:
    server: Server = make_server("queue-only", ANNLAB_EXECUTOR="none").start()
    with server.client() as client:
        quick = submit(client, iris_spec(epochs=10))
        assert get_run(client, quick["id"])["status"] == "queued"
        first = start_worker(server)
        assert wait_status(client, quick["id"], timeout=60)["status"] == "succeeded"

        long = submit(client, long_spec(100_000, name="worker pause"))
        wait_epoch(client, long["id"], 3, timeout=60)
        assert first.terminate() == 0, first.log.read_text()
        assert (
            wait_for(
                lambda: not group_members(first.process.pid),
                timeout=10,
                message="the worker's processes outlived it",
            )
            is not None
        )
        paused = get_run(client, long["id"])
        assert paused["status"] == "queued", paused
        assert paused["stop_reason"] is None and paused["error"] is None, paused
        assert paused["progress"]["epoch"] >= 3, "the pause kept the progress (its checkpoint)"
        assert "paused for shutdown" in first.log.read_text()

        start_worker(server)
        resumed = wait_epoch(client, long["id"], paused["progress"]["epoch"] + 1, timeout=60)
        assert resumed["status"] == "running"
        assert client.post(f"/api/v1/runs/{long['id']}/cancel").status_code == 202
        assert wait_status(client, long["id"], timeout=30)["status"] == "cancelled"
