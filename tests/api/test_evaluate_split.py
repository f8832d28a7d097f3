"""POST /runs/{id}/evaluate and GET /runs/{id}/split, checked against numbers computed
here by hand from the run's own predictions (and the training's val_loss)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from core.datasets import load_builtin
from tests.api.conftest import API, submit, wait_for
from tests.support.specs import iris_spec


def _predict(client: TestClient, run_id: str, rows: list[list[float]]) -> dict[str, Any]:
    response = client.post(f"{API}/runs/{run_id}/predict", json={"inputs": rows})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def iris_run(client: TestClient) -> dict[str, Any]:
    final = wait_for(client, submit(client, iris_spec(epochs=3))["id"])
    assert final["status"] == "succeeded", final
    return final


def test_the_split_is_the_one_training_used(client: TestClient, iris_run: dict[str, Any]) -> None:
    split = client.get(f"{API}/runs/{iris_run['id']}/split").json()
    assert len(split["validation"]) == 30 and len(split["train"]) == 120
    assert sorted(split["train"] + split["validation"]) == list(range(150))
    # no body: the validation rows, whose loss the last epoch reported
    report = client.post(f"{API}/runs/{iris_run['id']}/evaluate").json()
    assert report["n"] == 30
    assert report["loss"] == pytest.approx(iris_run["metrics"]["val_loss"], rel=1e-9)
    assert report["accuracy"] == pytest.approx(iris_run["metrics"]["val_accuracy"])


def test_classification_report_by_hand(client: TestClient, iris_run: dict[str, Any]) -> None:
    iris = load_builtin("iris")
    names = list(iris.class_names or [])
    rows = iris.features[::3].tolist()
    truth = [names[int(t)] for t in iris.targets[::3]]
    predicted = _predict(client, iris_run["id"], rows)["predictions"]
    response = client.post(
        f"{API}/runs/{iris_run['id']}/evaluate", json={"inputs": rows, "targets": truth}
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert set(report) == {"n", "loss", "accuracy", "confusion_matrix", "per_class", "macro_f1"}
    matrix = [[0] * 3 for _ in names]
    for t, p in zip(truth, predicted, strict=True):
        matrix[names.index(t)][names.index(p)] += 1
    assert report["confusion_matrix"] == matrix
    assert report["accuracy"] == sum(matrix[i][i] for i in range(3)) / len(rows)
    f1s = []
    for i, name in enumerate(names):
        tp, predicted_i, support = matrix[i][i], sum(r[i] for r in matrix), sum(matrix[i])
        precision = tp / predicted_i if predicted_i else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        f1s.append(f1)
        assert report["per_class"][name] == pytest.approx(
            {"precision": precision, "recall": recall, "f1": f1, "support": support}
        )
    assert report["macro_f1"] == pytest.approx(sum(f1s) / 3)
    # a dataset id: the whole dataset
    whole = client.post(f"{API}/runs/{iris_run['id']}/evaluate", json={"dataset": "iris"}).json()
    assert whole["n"] == 150 and sum(map(sum, whole["confusion_matrix"])) == 150


def test_regression_report_by_hand(client: TestClient) -> None:
    spec = {
        "dataset": "sine",
        "model": {
            "layers": [{"units": 8, "activation": "tanh"}, {"units": 1, "activation": "linear"}]
        },
        "optimizer": {"type": "adam", "learning_rate": 0.01},
        "training": {"epochs": 5},
        "dtype": "float64",
    }
    final = wait_for(client, submit(client, spec)["id"])
    rows = [[-2.0], [-1.0], [0.0], [0.5], [2.5]]
    targets = [-0.9, -0.8, 0.1, 0.4, 0.6]
    outputs = [row[0] for row in _predict(client, final["id"], rows)["outputs"]]
    report = client.post(
        f"{API}/runs/{final['id']}/evaluate", json={"inputs": rows, "targets": targets}
    ).json()
    assert set(report) == {"n", "loss", "mse", "rmse", "mae", "r2"}
    errors = [t - y for t, y in zip(targets, outputs, strict=True)]
    mse = sum(e * e for e in errors) / 5
    mean = sum(targets) / 5
    r2 = 1 - sum(e * e for e in errors) / sum((t - mean) ** 2 for t in targets)
    assert report["mse"] == pytest.approx(mse)
    assert report["loss"] == pytest.approx(mse / 2)  # the lecture's ½-mean training loss
    assert report["rmse"] == pytest.approx(math.sqrt(mse))
    assert report["mae"] == pytest.approx(sum(abs(e) for e in errors) / 5)
    assert report["r2"] == pytest.approx(r2)


def test_sklearn_agrees_when_installed(client: TestClient, iris_run: dict[str, Any]) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    iris = load_builtin("iris")
    names = list(iris.class_names or [])
    truth = [names[int(t)] for t in iris.targets]
    predicted = _predict(client, iris_run["id"], iris.features.tolist())["predictions"]
    report = client.post(f"{API}/runs/{iris_run['id']}/evaluate", json={"dataset": "iris"}).json()
    expected = metrics.f1_score(truth, predicted, labels=names, average="macro", zero_division=0)
    assert report["macro_f1"] == pytest.approx(expected)
    assert np.array_equal(
        metrics.confusion_matrix(truth, predicted, labels=names), report["confusion_matrix"]
    )


def test_evaluate_errors_are_clear(
    client: TestClient, idle_client: TestClient, iris_run: dict[str, Any]
) -> None:
    url = f"{API}/runs/{iris_run['id']}/evaluate"
    half = client.post(url, json={"inputs": [[1, 2, 3, 4]]})
    assert half.status_code == 422 and "targets" in half.text
    both = client.post(url, json={"dataset": "iris", "inputs": [[1, 2, 3, 4]], "targets": [0]})
    assert both.status_code == 422 and "not both" in both.text
    wide = client.post(url, json={"inputs": [[1, 2]], "targets": ["setosa"]})
    assert wide.status_code == 422
    unknown_class = client.post(url, json={"inputs": [[1, 2, 3, 4]], "targets": ["rose"]})
    assert unknown_class.status_code == 422 and "rose" in unknown_class.text
    assert client.post(url, json={"dataset": "nope"}).status_code == 404
    no_val = wait_for(client, submit(client, iris_spec(epochs=1, validation_split=0))["id"])
    response = client.post(f"{API}/runs/{no_val['id']}/evaluate")
    assert response.status_code == 422 and "validation" in response.text
    queued = submit(idle_client, iris_spec())
    assert idle_client.post(f"{API}/runs/{queued['id']}/evaluate").status_code == 409
