"""Training as a user gets it: W1–W4 submitted to a real ``annlab serve``.

    python -m bench.service                   # W1..W4, 2 repeats, port 19700
    python -m bench.service -w W3 --threads W3=2   # W3 on both cores
    python -m bench.service -w W2 -r 1 --port 19701

``bench.train`` times ``core.training.train`` alone; here each workload of
``bench.common.WORKLOADS`` is uploaded as a dataset (JSON) to ``annlab serve``
(SQLite in a temp data dir, default settings: 1 worker on this 2-core machine,
checkpoints every 10 s, the default ``log`` snapshot plan) and submitted as a run
with the spec ``bench.train.engine_spec`` builds (float32, Adam, no validation,
no standardisation; W4 with ``training.threads`` 2). Its time per epoch is the
run's ``(finished_at − started_at) / epochs``: setup (the dataset read from the
database and decoded), the first (warm-up) epoch and the final write included.

In the same repeat, in this process, on the same data: the engine alone (the
same spec through ``core.training.train``, whole call ÷ epochs: the like-for-like
figure), PyTorch with 1 and all threads and with the per-epoch train loss and
accuracy on the whole set (``bench.train.run_torch(epoch_metrics=True)``, median
timed epoch), and scikit-learn (``bench.train.run_sklearn``). Ratios: their time ÷
the service's (> 1 = the service is faster).

The overhead split comes from the worker's own timers (``app.jobs.worker.JobTimers``,
its ``run … timers:`` log line): setup before ``train``, progress writes, polls,
checkpoints, snapshots, the final write.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime

import httpx
import numpy as np

from bench.common import (
    WORKLOADS,
    LoadMonitor,
    Workload,
    format_table,
    machine_lines,
    median,
    wait_quiet,
    workload_data,
)
from bench.serve import running_server
from bench.train import _have, engine_dataset, engine_spec, run_sklearn, run_torch

DEFAULT_PORT = 19700
#: ``training.threads`` per workload (W4: the run takes both cores, as PyTorch does).
THREADS = {"W4": 2}
TIMER_LINE = re.compile(r"run (\S+) timers: epochs=(\d+) (.*)$")
TIMER_PARTS = ("setup", "writes", "polls", "checkpoints", "snapshots", "finish")


@dataclass
class ServiceRun:
    run_id: str
    epochs: int
    seconds: float  # finished_at − started_at
    timers: dict[str, float] = field(default_factory=dict)
    others_load: float = float("nan")
    train_loss: float = float("nan")

    @property
    def per_epoch(self) -> float:
        return self.seconds / self.epochs


@dataclass
class Repeat:
    """One repeat of one workload: every contender, back to back."""

    workload: str
    service: ServiceRun
    engine_per_epoch: float  # whole train() ÷ epochs
    engine_median_epoch: float
    torch: dict[str, float]  # name → median timed epoch, seconds
    sklearn: float | None
    others: dict[str, float]  # contender → others' CPU share


# ----------------------------------------------------------------------- service


def upload(client: httpx.Client, workload: Workload, name: str) -> str:
    features, labels = workload_data(workload)
    body = {
        "name": name,
        "task": "classification",
        "features": features.tolist(),
        "targets": [f"c{int(v)}" for v in labels],
        "feature_names": [f"x{i}" for i in range(workload.n_features)],
    }
    r = client.post("/api/v1/datasets", content=json.dumps(body), headers=_JSON, timeout=300)
    if r.status_code != 201:
        raise RuntimeError(f"upload {name} → {r.status_code}: {r.text[:300]}")
    return str(r.json()["id"])


_JSON = {"content-type": "application/json"}


def service_spec(workload: Workload, dataset_id: str, threads: int | None = None) -> dict:
    """``bench.train.engine_spec`` of the workload as JSON, on the uploaded dataset."""
    features, labels = workload_data(workload)
    spec = engine_spec(
        workload,
        epochs=1 + workload.timed_epochs,
        dataset=engine_dataset(features, labels),
        threads=THREADS.get(workload.name, 1) if threads is None else threads,
    )
    body = spec.model_dump(mode="json", exclude_none=True)
    body["dataset"] = dataset_id
    return body


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def train_through_service(
    client: httpx.Client, spec: dict, log_path: str, server_pids: Sequence[int]
) -> ServiceRun:
    monitor = TreeLoadMonitor(server_pids).start()
    r = client.post("/api/v1/runs", json=spec)
    if r.status_code != 202:
        raise RuntimeError(f"POST /api/v1/runs → {r.status_code}: {r.text[:300]}")
    run_id = r.json()["id"]
    deadline = time.monotonic() + 900
    while True:
        run = client.get(f"/api/v1/runs/{run_id}").json()
        if run["status"] in ("succeeded", "failed", "cancelled"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} still {run['status']} after 900 s")
        time.sleep(0.1)
    others = monitor.stop()
    if run["status"] != "succeeded":
        raise RuntimeError(f"run {run_id} {run['status']}: {run.get('error')}")
    seconds = (_parse_time(run["finished_at"]) - _parse_time(run["started_at"])).total_seconds()
    epochs = int(run["progress"]["epoch"])
    return ServiceRun(
        run_id,
        epochs,
        seconds,
        read_timers(log_path, run_id),
        others,
        float(run["metrics"].get("train_loss") or float("nan")),
    )


def read_timers(log_path: str, run_id: str, timeout: float = 5.0) -> dict[str, float]:
    """The worker's ``run … timers:`` line for ``run_id`` (it logs it after the commit)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = TIMER_LINE.search(line.rstrip())
                if m and m.group(1) == run_id:
                    parts = dict(kv.split("=", 1) for kv in m.group(3).split())
                    return {k: float(v) for k, v in parts.items()}
        time.sleep(0.05)
    return {}


