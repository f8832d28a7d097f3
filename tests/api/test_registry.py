"""The model registry: names, versions never reused, aliases that move at once,
predicting by name from the run cache, protected runs, ONNX equal to /predict."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import API, iris_spec, submit, wait_for

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


def trained(client: TestClient, **spec: Any) -> str:
    run = submit(client, {**iris_spec(epochs=6), **spec})
    assert wait_for(client, run["id"])["status"] == "succeeded"
    return str(run["id"])


def post(client: TestClient, path: str, body: Any, status: int) -> dict[str, Any]:
    response = client.post(f"{API}{path}", json=body)
    assert response.status_code == status, response.text
    return response.json() if response.content else {}


def test_versions_aliases_and_predict_by_name(client: TestClient) -> None:
    first, second = trained(client), trained(client, training={"epochs": 3, "seed": 4})
    model = post(client, "/models", {"name": "iris-clf", "description": "d"}, 201)
    assert model == {
        "name": "iris-clf",
        "description": "d",
        "created_at": model["created_at"],
        "latest_version": None,
        "versions": [],
        "aliases": {},
    }
    post(client, "/models", {"name": "iris-clf"}, 409)
    v1 = post(client, "/models/iris-clf/versions", {"run_id": first}, 201)
    assert v1["version"] == 1 and v1["run_id"] == first and v1["epoch"] is None
    assert v1["metrics"]["val_loss"] is not None
    v2 = post(client, "/models/iris-clf/versions", {"run_id": second, "epoch": 2}, 201)
    assert v2["version"] == 2 and v2["epoch"] == 2
    put = client.put(f"{API}/models/iris-clf/aliases/production", json={"version": 1})
    assert put.status_code == 200 and put.json()["aliases"] == {"production": 1}

    by_run = post(client, f"/runs/{first}/predict", {"inputs": ROWS}, 200)
    by_alias = post(client, "/models/iris-clf/aliases/production/predict", {"inputs": ROWS}, 200)
    assert by_alias == by_run
    snapshot = post(client, f"/runs/{second}/predict?epoch=2", {"inputs": ROWS}, 200)
    assert post(client, "/models/iris-clf/versions/2/predict", {"inputs": ROWS}, 200) == snapshot
    assert snapshot != by_run

    # moving the alias takes effect on the very next request
    assert (
        client.put(f"{API}/models/iris-clf/aliases/production", json={"version": 2}).status_code
        == 200
    )
    assert (
        post(client, "/models/iris-clf/aliases/production/predict", {"inputs": ROWS}, 200)
        == snapshot
    )
    assert client.delete(f"{API}/models/iris-clf/aliases/production").status_code == 204
    post(client, "/models/iris-clf/aliases/production/predict", {"inputs": ROWS}, 404)

    # a referenced run is protected, by name
    refused = client.delete(f"{API}/runs/{first}")
    assert refused.status_code == 409 and "iris-clf" in refused.text

    # versions are never reused
    assert client.delete(f"{API}/models/iris-clf").status_code == 204
    post(client, "/models", {"name": "iris-clf"}, 201)
    v3 = post(client, "/models/iris-clf/versions", {"run_id": first}, 201)
    assert v3["version"] == 1  # a new model starts again; the old one is gone
    v4 = post(client, "/models/iris-clf/versions", {"run_id": first}, 201)
    assert v4["version"] == 2
    shown = client.get(f"{API}/models/iris-clf").json()
    assert shown["latest_version"] == 2 and [v["version"] for v in shown["versions"]] == [1, 2]
    assert client.get(f"{API}/models").json()["total"] == 1


def test_bad_names_states_and_unknowns(idle_client: TestClient) -> None:
    for name in ("Iris", "-iris", "", "a" * 65, "iris clf"):
        post(idle_client, "/models", {"name": name}, 422)
    post(idle_client, "/models", {"name": "a" * 64}, 201)
    post(idle_client, "/models", {"name": "m.1_x-y"}, 201)
    queued = submit(idle_client, iris_spec())
    conflict = idle_client.post(f"{API}/models/m.1_x-y/versions", json={"run_id": queued["id"]})
    assert conflict.status_code == 409
    no_snapshot = idle_client.post(
        f"{API}/models/m.1_x-y/versions", json={"run_id": queued["id"], "epoch": 3}
    )
    assert no_snapshot.status_code == 404
    post(idle_client, "/models/m.1_x-y/versions", {"run_id": "nope"}, 404)
    post(idle_client, "/models/none/versions", {"run_id": queued["id"]}, 404)
    assert idle_client.get(f"{API}/models/none").status_code == 404
    bad_alias = idle_client.put(f"{API}/models/m.1_x-y/aliases/12", json={"version": 1})
    assert bad_alias.status_code == 422
    missing = idle_client.put(f"{API}/models/m.1_x-y/aliases/prod", json={"version": 7})
    assert missing.status_code == 404
    assert idle_client.delete(f"{API}/models/m.1_x-y/aliases/prod").status_code == 404


def test_another_users_model_is_404(make_client: Any) -> None:
    from app.db.engine import transaction
    from app.db.users import create_user

    client = make_client(auth=True)
    factory = client.app.state.session_factory
    headers = []
    for name in ("ann", "bob"):
        # a write transaction from its start: a read one turned into a write fails at
        # once ("database is locked") if the app's worker wrote in between
        with transaction(factory) as session:
            headers.append(
                {"Authorization": f"Bearer {create_user(session=session, name=name).key}"}
            )
    ann, bob = headers
    run = client.post(f"{API}/runs", json=iris_spec(epochs=3), headers=ann).json()
    waited = wait_for_auth(client, run["id"], ann)
    assert waited == "succeeded"
    assert client.post(f"{API}/models", json={"name": "secret"}, headers=ann).status_code == 201
    version = client.post(f"{API}/models/secret/versions", json={"run_id": run["id"]}, headers=ann)
    assert version.status_code == 201
    client.put(f"{API}/models/secret/aliases/prod", json={"version": 1}, headers=ann)
    ok = client.post(
        f"{API}/models/secret/aliases/prod/predict", json={"inputs": ROWS}, headers=ann
    )
    assert ok.status_code == 200
    for path in ("/models/secret/aliases/prod/predict", "/models/secret/versions/1/predict"):
        assert client.post(f"{API}{path}", json={"inputs": ROWS}, headers=bob).status_code == 404
    assert client.get(f"{API}/models/secret", headers=bob).status_code == 404
    assert client.get("/serve/secret/prod/ping", headers=bob).status_code == 404
    assert client.get("/serve/secret/prod/ping").status_code == 401
    assert client.get("/serve/secret/prod/ping", headers=ann).status_code == 200
    # bob's own version of ann's run: the run is not his
    client.post(f"{API}/models", json={"name": "bobs"}, headers=bob)
    stolen = client.post(f"{API}/models/bobs/versions", json={"run_id": run["id"]}, headers=bob)
    assert stolen.status_code == 404


def wait_for_auth(client: TestClient, run_id: str, headers: dict[str, str]) -> str:
    from tests.support.waiting import wait_for as deadline

    def status() -> str | None:
        seen = str(client.get(f"{API}/runs/{run_id}", headers=headers).json()["status"])
        return seen if seen in ("succeeded", "failed", "cancelled") else None

    return deadline(status, timeout=30, message=f"run {run_id}")


@pytest.mark.parametrize(
    ("activation", "dtype"),
    [
        (activation, dtype)
        for activation in ("relu", "tanh", "sigmoid", "arctan", "leaky_relu", "linear", "step")
        for dtype in ("float32", "float64")
    ],
)
def test_onnx_runs_in_onnxruntime_like_predict(
    client: TestClient, activation: str, dtype: str
) -> None:
    spec = iris_spec(epochs=3)
    spec["model"]["layers"][0]["activation"] = activation
    spec["dtype"] = dtype
    run_id = trained(client, **spec)
    rows = np.array(ROWS * 4)
    expected = np.array(
        post(client, f"/runs/{run_id}/predict", {"inputs": rows.tolist()}, 200)["outputs"]
    )
    response = client.get(f"{API}/runs/{run_id}/weights?format=onnx")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    session = ort.InferenceSession(response.content, providers=["CPUExecutionProvider"])
    (got,) = session.run(["outputs"], {"inputs": rows.astype(dtype)})
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance * 1e-3)


def test_onnx_of_a_snapshot_and_of_a_version(client: TestClient) -> None:
    run_id = trained(client)
    rows = np.array(ROWS)
    at_two = np.array(
        post(client, f"/runs/{run_id}/predict?epoch=2", {"inputs": ROWS}, 200)["outputs"]
    )
    snap = client.get(f"{API}/runs/{run_id}/weights?format=onnx&epoch=2")
    assert snap.status_code == 200
    (got,) = ort.InferenceSession(snap.content).run(["outputs"], {"inputs": rows})
    np.testing.assert_allclose(got, at_two, rtol=1e-12)
    post(client, "/models", {"name": "onnx-m"}, 201)
    post(client, "/models/onnx-m/versions", {"run_id": run_id}, 201)
    final = np.array(post(client, f"/runs/{run_id}/predict", {"inputs": ROWS}, 200)["outputs"])
    version = client.get(f"{API}/models/onnx-m/versions/1/onnx")
    assert (
        version.status_code == 200 and version.headers["content-type"] == "application/octet-stream"
    )
    (got,) = ort.InferenceSession(version.content).run(["outputs"], {"inputs": rows})
    np.testing.assert_allclose(got, final, rtol=1e-12)
    assert client.get(f"{API}/models/onnx-m/versions/9/onnx").status_code == 404


def test_onnx_of_an_unfinished_run_is_409(idle_client: TestClient) -> None:
    queued = submit(idle_client, iris_spec())
    assert idle_client.get(f"{API}/runs/{queued['id']}/weights?format=onnx").status_code == 409
