"""Throughput of ANNLAB_EXECUTOR=celery against the local pool, on this machine.

    .venv/bin/python -m bench.cluster [--runs 60] [--workers 1 2]

For each worker count: 60 short runs submitted at once to (a) `annlab serve` with
the local pool of that many processes and (b) `annlab serve` with
ANNLAB_EXECUTOR=celery and that many `annlab worker` processes (concurrency 1)
on PostgreSQL and Redis; runs per minute from the first submit to the last
finish, and the median dispatch → running delay (``started_at - created_at``).
Then one run cut in slices of 0.2 s on each path: the slice handover overhead is
its extra wall time per slice. Needs the PostgreSQL and Redis of
tests/conftest.py; uses port 19250+ and its own schema and queue name.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import create_engine, text

ANNLAB = Path(sys.executable).with_name("annlab")
POSTGRES = os.environ.get(
    "ANNLAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS = os.environ.get("ANNLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/6")
PORT = 19250


def spec(seed: int, epochs: int = 2) -> dict[str, Any]:
    """A short iris run (batch size 1, 120 steps per epoch)."""
    return {
        "name": f"bench {seed}",
        "dataset": "iris",
        "model": {
            "layers": [{"units": 16, "activation": "tanh"}, {"units": 3, "activation": "softmax"}]
        },
        "optimizer": {"type": "sgd", "learning_rate": 0.01, "momentum": 0.9},
        "training": {"epochs": epochs, "batch_size": 1, "seed": seed, "validation_split": 0.2},
    }


@contextlib.contextmanager
def schema() -> Iterator[str]:
    name = f"annlab_bench_{uuid.uuid4().hex[:8]}"
    plain = POSTGRES.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(plain, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(
            [str(ANNLAB), *args],
            env={**os.environ, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: {what}")
        time.sleep(0.05)


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def measure(
    env: dict[str, str], n_workers: int, runs: int, root: Path, label: str
) -> dict[str, float]:
    """Start the server (and Celery workers), train ``runs`` runs; the figures."""
    global PORT
    PORT += 1
    url = f"http://127.0.0.1:{PORT}"
    procs = [spawn(["serve", "--port", str(PORT)], env, root / f"{label}-serve.log")]
    try:
        if env["ANNLAB_EXECUTOR"] == "celery":
            for index in range(n_workers):
                procs.append(spawn(["worker", "-c", "1"], env, root / f"{label}-w{index}.log"))
            for index, proc in enumerate(procs[1:]):
                log = root / f"{label}-w{index}.log"

                def up(log: Path = log, proc: subprocess.Popen[bytes] = proc) -> bool:
                    if proc.poll() is not None:
                        raise SystemExit(f"a worker exited; see {log}")
                    return " ready." in log.read_text(errors="replace")

                wait(up, 60, "worker")
        wait(lambda: ready(url), 60, "server")
        with httpx.Client(base_url=url, timeout=30) as client:
            started = time.monotonic()
            ids = [
                client.post("/api/v1/runs", json=spec(seed)).json()["id"] for seed in range(runs)
            ]

            def done() -> bool:
                total = 0
                for status in ("succeeded", "failed"):
                    page = client.get("/api/v1/runs", params={"status": status, "limit": 1})
                    total += int(page.json()["total"])
                return total >= runs

            wait(done, 600, "runs")
            elapsed = time.monotonic() - started
            handover, idle_id = sliced_run(client)
        engine = create_engine(env["ANNLAB_DATABASE_URL"])
        with engine.connect() as connection:
            delays = [
                (row.started_at - row.created_at).total_seconds()
                for row in connection.execute(
                    text("SELECT created_at, started_at FROM runs WHERE id = ANY(:ids)"),
                    {"ids": ids},
                )
            ]
            idle = connection.execute(
                text("SELECT created_at, started_at FROM runs WHERE id = :id"), {"id": idle_id}
            ).one()
        engine.dispose()
        return {
            "idle_dispatch_to_running_s": (idle.started_at - idle.created_at).total_seconds(),
            "runs_per_minute": runs / elapsed * 60,
            "dispatch_to_running_median_s": statistics.median(delays),
            "sliced_run_seconds": handover,
        }
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def sliced_run(client: httpx.Client) -> tuple[float, str]:
    """Wall time of one 30-epoch run on the idle workers, and its id."""
    started = time.monotonic()
    run_id = client.post("/api/v1/runs", json=spec(999, epochs=30)).json()["id"]
    wait(
        lambda: client.get(f"/api/v1/runs/{run_id}").json()["status"] == "succeeded",
        300,
        "the sliced run",
    )
    return time.monotonic() - started, run_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--slice", type=float, default=0.2, help="ANNLAB_SLICE_SECONDS")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="annlab-bench-cluster-"))
    rows = []
    for n in args.workers:
        for executor in ("local", "celery"):
            with schema() as database_url:
                env = {
                    "ANNLAB_EXECUTOR": executor,
                    "ANNLAB_DATABASE_URL": database_url,
                    "ANNLAB_BROKER_URL": REDIS,
                    "ANNLAB_CELERY_QUEUE": f"annlab-bench-{uuid.uuid4().hex[:8]}",
                    "ANNLAB_WORKERS": str(n),
                    "ANNLAB_SLICE_SECONDS": str(args.slice),
                    "ANNLAB_WORKER_NICE": "0",
                    "ANNLAB_AUTH": "off",
                    "ANNLAB_DATA_DIR": str(root / "data"),
                }
                figures = measure(env, n, args.runs, root, f"{executor}-{n}")
            rows.append((executor, n, figures))
            print(executor, n, {k: round(v, 3) for k, v in figures.items()}, flush=True)
    print(
        "\n| executor | workers | runs/min | dispatch→running, 60 queued (median) | "
        f"dispatch→running, idle | 30-epoch run, slices of {args.slice:g} s |"
    )
    print("|---|---|---|---|---|---|")
    for executor, n, f in rows:
        print(
            f"| {executor} | {n} | {f['runs_per_minute']:.0f} | "
            f"{f['dispatch_to_running_median_s'] * 1000:.0f} ms | "
            f"{f['idle_dispatch_to_running_s'] * 1000:.0f} ms | {f['sliced_run_seconds']:.2f} s |"
        )
    print(f"\nlogs: {root}")


if __name__ == "__main__":
    main()
