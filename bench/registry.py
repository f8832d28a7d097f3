"""Grid submission time and predict latency by alias vs by run, in process.

    python -m bench.registry [--requests 300]

- ``POST /api/v1/experiments`` with a 100-run grid (4 optimizers × 25 seeds) on an
  app without workers (the runs stay queued): the validation of every combination
  and the one transaction; median of 3.
- ``POST /runs/{id}/predict`` against ``/models/{name}/aliases/{alias}/predict``
  and ``/serve/{name}/{alias}/invocations`` (one row, warm cache), through
  Starlette's TestClient: p50 and p99 over ``--requests`` requests each.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from bench.common import machine_lines, median, percentile
from bench.serve import IRIS_SPEC, ONE_ROW

API = "/api/v1"
GRID = {
    "optimizer": [
        {"type": "sgd", "learning_rate": 0.1},
        {"type": "sgd", "learning_rate": 0.1, "momentum": 0.9},
        {"type": "rmsprop", "learning_rate": 0.01},
        {"type": "adam", "learning_rate": 0.01},
    ],
    "training.seed": list(range(25)),
}


def grid_seconds(data_dir: Path) -> list[float]:
    client = TestClient(create_app(Settings(data_dir=data_dir, executor="none")))
    times = []
    with client:
        for i in range(3):
            t = time.perf_counter()
            response = client.post(
                f"{API}/experiments", json={"name": f"grid {i}", "base": IRIS_SPEC, "grid": GRID}
            )
            times.append(time.perf_counter() - t)
            assert response.status_code == 202 and len(response.json()["runs"]) == 100
            client.post(f"{API}/experiments/{response.json()['id']}/cancel")
    return times


def latencies(client: TestClient, path: str, body: dict[str, object], n: int) -> list[float]:
    assert client.post(path, json=body).status_code == 200
    out = []
    for _ in range(n):
        t = time.perf_counter()
        response = client.post(path, json=body)
        out.append(time.perf_counter() - t)
        assert response.status_code == 200
    return sorted(out)


def predict_latencies(data_dir: Path, n: int) -> dict[str, list[float]]:
    client = TestClient(create_app(Settings(data_dir=data_dir, executor="thread", workers=1)))
    with client:
        run = client.post(f"{API}/runs", json={**IRIS_SPEC, "training": {"epochs": 20}}).json()
        deadline = time.monotonic() + 120
        while client.get(f"{API}/runs/{run['id']}").json()["status"] != "succeeded":
            assert time.monotonic() < deadline, "the iris run did not finish"
            time.sleep(0.05)
        client.post(f"{API}/models", json={"name": "iris"})
        client.post(f"{API}/models/iris/versions", json={"run_id": run["id"]})
        client.put(f"{API}/models/iris/aliases/production", json={"version": 1})
        rows = {"inputs": ONE_ROW}
        return {
            "by run": latencies(client, f"{API}/runs/{run['id']}/predict", rows, n),
            "by alias": latencies(client, f"{API}/models/iris/aliases/production/predict", rows, n),
            "/serve invocations": latencies(client, "/serve/iris/production/invocations", rows, n),
        }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.registry", description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args(argv)
    print("# bench.registry")
    for line in machine_lines():
        print(line)
    with tempfile.TemporaryDirectory(prefix="annlab-bench-registry-") as tmp:
        grid = grid_seconds(Path(tmp) / "grid")
        print(
            "grid of 100 runs (POST /experiments, validated, one transaction): "
            + ", ".join(f"{t * 1e3:.0f}" for t in grid)
            + f" ms; median {median(grid) * 1e3:.0f} ms"
        )
        for name, values in predict_latencies(Path(tmp) / "predict", args.requests).items():
            print(
                f"predict 1 row {name:>20}: p50 {percentile(values, 50) * 1e3:.3f} ms, "
                f"p99 {percentile(values, 99) * 1e3:.3f} ms ({len(values)} requests, TestClient)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
