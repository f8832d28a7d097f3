"""Ctrl-C during `annlab submit --follow`, in a real process against a real server:
it detaches (exit 130, the run goes on, the message says how to re-attach) or,
with --cancel-on-interrupt, cancels the run (exit 1, the run ends cancelled)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import ANNLAB, get_run, long_spec, wait_status

pytestmark = pytest.mark.slow


class Follower:
    """`annlab submit SPEC --follow` in its own process, its stderr read line by line."""

    def __init__(self, server: Any, spec: Path, *extra: str) -> None:
        self.lines: list[str] = []
        self.ended = False  # stderr closed: nothing more will come
        self.changed = threading.Condition()
        self.process = subprocess.Popen(
            [str(ANNLAB), "submit", str(spec), "--follow", *extra],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "ANNLAB_URL": server.base_url, "PYTHONUNBUFFERED": "1"},
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()
        with self.changed:
            self.ended = True
            self.changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for line in self.lines:
                    if found := re.search(pattern, line):
                        return found
                left = deadline - time.monotonic()
                if left <= 0 or self.ended:
                    raise AssertionError(
                        f"no {pattern!r} on stderr within {timeout}s: {self.lines}"
                    )
                self.changed.wait(left)

    def interrupt(self, timeout: float = 20.0) -> tuple[int, str, str]:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=timeout)  # (not communicate(): it would read stderr too)
        assert self.process.stdout is not None
        stdout = self.process.stdout.read()  # a few lines: they fit in the pipe
        self.process.stdout.close()
        self.reader.join(timeout)  # the last lines of stderr, read after the exit
        return self.process.returncode, stdout, "".join(self.lines)


@pytest.fixture
def long_run_file(tmp_path: Path) -> Path:
    path = tmp_path / "long.json"
    path.write_text(json.dumps(long_spec(epochs=100_000, name="cli ctrl-c")))
    return path


def test_ctrl_c_detaches_and_says_how_to_reattach(server: Any, long_run_file: Path) -> None:
    follower = Follower(server, long_run_file)
    run_id = follower.wait_for(r"submitted run (\S+)")[1]
    follower.wait_for(r"status: running")
    code, _, stderr = follower.interrupt()
    assert code == 130, stderr
    assert f"detached from run {run_id}: it goes on on the server." in stderr
    assert f"re-attach with: annlab follow {run_id}" in stderr
    with server.client() as http:
        assert get_run(http, run_id)["status"] == "running"
        http.post(f"/api/v1/runs/{run_id}/cancel")
        wait_status(http, run_id)


def test_ctrl_c_with_cancel_on_interrupt_cancels_the_run(server: Any, long_run_file: Path) -> None:
    follower = Follower(server, long_run_file, "--cancel-on-interrupt")
    run_id = follower.wait_for(r"submitted run (\S+)")[1]
    follower.wait_for(r"status: running")
    code, stdout, stderr = follower.interrupt()
    assert code == 1, stderr
    assert f"interrupted: cancelling run {run_id}" in stderr
    assert f"run {run_id} cancelled (cancelled)" in stdout
    with server.client() as http:
        assert get_run(http, run_id)["status"] == "cancelled"
