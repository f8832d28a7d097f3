"""Many small runs: 300 iris runs of 100 epochs submitted at once, and the queue's fairness.

    python -m bench.small_runs                  # 300 runs, two users, port 19720
    python -m bench.small_runs --runs 60 --port 19721

``annlab serve`` (SQLite in a temp data dir, default settings, ``ANNLAB_AUTH=on``)
with two users created by the CLI (``annlab users create``). Alice submits half of
the runs, then Bob the other half, all before the first finishes: a FIFO queue
would make Bob wait for all of Alice's. Runs per minute from the first submit to
the last finish, against ``core.training.train`` on the same spec in a loop in
this process (the dataset and spec resolved per run, as a worker does), half of
those runs before the service's and half after (the mean of the two). Fairness:
how the finished runs alternate between the users while both have runs queued
(Bob's share of the runs finished before Alice's last one; the longest stretch
of one user's runs), and each user's median queue wait (started − created).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime

import httpx

from bench.common import LoadMonitor, format_table, machine_lines, median
from bench.serve import IRIS_SPEC, running_server, serve_command
from bench.service import TreeLoadMonitor

DEFAULT_PORT = 19720


def create_user(data_dir: str, name: str) -> str:
    """``annlab users create NAME --create``: the key is printed alone on stdout."""
    annlab = serve_command(0)[:-5]  # the annlab executable, without "serve --host h --port p"
    out = subprocess.run(
        [*annlab, "users", "create", name, "--create"],
        env={**os.environ, "ANNLAB_DATA_DIR": data_dir},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def engine_loop(runs: int) -> float:
    """Runs per minute of ``core.training.train`` alone on ``IRIS_SPEC`` (seeds 0..runs-1)."""
    from core.datasets import load_builtin
    from core.specs import RunSpec, check_against_dataset
    from core.training import train

    start = time.perf_counter()
    for seed in range(runs):
        body = {**IRIS_SPEC, "training": {**IRIS_SPEC["training"], "seed": seed}}
        data = load_builtin("iris")
        spec = check_against_dataset(RunSpec.model_validate(body), data.shape())
        train(spec, data, on_epoch=lambda m: None, should_stop=lambda: None)
    return runs / (time.perf_counter() - start) * 60


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def all_runs(client: httpx.Client, headers: dict[str, str]) -> list[dict]:
    out: list[dict] = []
    while True:
        page = client.get(
            "/api/v1/runs", params={"limit": 100, "offset": len(out)}, headers=headers
        ).json()
        out.extend(page["items"])
        if len(out) >= page["total"] or not page["items"]:
            return out


def through_service(url: str, keys: dict[str, str], runs: int) -> dict:
    headers = {name: {"Authorization": f"Bearer {key}"} for name, key in keys.items()}
    names = list(keys)
    per_user = runs // len(names)
    with httpx.Client(base_url=url, timeout=60) as client:
        start = time.perf_counter()
        for name in names:  # Alice's half first, then Bob's
            for seed in range(per_user):
                body = {**IRIS_SPEC, "training": {**IRIS_SPEC["training"], "seed": seed}}
                r = client.post("/api/v1/runs", json=body, headers=headers[name])
                if r.status_code != 202:
                    raise RuntimeError(f"POST /api/v1/runs → {r.status_code}: {r.text[:300]}")
        submitted = time.perf_counter() - start
        deadline = time.monotonic() + 1800
        while True:
            active = 0
            for name in names:
                for status in ("queued", "running"):
                    page = client.get(
                        "/api/v1/runs",
                        params={"status": status, "limit": 1},
                        headers=headers[name],
                    ).json()
                    active += int(page["total"])
            if active == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{active} runs still active after 1800 s")
            time.sleep(0.5)
        items = {name: all_runs(client, headers[name]) for name in names}
    finished = sorted(
        ((_time(r["finished_at"]), name, r) for name, rs in items.items() for r in rs),
        key=lambda t: t[0],
    )
    first_created = min(_time(r["created_at"]) for _, _, r in finished)
    last_finished = finished[-1][0]
    failed = [r["id"] for _, _, r in finished if r["status"] != "succeeded"]
    order = [name for _, name, _ in finished]
    alice, bob = names
    last_alice = max(i for i, n in enumerate(order) if n == alice)
    before = order[: last_alice + 1]
    longest, current, prev = 0, 0, None
    for n in order[: min(last_alice, max(i for i, n in enumerate(order) if n == bob)) + 1]:
        current = current + 1 if n == prev else 1
        longest, prev = max(longest, current), n
    waits = {
        name: median(
            [(_time(r["started_at"]) - _time(r["created_at"])).total_seconds() for r in rs]
        )
        for name, rs in items.items()
    }
    drain = (last_finished - first_created).total_seconds()
    return {
        "runs": len(finished),
        "failed": failed,
        "submit_seconds": submitted,
        "drain_seconds": drain,
        "runs_per_minute": len(finished) / drain * 60,
        "bob_share_before_alice_done": before.count(bob) / len(before),
        "longest_same_user_stretch": longest,
        "median_wait_s": waits,
        "first_20": "".join(n[0].upper() for n in order[:20]),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.small_runs", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--engine-runs", type=int, default=None, help="default: --runs (half before, half after)"
    )
    args = parser.parse_args(argv)
    print("# bench.small_runs")
    for line in machine_lines():
        print(line)
    print(f"spec: {IRIS_SPEC}")
    # The engine alone before and after the service, half the runs each, and their
    # mean: this host's speed drifts by 15 % from one minute to the next, and a ratio
    # against one side only would carry that drift.
    engine_runs = max(1, (args.engine_runs or args.runs) // 2)
    monitor = LoadMonitor().start()
    before = engine_loop(engine_runs)
    engine_others = monitor.stop()
    print(f"engine alone, before: {before:.0f} runs/min (others used {100 * engine_others:.0f}%)")
    with tempfile.TemporaryDirectory(prefix="annlab-bench-small-") as workdir:
        data_dir = os.path.join(workdir, "data")
        keys = {name: create_user(data_dir, name) for name in ("alice", "bob")}
        log_path = os.path.join(workdir, "annlab.log")
        env = {"ANNLAB_AUTH": "on"}
        with running_server(data_dir, log_path, extra_env=env, port=args.port) as (url, pid):
            monitor = TreeLoadMonitor([pid]).start()
            result = through_service(url, keys, args.runs)
            service_others = monitor.stop()
    monitor = LoadMonitor().start()
    after = engine_loop(engine_runs)
    after_others = monitor.stop()
    print(f"engine alone, after: {after:.0f} runs/min (others used {100 * after_others:.0f}%)")
    engine_rpm = (before + after) / 2
    rpm = result["runs_per_minute"]
    print(
        format_table(
            ["path", "runs", "runs/min", "x engine alone"],
            [
                ["engine alone (loop, mean)", 2 * engine_runs, engine_rpm, 1.0],
                ["service (2 users)", result["runs"], rpm, rpm / engine_rpm],
            ],
        )
    )
    print(f"goal ≥ 0.8× engine alone: {'MET' if rpm >= 0.8 * engine_rpm else 'NOT MET'}")
    print(
        f"submit {result['submit_seconds']:.1f} s for {args.runs} POSTs; drain (first created → "
        f"last finished) {result['drain_seconds']:.1f} s; failed {len(result['failed'])}; "
        f"others used {100 * service_others:.0f}% of the CPUs meanwhile"
    )
    print(
        f"fairness: Bob's share of the runs finished up to Alice's last: "
        f"{100 * result['bob_share_before_alice_done']:.0f}% (fair: ≈ 50%); longest "
        f"stretch of one user's runs: {result['longest_same_user_stretch']}; median wait "
        + ", ".join(f"{k} {v:.1f} s" for k, v in result["median_wait_s"].items())
        + f"; first 20 finished: {result['first_20']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
