"""A real `annlab serve` process for end-to-end tests, and the HTTP helpers they share.

The server runs in its own session (``start_new_session=True``), so it and every
worker process it forks share one process group that a test can SIGKILL at once.
Its stdout and stderr go to one log file, attached to the report of a failing test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support import specs
from tests.support.waiting import TimedOut, wait_for

ANNLAB = Path(sys.executable).with_name("annlab")
API = "/api/v1"
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
READY_TIMEOUT = 45.0


# ------------------------------------------------------------------ processes


def free_port() -> int:
    """A free port; from ``ANNLAB_TEST_PORTS`` (``low-high``) when it is set, so that a
    shared machine can give each test session its own range."""
    given = os.environ.get("ANNLAB_TEST_PORTS")
    if given:
        low, _, high = given.partition("-")
        return free_port_in(int(low), int(high or low))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_in(low: int, high: int) -> int:
    """A port of [low, high] nobody listens on (for tests given a port range)."""
    for port in range(low, high + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port in {low}-{high}")


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, pgrp) of a live process, from /proc/<pid>/stat; None if gone or a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):  # zombie or dead: no longer running anything
        return None
    return int(fields[1]), int(fields[2])


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` (children, grandchildren, ...)."""
    parents: dict[int, int] = {}
    for pid in _all_pids():
        stat = _stat(pid)
        if stat is not None:
            parents[pid] = stat[0]
    found: list[int] = []
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group (the server and everything it started)."""
    members = []
    for pid in _all_pids():
        stat = _stat(pid)
        if stat is not None and stat[1] == pgid:
            members.append(pid)
    return members


_HELPER_MARKERS = ("resource_tracker", "forkserver", "semaphore_tracker")


def worker_pids(root: int) -> list[int]:
    """Descendants that can train: everything but multiprocessing's helper processes."""
    return [
        pid
        for pid in descendants(root)
        if not any(marker in cmdline(pid) for marker in _HELPER_MARKERS)
    ]


# --------------------------------------------------------------------- server


@dataclass
class Server:
    """One `annlab serve` process on a data directory; restartable on the same data."""

    name: str
    data_dir: Path
    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    starts: int = 0
    logs: list[Path] = field(default_factory=list)

    # -- life cycle

    def start(self, timeout: float = READY_TIMEOUT, port: int | None = None, **env: str) -> Server:
        assert self.process is None or self.process.poll() is not None, "already running"
        assert ANNLAB.exists(), f"{ANNLAB} is not installed (pip install -e '.[dev]')"
        self.env.update(env)
        self.port = port or free_port()
        self.starts += 1
        log = self.log_dir / f"{self.name}-{self.starts}.log"
        self.logs.append(log)
        environment = {
            **os.environ,
            "ANNLAB_DATA_DIR": str(self.data_dir),
            "ANNLAB_AUTH": "off",
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        if "ANNLAB_DATABASE_URL" not in self.env:  # always the SQLite file in data_dir
            environment.pop("ANNLAB_DATABASE_URL", None)
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                [str(ANNLAB), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=environment,
                cwd=self.data_dir.parent,
                start_new_session=True,
            )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        last = "no answer"

        def ready() -> bool:
            nonlocal last
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"annlab serve exited with {self.process.returncode} before /readyz answered 200\n"
                    f"{self.log_tail()}"
                )
            try:
                response = httpx.get(f"{self.base_url}/readyz", timeout=2.0)
            except httpx.HTTPError as exc:
                last = repr(exc)
                return False
            last = f"{response.status_code} {response.text[:200]}"
            return response.status_code == 200

        wait_for(
            ready,
            timeout=timeout,
            interval=0.1,
            message="/readyz not 200",
            describe=lambda: f"{last}\n{self.log_tail()}",
        )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> float:
        """Send ``sig`` to the server process only; wait for it; return the seconds it took."""
        assert self.process is not None
        started = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError(
                f"annlab serve did not exit within {timeout}s of signal {sig}\n{self.log_tail()}"
            ) from None
        return time.monotonic() - started

    def kill9(self, timeout: float = 10.0) -> None:
        """SIGKILL the whole process group (server and workers) and wait until it is gone."""
        assert self.process is not None
        pgid = self.process.pid  # a session leader's pgid is its pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.process.wait(timeout=timeout)
        wait_until(
            lambda: not group_members(pgid),
            timeout,
            f"process group {pgid} still alive after SIGKILL",
        )

    def wait_group_gone(self, timeout: float = 10.0) -> list[int]:
        """Wait until no process of the server's group is left; return the stragglers if any."""
        assert self.process is not None
        pgid = self.process.pid
        with contextlib.suppress(TimedOut):
            wait_for(lambda: not group_members(pgid), timeout=timeout, interval=0.05)
        return group_members(pgid)

    def cleanup(self) -> None:
        """Leave nothing behind: SIGKILL whatever is left of every group this object started."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)

    # -- access

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "annlab.db"

    def client(self, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout)

    def log_text(self) -> str:
        return "\n".join(
            f"----- {path.name} -----\n" + path.read_text(errors="replace")
            for path in self.logs
            if path.exists()
        )

    def log_tail(self, lines: int = 200) -> str:
        text = self.log_text().splitlines()
        return "\n".join(text[-lines:])


# ----------------------------------------------------------------------- waits


def wait_until(
    predicate: Callable[[], Any], timeout: float, message: str, interval: float = 0.05
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``message`` after ``timeout``."""
    return wait_for(predicate, timeout=timeout, message=message, interval=interval)


