"""Spec fields over HTTP: strict numbers, the default optimizer, tags, snapshots, threads."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from .conftest import API, iris_spec


@pytest.mark.parametrize(
    ("optimizer", "field"),
    [
        ({"type": "adam", "beta2": False}, "beta2"),
        ({"type": "sgd", "learning_rate": "0.1"}, "learning_rate"),
        ({"type": "sgd", "nesterov": 1}, "nesterov"),
    ],
)
def test_booleans_and_numeric_strings_are_422_naming_the_field(
    idle_client: TestClient, optimizer: dict[str, Any], field: str
) -> None:
    response = idle_client.post(f"{API}/runs", json=iris_spec() | {"optimizer": optimizer})
    assert response.status_code == 422, response.text
    assert any(field in error["loc"] for error in response.json()["detail"]), response.text


def test_an_omitted_optimizer_is_plain_sgd(idle_client: TestClient) -> None:
    body = iris_spec()
    del body["optimizer"]
    response = idle_client.post(f"{API}/runs", json=body)
    assert response.status_code == 202, response.text
    optimizer = response.json()["spec"]["optimizer"]
    assert optimizer["type"] == "sgd" and optimizer["learning_rate"] == 0.01


def test_tags_snapshots_and_threads_are_in_the_normalised_spec(idle_client: TestClient) -> None:
    body = iris_spec(snapshots=[3, 1, 3], threads=1) | {"tags": {"group": "b"}}
    response = idle_client.post(f"{API}/runs", json=body)
    assert response.status_code == 202, response.text
    spec = response.json()["spec"]
    assert spec["tags"] == {"group": "b"}
    assert spec["training"]["snapshots"] == [1, 3] and spec["training"]["threads"] == 1


def test_too_many_tags_is_a_422(idle_client: TestClient) -> None:
    body = iris_spec() | {"tags": {f"k{i}": "v" for i in range(21)}}
    response = idle_client.post(f"{API}/runs", json=body)
    assert response.status_code == 422 and "tags" in response.text
