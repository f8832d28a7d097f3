"""Serving latency and throughput of the real server, over keep-alive HTTP on loopback.

    python -m bench.serve                  # 1, 8, 32 clients; 5 s per case with wrk
    python -m bench.serve --quick          # 2 s per case, 1 and 8 clients
    python -m bench.serve --url http://127.0.0.1:8000   # an already running server
    python -m bench.serve --mlflow --quick # /invocations vs MLflow's server (bench.serve_mlflow)
    python -m bench.serve --ports 19600-19699  # the server on a port of this range

Starts ``annlab serve`` on a free 127.0.0.1 port with its SQLite database in a
temporary directory and the default number of workers, trains an iris model
through ``POST /api/v1/runs``, then measures:

- submit-to-running on the idle server (POST a run, poll ``GET`` until it runs);
- ``GET /healthz`` (the floor), predict with 1 row, predict with 100 rows, for
  each number of concurrent keep-alive clients: p50, p99, requests/s;
- the same predict cases while two long training runs are submitted.

The load generator runs in other processes: ``wrk`` (Debian package) when it is
on the PATH, one wrk thread, each case bounded by a duration; otherwise Python
client processes (raw sockets, keep-alive), each case a fixed number of
requests. Every loop is bounded; only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bench.common import format_table, machine_lines, median, percentile

HOST = "127.0.0.1"

IRIS_SPEC = {
    "name": "bench iris",
    "dataset": "iris",
    "model": {
        "layers": [{"units": 16, "activation": "relu"}, {"units": 3, "activation": "softmax"}]
    },
    "optimizer": {"type": "adam", "learning_rate": 0.01},
    "training": {"epochs": 100, "batch_size": 16, "seed": 0},
}

#: A run that keeps a worker busy for minutes (cancelled by the benchmark).
LONG_SPEC = {
    "name": "bench long",
    "dataset": "spiral",
    "model": {
        "layers": [
            {"units": 256, "activation": "relu"},
            {"units": 256, "activation": "relu"},
            {"units": 3, "activation": "softmax"},
        ]
    },
    "optimizer": {"type": "adam", "learning_rate": 0.001},
    "training": {"epochs": 100_000, "batch_size": 32, "seed": 0},
}

ONE_ROW = [[5.1, 3.5, 1.4, 0.2]]


def hundred_rows() -> list[list[float]]:
    rows = []
    for i in range(100):
        k = i % 3
        rows.append(
            [
                round(5.0 + 0.9 * k + 0.01 * i, 2),
                round(3.4 - 0.3 * k, 2),
                round(1.5 + 2.2 * k, 2),
                round(0.2 + 0.9 * k, 2),
            ]
        )
    return rows


# -------------------------------------------------------------------------- server


def free_port(ports: range | None = None) -> int:
    """A free 127.0.0.1 port: the first free one of ``ports``, else one the OS picks."""
    for port in ports or [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError(f"no free port in {ports}")


def port_range(text: str | None) -> range | None:
    """``"19600-19699"`` → that range (inclusive); None: ports the OS picks."""
    if not text:
        return None
    low, _, high = text.partition("-")
    return range(int(low), int(high or low) + 1)


def serve_command(port: int) -> list[str]:
    exe = shutil.which("annlab", path=os.path.dirname(sys.executable)) or shutil.which("annlab")
    base = [exe] if exe else [sys.executable, "-c", "from app.cli import main; main()"]
    return [*base, "serve", "--host", HOST, "--port", str(port)]


@contextlib.contextmanager
def background_server(
    command: list[str], env: dict[str, str] | None, ready_url: str, log_path: str, timeout: float
) -> Iterator[int]:
    """A server process (its own session, output in ``log_path``) until ``ready_url``
    answers 200 within ``timeout`` s; yields its pid; stops it (SIGINT, then kill)."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}; see {log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready after {timeout:.0f} s; see {log_path}")
            time.sleep(0.1)
        yield proc.pid
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


@contextlib.contextmanager
def running_server(
    data_dir: str,
    log_path: str,
    extra_env: dict[str, str] | None = None,
    ports: range | None = None,
    port: int | None = None,
) -> Iterator[tuple[str, int]]:
    """``annlab serve`` on ``port``, else a free one (of ``ports``); yields the base URL
    and its pid."""
    port = port or free_port(ports)
    os.makedirs(data_dir, exist_ok=True)
    env = dict(os.environ)
    env.update({"ANNLAB_DATA_DIR": data_dir, **(extra_env or {})})
    env.pop("ANNLAB_DATABASE_URL", None)
    env.pop("ANNLAB_WORKERS", None)  # the default number of workers
    url = f"http://{HOST}:{port}"
    with background_server(serve_command(port), env, f"{url}/readyz", log_path, 60) as pid:
        yield url, pid


