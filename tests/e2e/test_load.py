"""Issue 16 against a real `annlab serve` (one worker, SQLite): nothing blocks the server.

Each test reproduces one finding of the adversarial probe with bounded loops (each
well under 60 s) and prints its figures (``pytest -s`` shows them):

1. 8 concurrent 5 MB CSV uploads → all 201, ``/healthz`` under 0.5 s throughout;
2. big bodies: the key is checked from the headers (401 before any body byte is
   sent), a predict body over the row limit is refused before it is parsed;
3. 500 event streams on a running run → no lock error in the log, ``GET /runs``
   under 1 s, every stream gets every epoch, the run's progress complete;
4. fair slices: another user's run waits at most about one slice behind a giant run;
5. cancel racing delete → never a 500.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.support.waiting import wait_for

from .server import API, Server, long_spec, submit, wait_epoch, wait_status
from .test_auth import create_key

pytestmark = pytest.mark.timeout(120)

ONE_WORKER = {"ANNLAB_WORKERS": "1", "ANNLAB_EXECUTOR": "process"}
LOCK_ERRORS = ("database is locked", "database table is locked")


def csv_of(n_bytes: int) -> bytes:
    """A classification CSV of about ``n_bytes`` (10 features)."""
    header = ",".join(f"f{j}" for j in range(10)) + ",label\n"
    row_values = ",".join(f"{j * 0.123456:.6f}" for j in range(10))
    rows = [f"{row_values},{'ab'[i % 2]}\n" for i in range(n_bytes // (len(row_values) + 3))]
    return (header + "".join(rows)).encode()


class Probe:
    """``GET path`` in a loop on its own thread; the slowest answer seen."""

    def __init__(self, server: Server, path: str = "/healthz", interval: float = 0.05) -> None:
        self.server, self.path, self.interval = server, path, interval
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.server.base_url, timeout=30.0) as http:
            while not self.done.is_set():
                started = time.monotonic()
                try:
                    status = http.get(self.path).status_code
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))
                    status = 0
                self.latencies.append(time.monotonic() - started)
                if status != 200:
                    self.failures.append(f"{self.path} -> {status}")
                self.done.wait(self.interval)

    def __enter__(self) -> Probe:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.thread.join(timeout=35)

    @property
    def worst(self) -> float:
        return max(self.latencies, default=0.0)

    def assert_responsive(self, bound: float = 0.5, stall: float = 3.0) -> None:
        """Every answer under ``bound`` but at most one in twenty, and none over ``stall``.

        A blocked event loop delays every probe sent while it is blocked; a machine
        shared with a full test suite may also stall one probe now and then (CI saw
        one of 35 at 1.7 s, the others under 0.1 s), which says nothing of the server.
        """
        slow = sorted(latency for latency in self.latencies if latency >= bound)
        assert len(slow) <= max(1, len(self.latencies) // 20), (slow, len(self.latencies))
        assert self.worst < stall, self.worst


def no_lock_errors(server: Server) -> None:
    log = server.log_text()
    assert not any(error in log for error in LOCK_ERRORS), server.log_tail(100)


def test_concurrent_uploads_all_succeed_and_healthz_stays_fast(
    make_server: Callable[..., Server],
) -> None:
    server = make_server("uploads", **ONE_WORKER).start()
    try:
        content = csv_of(5 * 1024 * 1024)

        def upload(index: int) -> tuple[int, float]:
            started = time.monotonic()
            with httpx.Client(base_url=server.base_url, timeout=60.0) as http:
                response = http.post(
                    f"{API}/datasets",
                    files={"file": (f"up{index}.csv", content, "text/csv")},
                    data={"target": "label", "task": "classification"},
                )
            return response.status_code, time.monotonic() - started

        with Probe(server) as probe, ThreadPoolExecutor(8) as pool:
            results = list(pool.map(upload, range(8)))
        statuses = [status for status, _ in results]
        print(
            f"\n8 x {len(content) / 1e6:.1f} MB uploads: statuses {statuses}, slowest "
            f"{max(s for _, s in results):.2f} s; /healthz worst {probe.worst * 1000:.0f} ms "
            f"over {len(probe.latencies)} probes"
        )
        assert statuses == [201] * 8
        assert not probe.failures, probe.failures[:5]
        probe.assert_responsive()
        no_lock_errors(server)
    finally:
        server.stop()


def test_big_bodies_are_refused_before_they_are_read(make_server: Callable[..., Server]) -> None:
    server = make_server("bodies", ANNLAB_AUTH="on", **ONE_WORKER).start()
    try:
        # Only the headers of a 50 MB upload, no key: the 401 comes without one body byte.
        for path in (f"{API}/datasets", f"{API}/runs", f"{API}/runs/x/predict"):
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(
                    f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n".encode()
                )
                answer = sock.recv(4096).decode(errors="replace")
            assert answer.startswith("HTTP/1.1 401"), (path, answer[:200])
        key = create_key(server, "alice")
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.base_url, timeout=60.0, headers=headers) as http:
            # A predict body over the row limit: refused before it is parsed.
            rows = b"[" + b",".join([b"[1.5,2.5,3.5,4.5]"] * 600_000) + b"]"
            body = b'{"inputs": ' + rows + b"}"
            with Probe(server) as probe:
                started = time.monotonic()
                response = http.post(
                    f"{API}/runs/nope/predict",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
                took = time.monotonic() - started
            print(
                f"\n{len(body) / 1e6:.0f} MB predict body: {response.status_code} in {took:.2f} s;"
                f" /healthz worst {probe.worst * 1000:.0f} ms"
            )
            assert response.status_code == 422 and "max_predict_rows" in response.text.lower()
            assert len(response.content) < 2000
            assert probe.worst < 0.5
            # A 20 MB non-JSON body: a short 4xx, not the body echoed back.
            junk = http.post(
                f"{API}/runs", content=b"x" * 20_000_000, headers={"Content-Type": "text/plain"}
            )
            assert junk.status_code in (400, 415, 422) and len(junk.content) < 5000
    finally:
        server.stop()


async def _follow(http: httpx.AsyncClient, path: str, ready: asyncio.Event) -> list[str]:
    """The event names a stream receives, to its end (the bytes are parsed at the end:
    500 streams in one test process must not make the client the bottleneck)."""
    chunks: list[bytes] = []
    async with http.stream("GET", path) as response:
        assert response.status_code == 200
        ready.set()
        async for chunk in response.aiter_raw():
            chunks.append(chunk)
    lines = b"".join(chunks).decode().splitlines()
    return [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]


def test_500_event_streams_do_not_break_writes(make_server: Callable[..., Server]) -> None:
    server = make_server("streams", **ONE_WORKER).start()
    try:
        http = server.client(timeout=30.0)
        blocker = submit(http, long_spec(epochs=100_000, name="blocker"))["id"]
        wait_epoch(http, blocker, 1)
        epochs = 150
        watched = submit(http, long_spec(epochs=epochs, name="watched"))["id"]
        streams = 500

        async def main() -> tuple[list[list[str]], Probe]:
            limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=0)
            timeout = httpx.Timeout(60.0)
            async with httpx.AsyncClient(
                base_url=server.base_url, limits=limits, timeout=timeout
            ) as client:
                readies = [asyncio.Event() for _ in range(streams)]
                path = f"{API}/runs/{watched}/events"
                tasks = [asyncio.create_task(_follow(client, path, ready)) for ready in readies]
                await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 45)
                # every stream is open on the queued run: let it run, timing GET /runs
                with Probe(server, f"{API}/runs", interval=0.1) as listing:
                    cancel = await client.post(f"{API}/runs/{blocker}/cancel")
                    assert cancel.status_code in (200, 202), cancel.text
                    received = list(await asyncio.gather(*tasks))
                return received, listing

        started = time.monotonic()
        with Probe(server, f"{API}/runs", interval=0.1) as connecting:
            received, listing = asyncio.run(asyncio.wait_for(main(), 100))
        list_times = listing.latencies
        run = wait_status(http, watched)
        print(
            f"\n{streams} streams on a {epochs}-epoch run: {time.monotonic() - started:.1f} s, "
            f"GET /runs worst {max(list_times) * 1000:.0f} ms over {len(list_times)} while they "
            f"follow the run (worst {connecting.worst * 1000:.0f} ms overall, the 500 connecting at once included); "
            f"run {run['status']} at epoch {run['progress']['epoch']}"
        )
        assert run["status"] == "succeeded" and run["progress"]["epoch"] == epochs
        metrics = http.get(f"{API}/runs/{watched}/metrics").json()
        assert metrics["epoch"] == list(range(1, epochs + 1))
        for names in received:
            assert names.count("progress") == epochs, names[:5]
            assert names[-1] == "status"
        assert not listing.failures, listing.failures[:5]
        assert max(list_times) < 1.0
        no_lock_errors(server)
        http.close()
    finally:
        server.stop()


def test_another_users_run_waits_at_most_a_slice(make_server: Callable[..., Server]) -> None:
    slice_seconds = 2.0
    server = make_server(
        "slices", ANNLAB_AUTH="on", ANNLAB_SLICE_SECONDS=str(slice_seconds), **ONE_WORKER
    )
    server.start()
    try:
        alice = {"Authorization": f"Bearer {create_key(server, 'alice')}"}
        bob = {"Authorization": f"Bearer {create_key(server, 'bob')}"}
        with httpx.Client(base_url=server.base_url, timeout=30.0) as http:
            giant = submit(http, long_spec(epochs=100_000, name="giant"), alice)["id"]

            def giant_running() -> Any:
                run = http.get(f"{API}/runs/{giant}", headers=alice).json()
                return run["status"] == "running" and run["progress"]["epoch"] >= 1

            wait_for(giant_running, timeout=45, message="the giant run never started")
            submitted = time.monotonic()
            small = submit(http, long_spec(epochs=5, name="small"), bob)["id"]

            def small_started() -> Any:
                run = http.get(f"{API}/runs/{small}", headers=bob).json()
                return run if run["status"] != "queued" else None

            wait_for(small_started, timeout=slice_seconds + 30, message="bob's run never ran")
            waited = time.monotonic() - submitted
            giant_now = http.get(f"{API}/runs/{giant}", headers=alice).json()
            print(f"\nbob waited {waited:.2f} s behind alice's giant run (slice {slice_seconds} s)")
            assert waited < slice_seconds + 10
            assert giant_now["status"] in ("queued", "running")  # paused, requeued
            done = wait_for(
                lambda: (
                    (r := http.get(f"{API}/runs/{small}", headers=bob).json())["status"]
                    in ("succeeded", "failed")
                    and r
                ),
                timeout=30,
                message="bob's run never finished",
            )
            assert done["status"] == "succeeded"
            wait_for(giant_running, timeout=30, message="the giant run never resumed")
            assert http.post(f"{API}/runs/{giant}/cancel", headers=alice).status_code in (200, 202)
        no_lock_errors(server)
    finally:
        server.stop()


def test_cancel_racing_delete_never_answers_500(make_server: Callable[..., Server]) -> None:
    server = make_server("race", **ONE_WORKER).start()
    try:
        with httpx.Client(base_url=server.base_url, timeout=30.0) as http:
            blocker = submit(http, long_spec(epochs=100_000, name="blocker"))["id"]
            wait_epoch(http, blocker, 1)
            codes: list[int] = []
            for index in range(15):
                run_id = (
                    blocker
                    if index == 0
                    else submit(http, long_spec(epochs=100_000, name=f"r{index}"))["id"]
                )
                with ThreadPoolExecutor(2) as pool:
                    cancel = pool.submit(http.post, f"{API}/runs/{run_id}/cancel")
                    delete = pool.submit(http.delete, f"{API}/runs/{run_id}")
                    codes += [cancel.result().status_code, delete.result().status_code]
            assert all(code < 500 for code in codes), codes
        assert "Traceback" not in server.log_text(), server.log_tail(80)
    finally:
        server.stop()