class TreeLoadMonitor(LoadMonitor):
    """``LoadMonitor`` that also counts the server's processes (and their children) as
    ours: only the rest of the machine is 'others'."""

    def __init__(self, pids: Sequence[int]) -> None:
        super().__init__()
        self.pids = list(pids)

    def _tree_seconds(self) -> float:
        import psutil

        total = 0.0
        for pid in self.pids:
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(pid)
                for proc in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        t = proc.cpu_times()
                        total += t.user + t.system
        return total

    def _own_seconds(self) -> float:  # type: ignore[override]
        return super()._own_seconds() + self._tree_seconds()


# ------------------------------------------------------------------ engine alone


def engine_alone(
    workload: Workload, features: np.ndarray, labels: np.ndarray, threads: int | None = None
) -> tuple[float, float]:
    """The service's spec through ``core.training.train`` in this process, with a no-op
    ``on_epoch`` and ``should_stop``: (whole call ÷ epochs, median epoch after the first)."""
    from core.training import train

    dataset = engine_dataset(features, labels)
    epochs = 1 + workload.timed_epochs
    if threads is None:
        threads = THREADS.get(workload.name, 1)
    spec = engine_spec(workload, epochs=epochs, dataset=dataset, threads=threads)
    stamps: list[float] = []
    gc.collect()
    start = time.perf_counter()
    train(
        spec,
        dataset,
        on_epoch=lambda m: stamps.append(time.perf_counter()),
        should_stop=lambda: None,
    )
    total = time.perf_counter() - start
    return total / epochs, median(list(np.diff(stamps))) if len(stamps) > 1 else total


# ------------------------------------------------------------------------ bench


