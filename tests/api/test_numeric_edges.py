"""Numerical edge cases through the API: never a 500, never NaN reported as success,
never NaN/Inf (or null standing for them) in a JSON answer."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from fastapi.testclient import TestClient

from .conftest import API, submit, wait_for


def post_dataset(client: TestClient, features: Any, targets: Any, task="classification"):
    # json.dumps writes NaN/Infinity, which the service must refuse with a 422 (not a 500)
    body = json.dumps({"name": "edge", "task": task, "features": features, "targets": targets})
    return client.post(
        f"{API}/datasets", content=body, headers={"content-type": "application/json"}
    )


def dataset(client: TestClient, features: Any, targets: Any, task="classification") -> str:
    response = post_dataset(client, features, targets, task)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def spec(dataset_id: str, layers: list[dict], **training: Any) -> dict[str, Any]:
    lr = training.pop("learning_rate", 0.1)
    dtype = training.pop("dtype", "float64")
    return {
        "dataset": dataset_id,
        "model": {"layers": layers},
        "optimizer": {"type": "sgd", "learning_rate": lr},
        "training": {"epochs": 20, "batch_size": 4, "seed": 0} | training,
        "dtype": dtype,
    }


def softmax(k: int) -> list[dict]:
    return [{"units": 4, "activation": "tanh"}, {"units": k, "activation": "softmax"}]


def finished(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    return wait_for(client, submit(client, body)["id"])


def all_finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(all_finite(item) for item in value)
    if isinstance(value, dict):
        return all(all_finite(item) for item in value.values())
    return value is not None


def assert_sane_success(client: TestClient, run: dict[str, Any]) -> None:
    assert run["status"] == "succeeded", run
    assert all_finite(run["metrics"]["train_loss"]), run
    weights = client.get(f"{API}/runs/{run['id']}/weights")
    assert weights.status_code == 200
    assert all_finite([layer["weights"] for layer in weights.json()["layers"]])


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_features_are_a_422(client: TestClient, bad: str) -> None:
    body = (
        '{"name": "x", "task": "classification", "features": [[BAD, 1], [1, 2]], "targets": [0, 1]}'
    ).replace("BAD", bad)
    response = client.post(
        f"{API}/datasets", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert "non-finite" in response.text or "finite" in response.text


def test_a_single_row_is_a_422(client: TestClient) -> None:
    response = post_dataset(client, [[1.0, 2.0]], [0])
    assert response.status_code == 422, response.text


def test_divergence_fails_naming_the_epoch(client: TestClient) -> None:
    data = dataset(client, [[i] for i in range(20)], [float(i) for i in range(20)], "regression")
    run = finished(client, spec(data, [{"units": 1, "activation": "linear"}], learning_rate=1e6))
    assert (run["status"], run["stop_reason"]) == ("failed", "diverged"), run
    assert "epoch" in run["error"] and any(ch.isdigit() for ch in run["error"]), run["error"]
    response = client.get(f"{API}/runs/{run['id']}")
    assert response.status_code == 200 and "NaN" not in response.text.replace("NaN/", "")


def test_a_constant_feature_trains(client: TestClient) -> None:
    data = dataset(client, [[1.0, float(i)] for i in range(8)], [0, 0, 0, 0, 1, 1, 1, 1])
    assert_sane_success(client, finished(client, spec(data, softmax(2))))


@pytest.mark.parametrize("split", [0.0, 0.2])
def test_one_sample_per_class_trains(client: TestClient, split: float) -> None:
    # classes with one sample (and at most half as many classes as rows: an upload with
    # more is refused as a likely regression target)
    data = dataset(client, [[0.0], [1.0], [2.0], [2.5], [3.0], [3.5]], [0, 1, 2, 2, 2, 2])
    assert_sane_success(client, finished(client, spec(data, softmax(3), validation_split=split)))


def test_more_classes_than_validation_rows_trains(client: TestClient) -> None:
    data = dataset(client, [[float(i), float(i % 3)] for i in range(10)], [0, 1, 2, 3, 4] * 2)
    run = finished(client, spec(data, softmax(5), validation_split=0.2))
    assert_sane_success(client, run)
    assert run["metrics"]["val_accuracy"] is not None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("scale", [1e300, 1.7e308])
def test_huge_magnitudes_standardise_to_a_sane_model_or_fail_clearly(
    client: TestClient, dtype: str, scale: float
) -> None:
    features = [[scale * ((i - 3.5) / 3.5), float(i)] for i in range(8)]
    data = dataset(client, features, [0, 1] * 4)
    run = finished(client, spec(data, softmax(2), dtype=dtype, validation_split=0.0))
    if run["status"] == "succeeded":
        assert_sane_success(client, run)
        document = client.get(f"{API}/runs/{run['id']}/weights").json()
        assert all_finite(document["standardize"])
        assert document["standardize"]["std"][0] > scale / 2  # not a silently dropped feature
    else:
        assert (run["status"], run["stop_reason"]) == ("failed", "error"), run
        assert "features[" in run["error"], run["error"]


def test_the_1e300_column_is_standardised_not_dropped(client: TestClient) -> None:
    features = [[1e300 * (i - 3.5), 0.0] for i in range(8)]  # only the huge column carries signal
    data = dataset(client, features, [0, 0, 0, 0, 1, 1, 1, 1])
    run = finished(client, spec(data, softmax(2), validation_split=0.0, epochs=60))
    assert_sane_success(client, run)
    assert run["metrics"]["train_accuracy"] == 1.0, run


def test_huge_magnitudes_without_standardisation_in_float32_are_refused_at_submission(
    client: TestClient,
) -> None:
    data = dataset(client, [[1e300 * i] for i in range(4)], [0, 1, 0, 1])
    body = spec(data, softmax(2), dtype="float32", standardize=False, validation_split=0.0)
    response = client.post(f"{API}/runs", json=body)
    assert response.status_code == 422, response.text
    assert "features[1][0]" in response.text and "out of range for float32" in response.text


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("value", [1e300, -1e300, 1.7e308, 1e38])
def test_predict_with_huge_inputs_is_finite_json_or_a_clear_422(
    client: TestClient, dtype: str, value: float
) -> None:
    classifier = finished(client, spec("iris", softmax(3), dtype=dtype, epochs=2))
    regressor = finished(
        client,
        spec(
            "sine",
            [{"units": 4, "activation": "relu"}, {"units": 1, "activation": "linear"}],
            dtype=dtype,
            epochs=2,
        ),
    )
    for run, width in ((classifier, 4), (regressor, 1)):
        response = client.post(
            f"{API}/runs/{run['id']}/predict", json={"inputs": [[value] * width]}
        )
        assert response.status_code in (200, 422), response.text
        if response.status_code == 200:
            body = response.json()
            assert all_finite(body["outputs"]), body
            assert "NaN" not in response.text and "Infinity" not in response.text
        else:
            assert "inputs[0]" in response.json()["detail"], response.text
