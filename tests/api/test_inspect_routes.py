"""The decision boundary and the backward pass through the HTTP API: the grid answers
what /predict answers, the gradients are those of finite differences (float64), the
perceptron's step passes dvalues through, and every bad request is a clear 4xx."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from core.datasets import load_builtin

from .conftest import API, submit, wait_for
from .test_auth import As, add_user


def trained(client: TestClient, spec: dict[str, Any]) -> str:
    run = submit(client, spec)
    assert wait_for(client, run["id"])["status"] == "succeeded"
    return run["id"]


def spec_for(
    dataset: str,
    layers: list[tuple[int, str]],
    loss: str | None = None,
    *,
    epochs: int = 15,
    **training: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "dataset": dataset,
        "model": {"layers": [{"units": u, "activation": a} for u, a in layers]},
        "optimizer": {"type": "adam", "learning_rate": 0.02},
        "training": {"epochs": epochs, "batch_size": 32, "seed": 1, **training},
        "dtype": "float64",
    }
    if loss is not None:
        spec["loss"] = loss
    return spec


# ------------------------------------------------------------- decision boundary


@pytest.mark.parametrize("output", [(2, "softmax"), (1, "sigmoid")], ids=["softmax", "one-sigmoid"])
def test_grid_points_answer_what_predict_answers(
    client: TestClient, output: tuple[int, str]
) -> None:
    run_id = trained(client, spec_for("moons", [(8, "tanh"), output]))
    response = client.get(f"{API}/runs/{run_id}/decision-boundary", params={"resolution": 37})
    assert response.status_code == 200, response.text
    grid = response.json()
    assert grid["epoch"] == 15 and grid["class_names"] == ["0", "1"]
    x, y = np.array(grid["x"]), np.array(grid["y"])
    predictions, confidence = np.array(grid["predictions"]), np.array(grid["confidence"])
    assert x.shape == y.shape == (37,) and predictions.shape == confidence.shape == (37, 37)
    features = load_builtin("moons").features
    for axis, column in ((x, features[:, 0]), (y, features[:, 1])):
        span = column.max() - column.min()
        assert axis[0] == pytest.approx(column.min() - 0.1 * span, rel=1e-12)
        assert axis[-1] == pytest.approx(column.max() + 0.1 * span, rel=1e-12)
    assert len(set(predictions.ravel().tolist())) == 2, "both classes appear on the grid"

    rng = np.random.default_rng(0)
    j, i = rng.integers(0, 37, size=60), rng.integers(0, 37, size=60)
    points = [[x[a], y[b]] for a, b in zip(i, j, strict=True)]
    answer = client.post(f"{API}/runs/{run_id}/predict", json={"inputs": points}).json()
    assert [grid["class_names"][p] for p in predictions[j, i]] == answer["predictions"]
    outputs = np.array(answer["outputs"])
    expected = (
        outputs.max(axis=1) if output[1] == "softmax" else np.maximum(outputs, 1 - outputs)[:, 0]
    )
    np.testing.assert_array_equal(confidence[j, i], expected)


def test_a_one_feature_regression_gives_the_fitted_curve(client: TestClient) -> None:
    run_id = trained(client, spec_for("sine", [(8, "tanh"), (1, "linear")], "mse"))
    curve = client.get(f"{API}/runs/{run_id}/decision-boundary", params={"resolution": 10}).json()
    assert set(curve) == {"epoch", "x", "values"} and len(curve["x"]) == 10
    answer = client.post(
        f"{API}/runs/{run_id}/predict", json={"inputs": [[v] for v in curve["x"]]}
    ).json()
    assert curve["values"] == answer["predictions"]


def test_decision_boundary_refusals(client: TestClient, idle_client: TestClient) -> None:
    blobs = trained(client, spec_for("blobs", [(2, "softmax")], epochs=2))
    iris = trained(client, spec_for("iris", [(3, "softmax")], epochs=2))
    for resolution in (9, 401, "many"):
        response = client.get(
            f"{API}/runs/{blobs}/decision-boundary", params={"resolution": resolution}
        )
        assert response.status_code == 422, response.text
    assert client.get(f"{API}/runs/{blobs}/decision-boundary?resolution=10").status_code == 200
    refused = client.get(f"{API}/runs/{iris}/decision-boundary")
    assert refused.status_code == 422 and "exactly two features" in refused.json()["detail"]
    assert client.get(f"{API}/runs/run_unknown/decision-boundary").status_code == 404

    queued = submit(idle_client, spec_for("blobs", [(2, "softmax")]))["id"]
    no_model = idle_client.get(f"{API}/runs/{queued}/decision-boundary")
    assert no_model.status_code == 409 and "no snapshot" in no_model.json()["detail"]
    backprop = idle_client.post(
        f"{API}/runs/{queued}/backprop", json={"inputs": [[0, 0]], "targets": [0]}
    )
    assert backprop.status_code == 409


# ---------------------------------------------------------------- backward pass


def reference_loss(
    weights: dict[str, Any], rows: np.ndarray, targets: np.ndarray, loss: str
) -> float:
    """The data loss of the weights document on rows, in plain NumPy (ENGINE.md)."""
    values = rows
    for layer in weights["layers"]:
        net = values @ np.array(layer["weights"]) + np.array(layer["biases"])
        values = ACTIVATIONS[layer["activation"]](net)
    clipped = np.clip(values, 1e-7, 1 - 1e-7)
    if loss == "mse":
        return float(0.5 * np.mean((targets - values) ** 2))
    if loss == "binary_cross_entropy":
        return float(-np.mean(targets * np.log(clipped) + (1 - targets) * np.log(1 - clipped)))
    return float(-np.mean(np.sum(targets * np.log(clipped), axis=1)))


def _softmax(net: np.ndarray) -> np.ndarray:
    exp = np.exp(net - net.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "sigmoid": lambda net: 1 / (1 + np.exp(-net)),
    "linear": lambda net: net,
    "softmax": _softmax,
}

#: (dataset, layers, loss, the targets of the rows sent, their encoding for the loss)
PAIRINGS = {
    "tanh-softmax-cross_entropy": (
        "iris",
        [(5, "tanh"), (3, "softmax")],
        "cross_entropy",
        ["setosa", "virginica", 1, "versicolor", 2],
        np.eye(3)[[0, 2, 1, 1, 2]],
    ),
    "tanh-sigmoid-binary_cross_entropy": (
        "moons",
        [(4, "tanh"), (1, "sigmoid")],
        "binary_cross_entropy",
        ["0", "1", 1, 0, "1"],
        np.array([[0], [1], [1], [0], [1]], dtype=np.float64),
    ),
    "tanh-linear-mse": (
        "sine",
        [(6, "tanh"), (1, "linear")],
        "mse",
        [0.5, -0.25, 1.0, [0.0], -1.0],
        np.array([[0.5], [-0.25], [1.0], [0.0], [-1.0]]),
    ),
}


@pytest.mark.parametrize("pairing", list(PAIRINGS))
def test_backprop_matches_finite_differences(client: TestClient, pairing: str) -> None:
    dataset, layers, loss, targets, encoded = PAIRINGS[pairing]
    run_id = trained(client, spec_for(dataset, layers, loss, standardize=False))
    rows = load_builtin(dataset).features[[0, 60, 110, 75, 140]]
    body = {"inputs": rows.tolist(), "targets": targets}
    answer = client.post(f"{API}/runs/{run_id}/backprop", json=body)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    weights = client.get(f"{API}/runs/{run_id}/weights").json()
    assert result["epoch"] == 15 and result["penalty"] == 0.0
    assert result["loss"] == pytest.approx(reference_loss(weights, rows, encoded, loss), rel=1e-12)
    h = 1e-6

    # ∂L/∂W and ∂L/∂b of every layer: central differences of the reference loss
    for index, layer in enumerate(result["layers"]):
        for name, key in (("dweights", "weights"), ("dbiases", "biases")):
            analytic = np.array(layer[name])
            numeric = np.zeros_like(analytic)
            for position in np.ndindex(analytic.shape):
                losses = []
                for sign in (1, -1):
                    moved = {"layers": [dict(item) for item in weights["layers"]]}
                    array = np.array(moved["layers"][index][key], dtype=np.float64)
                    array[position] += sign * h
                    moved["layers"][index][key] = array.tolist()
                    losses.append(reference_loss(moved, rows, encoded, loss))
                numeric[position] = (losses[0] - losses[1]) / (2 * h)
            np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9, err_msg=name)
        # the documented identities
        inputs, dnet = np.array(layer["inputs"]), np.array(layer["dnet"])
        np.testing.assert_allclose(layer["dweights"], inputs.T @ dnet, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(layer["dbiases"], dnet.sum(axis=0), rtol=1e-12, atol=1e-15)

    # ∂L/∂inputs of the first layer, entirely through the API: the loss of moved rows
    dinputs = np.array(result["layers"][0]["dinputs"])
    for row, column in [(0, 0), (1, rows.shape[1] - 1), (4, 0)]:
        losses = []
        for sign in (1, -1):
            moved = rows.copy()
            moved[row, column] += sign * h
            again = client.post(
                f"{API}/runs/{run_id}/backprop", json=body | {"inputs": moved.tolist()}
            )
            losses.append(again.json()["loss"])
        assert dinputs[row, column] == pytest.approx(
            (losses[0] - losses[1]) / (2 * h), rel=1e-6, abs=1e-9
        )


def test_the_perceptron_step_passes_dvalues_through(client: TestClient) -> None:
    spec = spec_for("blobs", [(1, "step")], "mse", batch_size=None)
    spec["optimizer"] = {"type": "sgd", "learning_rate": 0.01}
    run_id = trained(client, spec | {"training": spec["training"] | {"snapshots": [3]}})
    rows = load_builtin("blobs").features[:6].tolist()
    answer = client.post(
        f"{API}/runs/{run_id}/backprop",
        json={"inputs": rows, "targets": [0, 1, 0, 1, 1, 0], "epoch": 3},
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    (layer,) = result["layers"]
    assert result["epoch"] == 3
    assert layer["dnet"] == layer["dvalues"], "step: the perceptron rule's derivative 1"
    assert {value for row in layer["outputs"] for value in row} <= {0.0, 1.0}
    snapshot = client.get(f"{API}/runs/{run_id}/weights", params={"epoch": 3}).json()
    (weights,) = snapshot["layers"]
    net = np.array(layer["inputs"]) @ np.array(weights["weights"]) + np.array(weights["biases"])
    np.testing.assert_allclose(layer["net"], net, rtol=1e-12)


def test_backprop_refusals(make_client: Any) -> None:
    client = make_client(max_predict_rows=3)
    run_id = trained(client, spec_for("iris", [(4, "tanh"), (3, "softmax")], epochs=2))
    path = f"{API}/runs/{run_id}/backprop"
    row = [5.1, 3.5, 1.4, 0.2]
    cases = [
        ({"inputs": [row[:3]], "targets": ["setosa"]}, "4 numbers"),
        ({"inputs": [row], "targets": ["tulip"]}, "tulip"),
        ({"inputs": [row], "targets": [7]}, "class index 7"),
        ({"inputs": [row, row], "targets": ["setosa"]}, "1 targets for 2"),
        ({"inputs": [row] * 4, "targets": ["setosa"] * 4}, "ANNLAB_MAX_PREDICT_ROWS"),
        ({"inputs": [row], "targets": [True]}, "targets"),
        ({"inputs": [row], "targets": ["setosa"], "epochs": 1}, "epochs"),
        ({"inputs": [], "targets": []}, "inputs"),
    ]
    for body, needle in cases:
        response = client.post(path, json=body)
        assert response.status_code == 422, (body, response.text)
        assert needle in str(response.json()["detail"]), (body, response.text)
    assert client.post(f"{API}/runs/run_unknown/backprop", json=cases[0][0]).status_code == 404


def test_other_users_runs_are_404_on_every_inspection_route(make_client: Any) -> None:
    server = make_client(auth=True)
    alice, bob = (As(server, add_user(server, name)) for name in ("alice", "bob"))
    run = alice.post(f"{API}/runs", json=spec_for("blobs", [(2, "softmax")], epochs=3))
    run_id = run.json()["id"]
    alice.wait(run_id)
    routes = [
        ("GET", f"/runs/{run_id}/snapshots", None),
        ("GET", f"/runs/{run_id}/weights?epoch=1", None),
        ("POST", f"/runs/{run_id}/predict?epoch=1", {"inputs": [[0, 0]]}),
        ("GET", f"/runs/{run_id}/decision-boundary", None),
        ("POST", f"/runs/{run_id}/backprop", {"inputs": [[0, 0]], "targets": [0]}),
        ("GET", f"/runs/{run_id}/plots/loss.png", None),
        ("GET", f"/runs/{run_id}/plots/decision-boundary.svg", None),
    ]
    for method, path, body in routes:
        assert alice.request(method, API + path, json=body).status_code == 200, path
        assert bob.request(method, API + path, json=body).status_code == 404, path
        assert server.request(method, API + path, json=body).status_code == 401, path
