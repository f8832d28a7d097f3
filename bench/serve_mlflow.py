"""annlab's MLflow scoring path against MLflow's own scoring server, side by side.

    python -m bench.serve --mlflow          # or: python -m bench.serve_mlflow [--quick]

Starts ``annlab serve``, trains the iris model of ``bench.serve`` (16 relu → 3
softmax), registers it as ``iris@production`` and loads
``/serve/iris/production/invocations``. Beside it: a scikit-learn
``MLPClassifier`` of the same shape trained on the same rows, saved with
``mlflow.sklearn.save_model`` and served by ``mlflow.pyfunc.scoring_server.init``
under uvicorn (what ``mlflow models serve`` runs). Both get the same
``dataframe_split`` bodies (1 and 100 rows) from 1 and 8 keep-alive clients. Both
servers run at once and each case is measured on annlab then right after on
MLflow (``bench.serve.sweep``): on a shared machine the ratios of one run are
then taken under the same load. annlab's ``GET /healthz`` is measured beside them:
the tail of a request that does nothing, i.e. what the machine leaves of the p99
target. Needs the ``mlflow`` and ``bench`` extras; only
127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence

import httpx

from bench.common import machine_lines
from bench.serve import (
    HOST,
    IRIS_SPEC,
    ONE_ROW,
    Case,
    background_server,
    free_port,
    hundred_rows,
    load_table,
    port_range,
    running_server,
    submit,
    sweep,
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
def mlflow_server(model_path: str, log_path: str, ports: range | None = None) -> Iterator[str]:
    """MLflow's scoring server for ``model_path`` on a free port; yields its URL."""
    port = free_port(ports)
    url = f"http://{HOST}:{port}"
    command = [sys.executable, "-c", MLFLOW_SERVER, model_path, HOST, str(port)]
    with background_server(command, None, f"{url}/ping", log_path, 120):
        yield url


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
    rows = [("1 row", body(ONE_ROW)), ("100 rows", body(hundred_rows()))]
    model_path = os.path.join(workdir, "sklearn-model")
    save_sklearn_model(model_path)
    ports = port_range(args.ports)
    data_dir, log_path = os.path.join(workdir, "data"), os.path.join(workdir, "annlab.log")
    with (
        running_server(data_dir, log_path, ports=ports) as (annlab_url, _),
        mlflow_server(model_path, os.path.join(workdir, "mlflow.log"), ports) as mlflow_url,
    ):
        path = register(annlab_url)
        cases = []
        for case, payload in rows:
            cases += [
                Case(f"annlab {case}", annlab_url, path, payload),
                Case(f"mlflow {case}", mlflow_url, "/invocations", payload),
            ]
        for c in cases:
            response = httpx.post(c.url + c.path, json=c.body)
            assert response.status_code == 200, response.text
        # the same server's floor: its tail on a request that does nothing
        cases.append(Case("annlab /healthz", annlab_url, "/healthz", None))
        results = sweep(cases, clients, workdir=workdir, **kw)
    print("\n## /invocations: annlab (registry alias) vs MLflow's scoring server")
    print(load_table(results))
    print("\n## targets (annlab ≥ 3x MLflow's req/s, p99 ≤ 1/10 of MLflow's)")
    by = {(r.case, r.clients): r for r in results}
    for n in clients:
        for case, _ in rows:
            ours, theirs = by[(f"annlab {case}", n)], by[(f"mlflow {case}", n)]
            speed, tail = ours.rps / theirs.rps, ours.p99_ms / theirs.p99_ms
            floor = by[("annlab /healthz", n)]
            print(
                f"{n:>2} clients, {case}: {speed:.1f}x throughput "
                f"{'MET' if speed >= 3 else 'NOT MET'}; p99 {tail:.3f}x "
                f"{'MET' if tail <= 0.1 else 'NOT MET'} (annlab's /healthz p99 "
                f"{floor.p99_ms:.2f} ms = {floor.p99_ms / theirs.p99_ms:.3f}x MLflow's)"
            )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve_mlflow", description=__doc__)
    parser.add_argument("--clients", default="1,8")
    parser.add_argument("--seconds", type=float, default=5.0, help="per case, with wrk")
    parser.add_argument("--requests", type=int, default=4000, help="per case, Python clients")
    parser.add_argument("--python-clients", action="store_true", help="do not use wrk")
    parser.add_argument("--quick", action="store_true", help="2 s (1,000 requests) per case")
    parser.add_argument("--ports", help="LOW-HIGH: start both servers on free ports of these")
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