def one_repeat(
    workload: Workload,
    client: httpx.Client,
    dataset_id: str,
    log_path: str,
    server_pids: Sequence[int],
    *,
    use_torch: bool,
    use_sklearn: bool,
    quiet_wait: float,
    threads: int,
) -> Repeat:
    features, labels = workload_data(workload)
    others: dict[str, float] = {}

    def timed(name: str, fn):
        if quiet_wait > 0:
            wait_quiet(quiet_wait, 0.15)
        monitor = TreeLoadMonitor(server_pids).start()
        out = fn()
        others[name] = monitor.stop()
        return out

    if quiet_wait > 0:
        wait_quiet(quiet_wait, 0.15)
    service = train_through_service(
        client, service_spec(workload, dataset_id, threads), log_path, server_pids
    )
    others["service"] = service.others_load
    engine_total, engine_epoch = timed(
        "engine", lambda: engine_alone(workload, features, labels, threads)
    )
    torch_times: dict[str, float] = {}
    if use_torch:
        for threads in sorted({1, os.cpu_count() or 1}):
            m = timed(
                f"torch-{threads}t",
                lambda threads=threads: run_torch(
                    workload,
                    features,
                    labels,
                    threads=threads,
                    timed_epochs=workload.timed_epochs,
                    epoch_metrics=True,
                ),
            )
            torch_times[m.contender] = m.seconds
    sk = None
    if use_sklearn:
        m = timed(
            "sklearn",
            lambda: run_sklearn(workload, features, labels, timed_epochs=workload.timed_epochs),
        )
        sk = m.seconds
    return Repeat(workload.name, service, engine_total, engine_epoch, torch_times, sk, others)


FLOORS = {"W1": 5.0, "W2": 2.5, "W3": 1.5, "W4": 1.0}
SKLEARN_FLOOR = 2.0


def results_table(repeats: Sequence[Repeat]) -> str:
    rows = []
    for r in repeats:
        s = r.service.per_epoch
        best = min(r.torch.values()) if r.torch else None
        rows.append(
            [
                r.workload,
                1e3 * s,
                1e3 * r.engine_per_epoch,
                s / r.engine_per_epoch,
                *(1e3 * r.torch[k] for k in sorted(r.torch)),
                1e3 * r.sklearn if r.sklearn else None,
                best / s if best else None,
                r.sklearn / s if r.sklearn else None,
                f"{100 * max(v for v in r.others.values() if v == v):.0f}%",
            ]
        )
    torch_names = sorted(repeats[0].torch) if repeats and repeats[0].torch else []
    headers = [
        "case",
        "service ms/ep",
        "engine ms/ep",
        "service/engine",
        *(f"{n} ms" for n in torch_names),
        "sklearn ms",
        "x best torch",
        "x sklearn",
        "others' CPU",
    ]
    return format_table(headers, rows)


def overhead_table(repeats: Sequence[Repeat]) -> str:
    rows = []
    for r in repeats:
        t = r.service.timers
        total = r.service.seconds
        accounted = t.get("setup", 0) + t.get("train", 0) + t.get("finish", 0)
        rows.append(
            [
                r.workload,
                1e3 * total,
                1e3 * t.get("engine", float("nan")),
                *(1e3 * t.get(k, float("nan")) for k in TIMER_PARTS),
                1e3 * (total - accounted),
                f"{100 * (total - t.get('engine', total)) / total:.1f}%",
            ]
        )
    headers = [
        "case",
        "run ms",
        "engine ms",
        *(f"{k} ms" for k in TIMER_PARTS),
        "other ms",
        "overhead",
    ]
    return format_table(headers, rows)


def verdicts(repeats: Sequence[Repeat]) -> list[str]:
    lines = []
    for r in repeats:
        s = r.service.per_epoch
        parts = []
        if r.torch:
            x = min(r.torch.values()) / s
            floor = FLOORS[r.workload]
            parts.append(f"x best torch {x:.2f} (≥ {floor}) {'MET' if x >= floor else 'NOT MET'}")
        if r.sklearn and r.workload != "W4":
            x = r.sklearn / s
            parts.append(f"x sklearn {x:.2f} (≥ 2) {'MET' if x >= SKLEARN_FLOOR else 'NOT MET'}")
        ratio = s / r.engine_per_epoch
        parts.append(f"service/engine {ratio:.3f} (goal ≤ 1.05)")
        lines.append(f"{r.workload}: " + "; ".join(parts))
    return lines


