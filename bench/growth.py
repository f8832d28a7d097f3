"""Cost against size: upload, one epoch and a prediction at 10⁴, 10⁵ and 10⁶ rows.

    python -m bench.growth                       # 10^4, 10^5, 10^6 rows, port 19740
    python -m bench.growth --rows 10000,100000

For each size, a CSV of that many rows × 8 feature columns (``%.6g``) and a
``label`` column (10 classes, ``bench.common.make_data``) is uploaded to
``annlab serve`` (SQLite, temp data dir, multipart form, as the web page does)
and timed against ``pandas.read_csv`` of the same file; one epoch of 8-64-128-10
(ReLU, softmax, Adam, batch 256, no validation) is trained on it (the run's
``(finished_at − started_at)`` and the worker's engine timer); then 10⁴ rows are
predicted. Peak memory: ``VmHWM`` of the server process and of each of its
children (the upload's offload process, the worker), reset before each step
(``/proc/PID/clear_refs``), so each figure is that step's own peak.

Targets (issue 14): upload + parse ≤ 2× ``pandas.read_csv``; the server's peak
(API process and the offload process that parses) ≤ 3× the dataset's float64 size
(rows × 9 columns × 8 bytes); the worker's peak ≤ 2× that + the model (its
parameters, Adam's two moments and the gradient: 4 × parameters × 8 bytes) over
its idle size; the epoch time linear in rows (10× rows → ≤ 11× time).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np

from bench.common import format_table, machine_lines, make_data
from bench.serve import running_server
from bench.service import read_timers

DEFAULT_PORT = 19740
N_FEATURES, N_CLASSES = 8, 10
HIDDEN = (64, 128)
#: Raised for the benchmark so that 10⁶ rows can be sent at all (see the report).
LIMITS = {
    "ANNLAB_MAX_BODY_BYTES": str(512 * 1024 * 1024),
    "ANNLAB_MAX_DATASET_BYTES": str(512 * 1024 * 1024),
}


def write_csv(path: str, n_rows: int, seed: int = 0) -> None:
    features, labels = make_data(n_rows, N_FEATURES, N_CLASSES, seed)
    header = ",".join([*(f"x{i}" for i in range(N_FEATURES)), "label"])
    table = np.column_stack([features, labels])
    fmt = ["%.6g"] * N_FEATURES + ["%d"]
    np.savetxt(path, table, fmt=fmt, delimiter=",", header=header, comments="")


def pandas_seconds(path: str) -> float:
    import pandas

    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        pandas.read_csv(path)
        best = min(best, time.perf_counter() - t)
    return best


def parse_seconds(path: str) -> float:
    """The app's own CSV parse of the file (``core.loaders.dataset_from_csv`` given its
    path, what the offload process runs; reading the file included, as for pandas), best
    of 2: the part of an upload pandas is a yardstick for."""
    from core.loaders import dataset_from_csv

    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        dataset_from_csv(content=Path(path), target="label", task="classification", name="g")
        best = min(best, time.perf_counter() - t)
    return best


def _status_mb(pid: int, field: str) -> float:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak(pid: int) -> None:
    """VmHWM := current RSS (Linux ≥ 4.0, our own processes)."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