# ------------------------------------------------------------------------ API steps


def submit(client: httpx.Client, spec: dict) -> dict:
    r = client.post("/api/v1/runs", json=spec)
    if r.status_code != 202:
        raise RuntimeError(f"POST /api/v1/runs → {r.status_code}: {r.text[:300]}")
    return r.json()


def wait_status(
    client: httpx.Client, run_id: str, statuses: set[str], timeout: float = 120.0
) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = client.get(f"/api/v1/runs/{run_id}").json()
        if run["status"] in statuses:
            return run
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} still {run['status']} after {timeout} s")
        time.sleep(0.005)


def cancel(client: httpx.Client, run_id: str) -> None:
    client.post(f"/api/v1/runs/{run_id}/cancel")
    with contextlib.suppress(RuntimeError):
        wait_status(client, run_id, {"cancelled", "succeeded", "failed"}, timeout=30)


def submit_to_running(client: httpx.Client, samples: int) -> list[dict]:
    """POST a long run on the idle server, poll GET (no sleep) until it is running."""
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        run = submit(client, LONG_SPEC)
        t_posted = time.perf_counter()
        deadline = t0 + 30
        while True:
            current = client.get(f"/api/v1/runs/{run['id']}").json()
            if current["status"] != "queued":
                break
            if time.perf_counter() > deadline:
                raise RuntimeError("run not started within 30 s")
        t_running = time.perf_counter()
        out.append(
            {
                "post_ms": (t_posted - t0) * 1e3,
                "to_running_ms": (t_running - t0) * 1e3,
                "status": current["status"],
            }
        )
        cancel(client, run["id"])
        time.sleep(0.2)
    return out


# ---------------------------------------------------------------------- load: wrk

WRK_SCRIPT = """
wrk.method = "{method}"
wrk.headers["Content-Type"] = "application/json"
{body}
done = function(summary, latency, requests)
  io.write(string.format('BENCH {{"requests": %d, "duration_us": %d, "p50_us": %.1f, '
    .. '"p99_us": %.1f, "non2xx": %d, "errors": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout))
end
"""


@dataclass
class LoadResult:
    case: str
    clients: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failures: int
    tool: str

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else float("nan")


def run_wrk(
    url: str, path: str, body: dict | None, clients: int, seconds: float, workdir: str
) -> LoadResult:
    script = os.path.join(workdir, f"wrk-{abs(hash((path, clients)))}.lua")
    lua_body = f"wrk.body = {json.dumps(json.dumps(body))}" if body is not None else ""
    with open(script, "w", encoding="utf-8") as f:
        f.write(WRK_SCRIPT.format(method="POST" if body is not None else "GET", body=lua_body))
    cmd = [
        "wrk",
        "-t1",
        f"-c{clients}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        script,
        url + path,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("BENCH "))
    data = json.loads(line[len("BENCH ") :])
    return LoadResult(
        case="",
        clients=clients,
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1e3,
        p99_ms=data["p99_us"] / 1e3,
        failures=data["non2xx"] + data["errors"],
        tool="wrk",
    )


# ----------------------------------------------------- load: Python client processes


def _request_bytes(host: str, port: int, path: str, body: dict | None) -> bytes:
    if body is None:
        return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    payload = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = None
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _client_loop(
    host: str, port: int, request: bytes, count: int, start_at: float
) -> tuple[list[float], int]:
    reader, writer = await asyncio.open_connection(host, port)
    latencies: list[float] = []
    failures = 0
    try:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        for _ in range(count):
            t = time.perf_counter()
            writer.write(request)
            status = await _read_response(reader)
            latencies.append(time.perf_counter() - t)
            if status != 200:
                failures += 1
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return latencies, failures


def _client_process(
    host: str, port: int, request: bytes, counts: list[int], start_at: float, queue
) -> None:
    async def main():
        t0 = time.perf_counter()
        parts = await asyncio.gather(
            *(_client_loop(host, port, request, c, start_at) for c in counts)
        )
        return parts, time.perf_counter() - t0

    parts, _ = asyncio.run(main())
    lat = [x for p, _ in parts for x in p]
    queue.put((lat, sum(f for _, f in parts), time.time()))