@contextlib.contextmanager
def server(
    workdir: str, port: int, env: dict[str, str] | None = None
) -> Iterator[tuple[str, int, str]]:
    log_path = os.path.join(workdir, "annlab.log")
    data_dir = os.path.join(workdir, "data")
    with running_server(data_dir, log_path, extra_env=env, port=port) as (url, pid):
        yield url, pid, log_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.service", description=__doc__.split("\n")[0]
    )
    parser.add_argument("-w", "--workloads", default="W1,W2,W3,W4")
    parser.add_argument("-r", "--repeats", type=int, default=2)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--quiet-wait", type=float, default=5.0)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--no-sklearn", action="store_true")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting for the server (e.g. ANNLAB_WORKER_NICE=0); default: none",
    )
    parser.add_argument(
        "--threads",
        action="append",
        default=[],
        metavar="WORKLOAD=N",
        help="training.threads of a workload for this run (e.g. W3=2: both cores, as "
        "PyTorch's 2-thread contender); default: W4=2, the others 1",
    )
    parser.add_argument("--json", help="also write the repeats to this file")
    args = parser.parse_args(argv)
    threads = dict(THREADS)
    for item in args.threads:
        name, _, count = item.partition("=")
        if name.upper() not in WORKLOADS or not count.isdigit() or int(count) < 1:
            parser.error(f"--threads {item!r}: expected WORKLOAD=N, e.g. W3=2")
        threads[name.upper()] = int(count)
    server_env = dict(kv.split("=", 1) for kv in args.server_env)
    names = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {list(WORKLOADS)}")
    use_torch = not args.no_torch and _have("torch")
    use_sklearn = not args.no_sklearn and _have("sklearn")

    print("# bench.service")
    for line in machine_lines():
        print(line)
    if not use_torch:
        print("(torch not installed: pip install -e '.[bench]')")
    all_repeats: list[Repeat] = []
    with (
        tempfile.TemporaryDirectory(prefix="annlab-bench-service-") as workdir,
        server(workdir, args.port, server_env) as (url, pid, log_path),
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        print(f"server {url} (pid {pid}), settings {server_env or 'default'}")
        print("training.threads: " + ", ".join(f"{n} {threads.get(n, 1)}" for n in names))
        datasets: dict[tuple[int, int, int], str] = {}
        for name in names:
            wl = WORKLOADS[name]
            key = (wl.n_samples, wl.n_features, wl.n_classes)
            if key not in datasets:
                datasets[key] = upload(client, wl, f"bench-{name}")
        # warm-up: the worker's first run pays its imports (~0.1 s): not part of a repeat
        train_through_service(
            client,
            service_spec(WORKLOADS["W1"], upload(client, WORKLOADS["W1"], "warm-up")),
            log_path,
            [pid],
        )
        for rep in range(args.repeats):
            for name in names:
                wl = WORKLOADS[name]
                key = (wl.n_samples, wl.n_features, wl.n_classes)
                r = one_repeat(
                    wl,
                    client,
                    datasets[key],
                    log_path,
                    [pid],
                    use_torch=use_torch,
                    use_sklearn=use_sklearn,
                    quiet_wait=args.quiet_wait,
                    threads=threads.get(name, 1),
                )
                all_repeats.append(r)
                print(
                    f"  [{name} rep {rep + 1}/{args.repeats}] service "
                    f"{1e3 * r.service.per_epoch:.2f} ms/epoch, engine "
                    f"{1e3 * r.engine_per_epoch:.2f}, torch "
                    + ", ".join(f"{k} {1e3 * v:.2f}" for k, v in r.torch.items())
                    + (f", sklearn {1e3 * r.sklearn:.2f}" if r.sklearn else "")
                    + f"; others {r.others}",
                    flush=True,
                )
    for rep in range(args.repeats):
        chunk = all_repeats[rep * len(names) : (rep + 1) * len(names)]
        print(f"\n## repeat {rep + 1}: per epoch (service: (finished_at − started_at) / epochs)")
        print(results_table(chunk))
        print("\n### overhead split (the worker's timers, this run)")
        print(overhead_table(chunk))
        print("\n### floors")
        for line in verdicts(chunk):
            print(line)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump([asdict(r) for r in all_repeats], f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
