"""/serve/{name}/{version-or-alias}: MLflow's scoring protocol, in-process.

MLflow's own client against a real server is tests/e2e/test_mlflow_client.py."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import API, iris_spec, submit, wait_for

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def served(client: TestClient) -> dict[str, Any]:
    run = submit(client, iris_spec(epochs=8))
    assert wait_for(client, run["id"])["status"] == "succeeded"
    assert client.post(f"{API}/models", json={"name": "iris"}).status_code == 201
    assert client.post(f"{API}/models/iris/versions", json={"run_id": run["id"]}).status_code == 201
    client.put(f"{API}/models/iris/aliases/production", json={"version": 1})
    answer = client.post(f"{API}/runs/{run['id']}/predict", json={"inputs": ROWS}).json()
    return {"run": run["id"], **answer}


def invoke(client: TestClient, body: Any, ref: str = "production", **kwargs: Any) -> Any:
    headers = kwargs.pop("headers", JSON)
    return client.post(f"/serve/iris/{ref}/invocations", json=body, headers=headers, **kwargs)


def test_the_four_formats_csv_and_probabilities(client: TestClient, served: dict[str, Any]) -> None:
    reversed_columns = list(reversed(FEATURES))
    bodies = [
        {"dataframe_split": {"columns": FEATURES, "data": ROWS}},
        {"dataframe_split": {"columns": reversed_columns, "data": [r[::-1] for r in ROWS]}},
        {"dataframe_records": [dict(zip(FEATURES, row, strict=True)) for row in ROWS]},
        {"instances": ROWS},
        {"inputs": ROWS},
        {"inputs": {name: [row[i] for row in ROWS] for i, name in enumerate(FEATURES)}},
        {"instances": ROWS, "params": {"anything": 1}},
    ]
    for body in bodies:
        response = invoke(client, body)
        assert response.status_code == 200, (body, response.text)
        assert response.json() == {"predictions": served["predictions"]}
    for ref in ("1", "production"):
        assert invoke(client, {"inputs": ROWS}, ref).json()["predictions"] == served["predictions"]
    probabilities = invoke(client, {"inputs": ROWS}, params={"output": "probabilities"})
    assert probabilities.json() == {"predictions": served["outputs"]}
    by_params = invoke(client, {"inputs": ROWS, "params": {"output": "probabilities"}})
    assert by_params.json() == {"predictions": served["outputs"]}
    csv = ",".join(reversed_columns) + "\n" + "\n".join(",".join(map(str, r[::-1])) for r in ROWS)
    response = client.post(
        "/serve/iris/production/invocations",
        content=csv.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 200 and response.json()["predictions"] == served["predictions"]


def test_ping_health_version(client: TestClient, served: dict[str, Any]) -> None:
    for route in ("ping", "health"):
        assert client.get(f"/serve/iris/production/{route}").status_code == 200
        missing = client.get(f"/serve/iris/staging/{route}")
        assert missing.status_code == 404
        assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    version = client.get("/serve/iris/1/version")
    assert version.status_code == 200 and version.text.strip()[0].isdigit()


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ([ROWS], "dictionary"),
        ({"inputs": ROWS, "instances": ROWS}, "exactly one"),
        ({"rows": ROWS}, "exactly one"),
        (
            {"dataframe_split": {"columns": FEATURES[:3], "data": [r[:3] for r in ROWS]}},
            "petal_width",
        ),
        ({"dataframe_split": {"columns": [*FEATURES[:3], "x"], "data": ROWS}}, "'x'"),
        ({"dataframe_records": [{"sepal_length": 1.0}]}, "missing column"),
        ({"inputs": [[1.0, 2.0]]}, "4 features"),
        ({"inputs": [[1.0, "a", 2.0, 3.0]]}, "number"),
        ({"inputs": ROWS, "params": [1]}, "params"),
        ({"inputs": []}, "non-empty"),
    ],
)
def test_bad_bodies_are_400_in_mlflows_shape(
    client: TestClient, served: dict[str, Any], body: Any, needle: str
) -> None:
    response = invoke(client, body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert set(error) == {"error_code", "message"} and error["error_code"] == "BAD_REQUEST"
    assert needle in error["message"]


def test_another_content_type_is_415_and_broken_json_400(
    client: TestClient, served: dict[str, Any]
) -> None:
    for content_type in ("text/plain", "application/xml"):
        response = client.post(
            "/serve/iris/1/invocations", content=b"{}", headers={"Content-Type": content_type}
        )
        assert response.status_code == 415
        assert response.json()["error_code"] == "BAD_REQUEST"
    broken = client.post("/serve/iris/1/invocations", content=b"{", headers=JSON)
    assert broken.status_code == 400 and broken.json()["error_code"] == "BAD_REQUEST"
    assert invoke(client, {"inputs": ROWS}, "7").status_code == 404
    unknown = client.post("/serve/nope/1/invocations", json={"inputs": ROWS})
    assert unknown.status_code == 404 and "nope" in unknown.json()["message"]


def test_moving_the_alias_moves_serve(client: TestClient, served: dict[str, Any]) -> None:
    other = submit(client, iris_spec(epochs=2, seed=5))
    wait_for(client, other["id"])
    client.post(f"{API}/models/iris/versions", json={"run_id": other["id"]})
    before = invoke(client, {"inputs": ROWS}, params={"output": "probabilities"}).json()
    client.put(f"{API}/models/iris/aliases/production", json={"version": 2})
    after = invoke(client, {"inputs": ROWS}, params={"output": "probabilities"}).json()
    expected = client.post(f"{API}/runs/{other['id']}/predict", json={"inputs": ROWS}).json()
    assert after == {"predictions": expected["outputs"]} and after != before