def run_python_clients(
    url: str,
    path: str,
    body: dict | None,
    clients: int,
    requests: int,
    processes: int | None = None,
) -> LoadResult:
    """``clients`` keep-alive connections spread over client processes, ``requests`` in all."""
    parsed = httpx.URL(url)
    host, port = parsed.host, int(parsed.port or 80)
    request = _request_bytes(host, port, path, body)
    processes = max(1, min(clients, processes or min(4, os.cpu_count() or 1)))
    per_client = [
        requests // clients + (1 if i < requests % clients else 0) for i in range(clients)
    ]
    groups = [per_client[i::processes] for i in range(processes)]
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    start_at = time.time() + 0.5
    procs = [
        ctx.Process(target=_client_process, args=(host, port, request, g, start_at, queue))
        for g in groups
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    latencies = sorted(x for r in results for x in r[0])
    end = max(r[2] for r in results)
    return LoadResult(
        case="",
        clients=clients,
        requests=len(latencies),
        seconds=end - start_at,
        p50_ms=percentile(latencies, 50) * 1e3,
        p99_ms=percentile(latencies, 99) * 1e3,
        failures=sum(r[1] for r in results),
        tool=f"python x{processes}",
    )


# --------------------------------------------------------------------------- driver


def load(
    url: str,
    case: str,
    path: str,
    body: dict | None,
    clients: int,
    *,
    use_wrk: bool,
    seconds: float,
    requests: int,
    workdir: str,
) -> LoadResult:
    if use_wrk:
        result = run_wrk(url, path, body, clients, seconds, workdir)
    else:
        result = run_python_clients(url, path, body, clients, requests)
    result.case = case
    return result


@dataclass(frozen=True)
class Case:
    """One load case: a name for the tables, and the request to repeat."""

    name: str
    url: str
    path: str
    body: dict | None = None


def sweep(
    cases: Sequence[Case], clients: Sequence[int], *, workdir: str, **kw: Any
) -> list[LoadResult]:
    """Every case at each number of clients, in the order given: cases of several
    servers side by side are measured one right after the other, so that a noisy
    neighbour on a shared machine weighs on both alike. ``kw``: ``load``'s."""
    results = []
    for n in clients:
        for case in cases:
            results.append(
                load(case.url, case.name, case.path, case.body, n, workdir=workdir, **kw)
            )
            time.sleep(0.2)
    return results


def load_table(results: Sequence[LoadResult]) -> str:
    return format_table(
        ["case", "clients", "requests", "p50 ms", "p99 ms", "req/s", "failed", "client"],
        [
            [r.case, r.clients, r.requests, r.p50_ms, r.p99_ms, r.rps, r.failures, r.tool]
            for r in results
        ],
    )


def serve_verdicts(
    idle: Sequence[LoadResult], busy: Sequence[LoadResult], to_running_ms: float | None
) -> list[str]:
    by = {(r.case, r.clients): r for r in idle}
    lines = []
    for (case, n), r in sorted(by.items(), key=lambda kv: kv[0][1]):
        if case != "predict 1 row" or ("healthz", n) not in by:
            continue
        h = by[("healthz", n)]
        lat = r.p50_ms / h.p50_ms
        thr = r.rps / h.rps
        lines.append(
            f"{n:>2} clients: predict-1 p50 = {lat:.2f}x healthz p50 (≤ 1.3) "
            f"{'MET' if lat <= 1.3 else 'NOT MET'}; req/s = {thr:.2f}x healthz (≥ 0.7) "
            f"{'MET' if thr >= 0.7 else 'NOT MET'}"
        )
    for r in busy:
        base = by.get((r.case.replace(" (training)", ""), r.clients))
        if base is None:
            continue
        ratio = r.p99_ms / base.p99_ms
        lines.append(
            f"{r.clients:>2} clients: {r.case} p99 = {ratio:.2f}x idle p99 (≤ 2) "
            f"{'MET' if ratio <= 2 else 'NOT MET'}"
        )
    if to_running_ms is not None:
        lines.append(
            f"submit-to-running median {to_running_ms:.1f} ms (≤ 200) "
            f"{'MET' if to_running_ms <= 200 else 'NOT MET'}"
        )
    return lines


def bench(url: str, args, workdir: str) -> int:
    use_wrk = shutil.which("wrk") is not None and not args.python_clients
    clients = [int(c) for c in args.clients.split(",")]
    print(f"server {url}; load generator: {'wrk (1 thread)' if use_wrk else 'python processes'}")
    with httpx.Client(base_url=url, timeout=30) as client:
        run = submit(client, IRIS_SPEC)
        t = time.perf_counter()
        run = wait_status(client, run["id"], {"succeeded", "failed", "cancelled"}, timeout=300)
        if run["status"] != "succeeded":
            print(f"iris run ended {run['status']}: {run.get('error')}", file=sys.stderr)
            return 1
        print(
            f"iris model {run['id']} trained in {time.perf_counter() - t:.2f} s, "
            f"val_accuracy {run['metrics'].get('val_accuracy')}"
        )
        predict = f"/api/v1/runs/{run['id']}/predict"
        for rows in (ONE_ROW, hundred_rows()):
            r = client.post(predict, json={"inputs": rows})
            if r.status_code != 200:
                print(f"predict → {r.status_code}: {r.text[:300]}", file=sys.stderr)
                return 1

        samples = submit_to_running(client, args.submit_samples)
        to_running = median([s["to_running_ms"] for s in samples])
        print(
            "\n## submit-to-running (idle server, POST then GET-poll until not queued): "
            + ", ".join(f"{s['to_running_ms']:.1f}" for s in samples)
            + f" ms; median {to_running:.1f} ms (POST alone median "
            f"{median([s['post_ms'] for s in samples]):.1f} ms)"
        )

        cases = [
            Case("healthz", url, "/healthz"),
            Case("predict 1 row", url, predict, {"inputs": ONE_ROW}),
            Case("predict 100 rows", url, predict, {"inputs": hundred_rows()}),
        ]
        kw = {"use_wrk": use_wrk, "seconds": args.seconds, "requests": args.requests}
        idle = sweep(cases, clients, workdir=workdir, **kw)
        print("\n## idle server")
        print(load_table(idle))

        long_runs = [submit(client, LONG_SPEC) for _ in range(2)]
        wait_status(client, long_runs[0]["id"], {"running"}, timeout=60)
        time.sleep(0.5)
        states = [client.get(f"/api/v1/runs/{r['id']}").json()["status"] for r in long_runs]
        training = [Case(c.name + " (training)", c.url, c.path, c.body) for c in cases[1:]]
        try:
            busy = sweep(training, clients, workdir=workdir, **kw)
            states_after = [
                client.get(f"/api/v1/runs/{r['id']}").json()["status"] for r in long_runs
            ]
        finally:
            for r in long_runs:
                cancel(client, r["id"])
        print(
            f"\n## while training (2 long runs submitted; statuses {states} → {states_after}; "
            "default workers)"
        )
        print(load_table(busy))
        print("\n## targets")
        for line in serve_verdicts(idle, busy, to_running):
            print(line)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--mlflow" in argv:  # /invocations against MLflow's own scoring server
        from bench.serve_mlflow import main as compare_with_mlflow

        return compare_with_mlflow([arg for arg in argv if arg != "--mlflow"])
    parser = argparse.ArgumentParser(
        prog="python -m bench.serve", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--clients", default="1,8,32", help="comma list of concurrent clients")
    parser.add_argument("--seconds", type=float, default=5.0, help="per case, with wrk")
    parser.add_argument("--requests", type=int, default=4000, help="per case, with Python clients")
    parser.add_argument("--submit-samples", type=int, default=5)
    parser.add_argument("--python-clients", action="store_true", help="do not use wrk")
    parser.add_argument("--url", help="use this running server (127.0.0.1 only)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir and server log")
    parser.add_argument("--ports", help="LOW-HIGH: start the server on a free port of these")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.requests, args.submit_samples = 2.0, 1000, 3
        if args.clients == "1,8,32":
            args.clients = "1,8"
    print("# bench.serve")
    for line in machine_lines():
        print(line)
    if args.url:
        host = httpx.URL(args.url).host
        if host not in ("127.0.0.1", "localhost", "::1"):
            parser.error("--url must be a loopback address")
        with tempfile.TemporaryDirectory(prefix="annlab-bench-") as workdir:
            return bench(args.url.rstrip("/"), args, workdir)
    workdir = tempfile.mkdtemp(prefix="annlab-bench-")
    log_path = os.path.join(workdir, "server.log")
    try:
        data_dir = os.path.join(workdir, "data")
        with running_server(data_dir, log_path, ports=port_range(args.ports)) as (url, pid):
            print(f"server pid {pid}, data in {workdir}")
            return bench(url, args, workdir)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