class Peaks:
    """Each step's own peak RSS of the server and of every child it has."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid

    def pids(self) -> list[int]:
        import psutil

        with contextlib.suppress(psutil.Error):
            kids = psutil.Process(self.server_pid).children(recursive=True)
            return [self.server_pid, *(k.pid for k in kids)]
        return [self.server_pid]

    def reset(self) -> dict[int, float]:
        out = {}
        for pid in self.pids():
            _reset_peak(pid)
            out[pid] = _status_mb(pid, "VmRSS")
        return out

    def read(self) -> dict[int, float]:
        return {pid: _status_mb(pid, "VmHWM") for pid in self.pids()}


def run_spec(dataset_id: str) -> dict:
    layers = [{"units": u, "activation": "relu"} for u in HIDDEN]
    layers.append({"units": N_CLASSES, "activation": "softmax"})
    return {
        "name": "growth",
        "dataset": dataset_id,
        "model": {"layers": layers},
        "optimizer": {"type": "adam", "learning_rate": 0.001},
        "training": {"epochs": 1, "batch_size": 256, "seed": 0, "validation_split": 0.0},
        "dtype": "float32",
    }


def n_parameters() -> int:
    sizes = [N_FEATURES, *HIDDEN, N_CLASSES]
    return sum(a * b + b for a, b in itertools.pairwise(sizes))


def one_size(
    client: httpx.Client, peaks: Peaks, workers: list[int], log_path: str, n_rows: int, tmp: str
) -> dict:
    path = os.path.join(tmp, f"rows{n_rows}.csv")
    write_csv(path, n_rows)
    csv_mb = os.path.getsize(path) / 2**20
    pandas_s = pandas_seconds(path)
    parse_s = parse_seconds(path)
    dataset_mb = n_rows * (N_FEATURES + 1) * 8 / 2**20

    before = peaks.reset()
    t = time.perf_counter()
    with open(path, "rb") as f:
        r = client.post(
            "/api/v1/datasets",
            files={"file": (f"rows{n_rows}.csv", f, "text/csv")},
            data={"target": "label", "task": "classification"},
            timeout=1200,
        )
    upload_s = time.perf_counter() - t
    if r.status_code != 201:
        raise RuntimeError(f"upload of {n_rows} rows → {r.status_code}: {r.text[:300]}")
    dataset_id = r.json()["id"]
    after = peaks.read()
    server_peak = after[peaks.server_pid]
    server_base = before.get(peaks.server_pid, 0.0)
    helpers = {p: v for p, v in after.items() if p != peaks.server_pid and p not in workers}
    # the offload process parses: its growth (a process started meanwhile: its whole peak)
    offload_peak = max((v - before.get(p, 0.0) for p, v in helpers.items()), default=float("nan"))

    before = peaks.reset()
    t = time.perf_counter()
    r = client.post("/api/v1/runs", json=run_spec(dataset_id))
    if r.status_code != 202:
        raise RuntimeError(f"run → {r.status_code}: {r.text[:300]}")
    run_id = r.json()["id"]
    deadline = time.monotonic() + 1800
    while True:
        run = client.get(f"/api/v1/runs/{run_id}").json()
        if run["status"] in ("succeeded", "failed", "cancelled"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the run did not finish in 1800 s")
        time.sleep(0.1)
    if run["status"] != "succeeded":
        raise RuntimeError(f"run {run['status']}: {run.get('error')}")
    after = peaks.read()
    timers = read_timers(log_path, run_id)
    worker_growth = max(
        (after[w] - before.get(w, after[w]) for w in workers if w in after), default=float("nan")
    )

    rows = make_data(10_000, N_FEATURES, N_CLASSES, 1)[0].round(4).tolist()
    t = time.perf_counter()
    r = client.post(f"/api/v1/runs/{run_id}/predict", json={"inputs": rows})
    predict_s = time.perf_counter() - t
    if r.status_code != 200:
        raise RuntimeError(f"predict → {r.status_code}: {r.text[:300]}")
    client.delete(f"/api/v1/runs/{run_id}")
    client.delete(f"/api/v1/datasets/{dataset_id}", params={"force": "true"})
    os.remove(path)
    return {
        "rows": n_rows,
        "csv_mb": csv_mb,
        "dataset_mb": dataset_mb,
        "pandas_s": pandas_s,
        "parse_s": parse_s,
        "upload_s": upload_s,
        "server_peak_mb": server_peak,
        "server_growth_mb": server_peak - server_base,
        "offload_peak_mb": offload_peak,
        "run_s": (
            np.datetime64(run["finished_at"].rstrip("Z"))
            - np.datetime64(run["started_at"].rstrip("Z"))
        )
        .astype("timedelta64[us]")
        .astype(float)
        / 1e6,
        "engine_s": timers.get("engine", float("nan")),
        "setup_s": timers.get("setup", float("nan")),
        "worker_growth_mb": worker_growth,
        "predict_s": predict_s,
    }


def report(results: list[dict]) -> None:
    model_mb = 4 * n_parameters() * 8 / 2**20
    rows = []
    for r in results:
        rows.append(
            [
                r["rows"],
                r["csv_mb"],
                r["dataset_mb"],
                r["pandas_s"],
                r["parse_s"],
                r["parse_s"] / r["pandas_s"],
                r["upload_s"],
                r["upload_s"] / r["pandas_s"],
                r["server_growth_mb"],
                r["offload_peak_mb"],
                r["setup_s"],
                r["engine_s"],
                r["run_s"],
                r["worker_growth_mb"],
                r["predict_s"],
            ]
        )
    print(
        format_table(
            [
                "rows",
                "CSV MiB",
                "f64 MiB",
                "pandas s",
                "parse s",
                "parse x pandas",
                "upload s",
                "upload x pandas",
                "API +MiB",
                "offload +MiB",
                "setup s",
                "epoch s",
                "run s",
                "worker +MiB",
                "predict 1e4 s",
            ],
            rows,
        )
    )
    print("\n## targets")
    for r in results:
        d = r["dataset_mb"]
        x = r["upload_s"] / r["pandas_s"]
        parse = r["parse_s"] / r["pandas_s"]
        api, offload = r["server_growth_mb"], r["offload_peak_mb"]
        server = api + offload  # both processes hold their peaks during the upload
        worker = r["worker_growth_mb"]
        print(
            f"{r['rows']:>8} rows: parse {parse:.1f}× pandas (≤ 2) {_met(parse <= 2)}, the whole "
            f"upload request {x:.1f}× {_met(x <= 2)}; server (API process +{api:.0f} MiB, "
            f"offload process +{offload:.0f} MiB) {server / d:.1f}× f64 (≤ 3) "
            f"{_met(server <= 3 * d)}; worker +{worker:.0f} MiB (≤ {2 * d + model_mb:.0f}) {_met(worker <= 2 * d + model_mb)}"
        )
    for a, b in itertools.pairwise(results):
        k = b["rows"] / a["rows"]
        ratio = b["engine_s"] / a["engine_s"]
        print(
            f"epoch {a['rows']}→{b['rows']} rows: ×{ratio:.1f} time for ×{k:.0f} rows "
            f"(≤ {1.1 * k:.0f}) {_met(ratio <= 1.1 * k)}"
        )


def _met(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.growth", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rows", default="10000,100000,1000000")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--default-limits",
        action="store_true",
        help="keep ANNLAB_MAX_BODY_BYTES / ANNLAB_MAX_DATASET_BYTES at their defaults",
    )
    args = parser.parse_args(argv)
    sizes = [int(float(v)) for v in args.rows.split(",")]
    print("# bench.growth")
    for line in machine_lines():
        print(line)
    env = {} if args.default_limits else LIMITS
    print(f"server settings: {env or 'default'}")
    results = []
    with tempfile.TemporaryDirectory(prefix="annlab-bench-growth-") as tmp:
        log_path = os.path.join(tmp, "annlab.log")
        with (
            running_server(os.path.join(tmp, "data"), log_path, extra_env=env, port=args.port) as (
                url,
                pid,
            ),
            httpx.Client(base_url=url, timeout=300) as client,
        ):
            peaks = Peaks(pid)
            workers = [p for p in peaks.pids() if p != pid]
            # warm-up: the offload pool started and a run trained, so that each figure
            # below is the cost of the size, not of starting processes and imports
            one_size(client, peaks, workers, log_path, 100, tmp)
            for n_rows in sizes:
                results.append(one_size(client, peaks, workers, log_path, n_rows, tmp))
                r = results[-1]
                print(
                    f"  {n_rows} rows: upload {r['upload_s']:.2f} s, run {r['run_s']:.2f} s",
                    flush=True,
                )
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
