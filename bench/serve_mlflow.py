"""annlab's MLflow scoring path against MLflow's own scoring server, side by side.

    python -m bench.serve --mlflow          # or: python -m bench.serve_mlflow [--quick]

Starts ``annlab serve``, trains the iris model of ``bench.serve`` (16 relu → 3
softmax), registers it as ``iris@production`` and loads
``/serve/iris/production/invocations``. Beside it: a scikit-learn
``MLPClassifier`` of the same shape trained on the same rows, saved with
``mlflow.sklearn.save_model`` and served by ``mlflow.pyfunc.scoring_server.init``
under uvicorn (what ``mlflow models serve`` runs). Both get the same
``dataframe_split`` bodies (1 and 100 rows) from 1 and 8 keep-alive clients.
Needs the ``mlflow`` and ``bench`` extras; only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence

import httpx

from bench.common import machine_lines
from bench.serve import (
    HOST,
    IRIS_SPEC,
    ONE_ROW,
    LoadResult,
    free_port,
    hundred_rows,
    load,
    load_table,
    running_server,
    submit,
    wait_status,
)

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
MLFLOW_SERVER = """
import sys, uvicorn
from mlflow.pyfunc import load_model
from mlflow.pyfunc.scoring_server import init
uvicorn.run(init(load_model(sys.argv[1])), host=sys.argv[2], port=int(sys.argv[3]),
            log_level="warning")
"""


def save_sklearn_model(path: str) -> None:
    """An MLPClassifier of the annlab model's shape, on iris, saved as an MLflow model."""
    import mlflow.sklearn
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from core.datasets import load_builtin

    iris = load_builtin("iris")
    classes = [iris.class_names[i] for i in iris.targets.tolist()]
    model = make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(16,), activation="relu", max_iter=500, random_state=0),
    )
    import pandas as pd

    model.fit(pd.DataFrame(iris.features, columns=FEATURES), classes)
    # cloudpickle: the skops format needs one more package
    mlflow.sklearn.save_model(
        model, path, serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE
    )


@contextlib.contextmanager
def mlflow_server(model_path: str, log_path: str) -> Iterator[str]:
    port = free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", MLFLOW_SERVER, model_path, HOST, str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"MLflow's server exited; see {log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"MLflow's server not ready after 120 s; see {log_path}")
            time.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def register(url: str) -> str:
    """Train the iris run, register it as iris@production; the invocations path."""
    with httpx.Client(base_url=url, timeout=30) as client:
        run = submit(client, IRIS_SPEC)
        run = wait_status(client, run["id"], {"succeeded", "failed", "cancelled"}, timeout=300)
        if run["status"] != "succeeded":
            raise RuntimeError(f"iris run ended {run['status']}: {run.get('error')}")
        client.post("/api/v1/models", json={"name": "iris"}).raise_for_status()
        client.post("/api/v1/models/iris/versions", json={"run_id": run["id"]}).raise_for_status()
        client.put("/api/v1/models/iris/aliases/production", json={"version": 1})
    return "/serve/iris/production/invocations"


def body(rows: list[list[float]]) -> dict[str, object]:
    return {"dataframe_split": {"columns": FEATURES, "data": rows}}


def compare(args: argparse.Namespace, workdir: str) -> int:
    use_wrk = shutil.which("wrk") is not None and not args.python_clients
    kw = {"use_wrk": use_wrk, "seconds": args.seconds, "requests": args.requests}
    clients = [int(c) for c in args.clients.split(",")]
    cases = [("1 row", body(ONE_ROW)), ("100 rows", body(hundred_rows()))]
    model_path = os.path.join(workdir, "sklearn-model")
    save_sklearn_model(model_path)
    results: list[LoadResult] = []
    with running_server(os.path.join(workdir, "data"), os.path.join(workdir, "annlab.log")) as (
        url,
        _,
    ):
        path = register(url)
        for n in clients:
            for case, payload in cases:
                assert httpx.post(url + path, json=payload).status_code == 200
                results.append(load(url, f"annlab {case}", path, payload, n, workdir=workdir, **kw))
    with mlflow_server(model_path, os.path.join(workdir, "mlflow.log")) as url:
        for n in clients:
            for case, payload in cases:
                response = httpx.post(url + "/invocations", json=payload)
                assert response.status_code == 200, response.text
                results.append(
                    load(url, f"mlflow {case}", "/invocations", payload, n, workdir=workdir, **kw)
                )
    print("\n## /invocations: annlab (registry alias) vs MLflow's scoring server")
    print(load_table(results))
    print("\n## targets (annlab ≥ 3x MLflow's req/s, p99 ≤ 1/10 of MLflow's)")
    by = {(r.case, r.clients): r for r in results}
    for n in clients:
        for case, _ in cases:
            ours, theirs = by[(f"annlab {case}", n)], by[(f"mlflow {case}", n)]
            speed, tail = ours.rps / theirs.rps, ours.p99_ms / theirs.p99_ms
            print(
                f"{n:>2} clients, {case}: {speed:.1f}x throughput "
                f"{'MET' if speed >= 3 else 'NOT MET'}; p99 {tail:.3f}x "
                f"{'MET' if tail <= 0.1 else 'NOT MET'}"
            )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve_mlflow", description=__doc__)
    parser.add_argument("--clients", default="1,8")
    parser.add_argument("--seconds", type=float, default=5.0, help="per case, with wrk")
    parser.add_argument("--requests", type=int, default=4000, help="per case, Python clients")
    parser.add_argument("--python-clients", action="store_true", help="do not use wrk")
    parser.add_argument("--quick", action="store_true", help="2 s (1,000 requests) per case")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.requests = 2.0, 1000
    print("# bench.serve_mlflow")
    for line in machine_lines():
        print(line)
    workdir = tempfile.mkdtemp(prefix="annlab-bench-mlflow-")
    try:
        return compare(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
