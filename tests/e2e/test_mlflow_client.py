"""MLflow's own scoring client against a real `annlab serve` (/serve/{name}/{alias})
and a real `annlab models serve NAME@ALIAS` (one model at the root); the errors with
plain `requests`. Needs the `mlflow` extra (mlflow-skinny, pandas, scipy)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import ANNLAB, API, Server, free_port, submit, wait_status
from tests.support.specs import iris_spec
from tests.support.waiting import wait_for

pd = pytest.importorskip("pandas")
requests = pytest.importorskip("requests")
client_module = pytest.importorskip("mlflow.pyfunc.scoring_server.client")
ScoringServerClient = client_module.ScoringServerClient

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("mlflow")
    (root / "data").mkdir()
    server = Server(name="mlflow", data_dir=root / "data", log_dir=root)
    try:
        yield server.start()
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def registered(server: Server) -> dict[str, object]:
    with server.client() as http:
        run = submit(http, iris_spec(epochs=10))
        wait_status(http, run["id"], {"succeeded"})
        assert http.post(f"{API}/models", json={"name": "iris-classifier"}).status_code == 201
        version = http.post(f"{API}/models/iris-classifier/versions", json={"run_id": run["id"]})
        assert version.status_code == 201
        http.put(f"{API}/models/iris-classifier/aliases/production", json={"version": 1})
        answer = http.post(f"{API}/runs/{run['id']}/predict", json={"inputs": ROWS}).json()
    return answer


def test_mlflows_client_on_the_main_server(server: Server, registered: dict[str, object]) -> None:
    # ScoringServerClient builds "http://{host}:{port}/invocations": the base path rides on the port
    client = ScoringServerClient("127.0.0.1", f"{server.port}/serve/iris-classifier/production")
    client.wait_server_ready(timeout=20)
    frame = pd.DataFrame(ROWS, columns=FEATURES)
    predictions = client.invoke(frame).get_predictions()
    assert list(predictions.iloc[:, 0]) == registered["predictions"]
    shuffled = frame[list(reversed(FEATURES))]
    assert list(client.invoke(shuffled).get_predictions().iloc[:, 0]) == registered["predictions"]
    assert client.get_version().strip()


def test_mlflows_client_on_models_serve(
    server: Server, registered: dict[str, object], tmp_path: Path
) -> None:
    port = free_port()
    env = {**os.environ, "ANNLAB_DATA_DIR": str(server.data_dir), "ANNLAB_AUTH": "off"}
    env.pop("ANNLAB_DATABASE_URL", None)
    log = (tmp_path / "models-serve.log").open("wb")
    process = subprocess.Popen(
        [str(ANNLAB), "models", "serve", "iris-classifier@production", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        client = ScoringServerClient("127.0.0.1", port)
        client.wait_server_ready(timeout=30, scoring_server_proc=process)
        frame = pd.DataFrame(ROWS, columns=FEATURES)
        got = client.invoke(frame).get_predictions()
        assert list(got.iloc[:, 0]) == registered["predictions"]
        probabilities = client.invoke(frame, params={"output": "probabilities"}).get_predictions()
        assert probabilities.to_numpy().tolist() == registered["outputs"]
        base = f"http://127.0.0.1:{port}"
        assert requests.get(f"{base}/health", timeout=5).status_code == 200
        wrong_type = requests.post(
            f"{base}/invocations", data="1,2", headers={"Content-Type": "text/plain"}, timeout=5
        )
        assert wrong_type.status_code == 415
        listed = requests.post(f"{base}/invocations", json=[ROWS], timeout=5)
        assert listed.status_code == 400 and listed.json()["error_code"] == "BAD_REQUEST"
        both = requests.post(
            f"{base}/invocations", json={"inputs": ROWS, "instances": ROWS}, timeout=5
        )
        assert both.status_code == 400 and set(both.json()) == {"error_code", "message"}
    finally:
        process.terminate()
        wait_for(lambda: process.poll() is not None, timeout=10, message="models serve to stop")
        log.close()