# ------------------------------------------------------------------------ runs


def submit(
    client: httpx.Client, spec: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = client.post(f"{API}/runs", json=spec, headers=headers)
    assert response.status_code == 202, f"POST /runs -> {response.status_code} {response.text}"
    return response.json()


def get_run(client: httpx.Client, run_id: str) -> dict[str, Any]:
    response = client.get(f"{API}/runs/{run_id}")
    assert response.status_code == 200, (
        f"GET /runs/{run_id} -> {response.status_code} {response.text}"
    )
    return response.json()


def wait_status(
    client: httpx.Client,
    run_id: str,
    statuses: set[str] | frozenset[str] = TERMINAL,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Poll the run until its status is one of ``statuses``; fail with the last Run seen."""
    run: dict[str, Any] = {}

    def reached() -> dict[str, Any] | None:
        run.update(get_run(client, run_id))
        return dict(run) if run["status"] in statuses else None

    return wait_for(
        reached,
        timeout=timeout,
        interval=0.05,
        message=f"run {run_id} not in {sorted(statuses)}",
        describe=lambda: json.dumps(run, indent=1)[:2000],
    )


def wait_epoch(
    client: httpx.Client, run_id: str, epoch: int, timeout: float = 30.0
) -> dict[str, Any]:
    """Poll until the run is running and has recorded at least ``epoch`` epochs."""

    def reached() -> dict[str, Any] | None:
        run = get_run(client, run_id)
        assert run["status"] in ("queued", "running"), f"run ended early: {run}"
        return run if run["status"] == "running" and run["progress"]["epoch"] >= epoch else None

    return wait_until(reached, timeout, f"run {run_id} did not reach epoch {epoch}")


def weights_json(client: httpx.Client, run_id: str) -> bytes:
    response = client.get(f"{API}/runs/{run_id}/weights")
    assert response.status_code == 200, (
        f"weights of {run_id} -> {response.status_code} {response.text}"
    )
    return response.content


def weights_npz(client: httpx.Client, run_id: str) -> bytes:
    response = client.get(f"{API}/runs/{run_id}/weights", params={"format": "npz"})
    assert response.status_code == 200, f"npz of {run_id} -> {response.status_code} {response.text}"
    return response.content


def npz_arrays(content: bytes) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
    """Each array of an .npz as (dtype, shape, raw bytes): equal means bit for bit."""
    import io

    import numpy as np

    with np.load(io.BytesIO(content), allow_pickle=False) as archive:
        return {
            key: (str(archive[key].dtype), archive[key].shape, archive[key].tobytes())
            for key in archive.files
        }


def sse_events(client: httpx.Client, path: str, timeout: float = 30.0) -> Iterator[tuple[str, str]]:
    """(event, data) pairs of a text/event-stream until the server closes it.

    Fails if the whole stream takes longer than ``timeout`` or goes silent for 10 s.
    """
    deadline = time.monotonic() + timeout
    with client.stream("GET", path, timeout=httpx.Timeout(10.0)) as response:
        assert response.status_code == 200, (
            f"GET {path} -> {response.status_code} {response.read()!r}"
        )
        content_type = response.headers.get("content-type", "")
        assert content_type.startswith("text/event-stream"), content_type
        event, data = "message", []
        for line in response.iter_lines():
            if time.monotonic() > deadline:
                raise AssertionError(f"event stream {path} still open after {timeout}s")
            if line == "":
                if data:
                    yield event, "\n".join(data)
                event, data = "message", []
            elif line.startswith(":"):
                continue  # comment / keep-alive ping
            else:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "event":
                    event = value
                elif name == "data":
                    data.append(value)
        if data:
            yield event, "\n".join(data)


# ----------------------------------------------------------------------- specs


def iris_spec(**training: Any) -> dict[str, Any]:
    """A small, quick iris classifier (well under a second of training)."""
    training = {"epochs": 30, "validation_split": 0.2, **training}
    spec = specs.iris_spec(name="e2e iris", **training)
    spec["model"]["init"] = "auto"
    return spec


def long_spec(epochs: int, seed: int = 0, name: str = "e2e long") -> dict[str, Any]:
    """An iris run whose length is set by ``epochs`` (pure SGD: 120 steps per epoch)."""
    return specs.long_spec(epochs, name=name, seed=seed, validation_split=0.2)


def tiny_spec(seed: int = 0) -> dict[str, Any]:
    """The smallest useful job: a few epochs on xor."""
    return {
        "dataset": "xor",
        "model": {
            "layers": [{"units": 4, "activation": "tanh"}, {"units": 2, "activation": "softmax"}]
        },
        "optimizer": {"type": "sgd", "learning_rate": 0.1},
        "training": {"epochs": 3, "batch_size": None, "seed": seed, "validation_split": 0.0},
    }
