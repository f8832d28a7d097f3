"""Features that overflow the run's dtype: 422 at submission naming row and column."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.errors import DatasetError
from core.loaders import dataset_from_json
from core.value_checks import check_fits_dtype

from .conftest import API


def upload(client: TestClient, features: list[list[float]]) -> str:
    body = {
        "name": "big",
        "task": "classification",
        "features": features,
        "targets": ["a", "b"] * (len(features) // 2),
    }
    response = client.post(f"{API}/datasets", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def run_body(dataset_id: str, dtype: str, standardize: bool) -> dict[str, Any]:
    return {
        "dataset": dataset_id,
        "model": {"layers": [{"units": 2, "activation": "softmax"}]},
        "optimizer": {"type": "sgd"},
        "training": {"epochs": 2, "standardize": standardize, "validation_split": 0.0},
        "dtype": dtype,
    }


FEATURES = [[0.0, 1.0], [1.0, 2.0], [2.0, 1e39], [3.0, 4.0]]


def test_a_float32_overflow_is_a_422_naming_row_and_column(idle_client: TestClient) -> None:
    data = upload(idle_client, FEATURES)
    response = idle_client.post(f"{API}/runs", json=run_body(data, "float32", False))
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert "features[2][1] = 1e+39" in error["msg"] and "float32" in error["msg"]
    assert data in error["msg"]
    assert idle_client.get(f"{API}/runs").json()["total"] == 0  # no run was made
    again = idle_client.post(f"{API}/runs", json=run_body(data, "float32", False))
    assert again.status_code == 422 and again.json() == response.json()  # the remembered verdict


@pytest.mark.parametrize(("dtype", "standardize"), [("float64", False), ("float32", True)])
def test_what_the_trainer_can_take_is_accepted(
    idle_client: TestClient, dtype: str, standardize: bool
) -> None:
    data = upload(idle_client, FEATURES)
    response = idle_client.post(f"{API}/runs", json=run_body(data, dtype, standardize))
    assert response.status_code == 202, response.text


def test_the_core_check_is_the_trainers_conversion() -> None:
    data = dataset_from_json(
        name="d", task="classification", features=FEATURES, targets=["a", "b", "a", "b"]
    )
    with pytest.raises(DatasetError, match=r"features\[2\]\[1\]"):
        check_fits_dtype(data, dtype="float32", standardize=False)
    check_fits_dtype(data, dtype="float64", standardize=False)
    check_fits_dtype(data, dtype="float32", standardize=True)
