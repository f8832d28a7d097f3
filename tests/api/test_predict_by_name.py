"""Predict by feature name (records, CSV), and the messages a newcomer meets: a flat
row, a wrong column count, a missing or wrong Content-Type."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import API, submit, wait_for
from tests.support.specs import iris_spec

ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
ORDER = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture
def path(client: TestClient) -> str:
    final = wait_for(client, submit(client, iris_spec(epochs=2))["id"])
    return f"{API}/runs/{final['id']}/predict"


def _by_position(client: TestClient, path: str, rows: list[dict[str, float]]) -> dict:
    inputs = [[row[name] for name in ORDER] for row in rows]
    return client.post(path, json={"inputs": inputs}).json()


def test_records_match_columns_by_name_in_any_order(client: TestClient, path: str) -> None:
    other = {"petal_width": 2.3, "sepal_length": 6.7, "petal_length": 5.2, "sepal_width": 3.0}
    shuffled = [dict(reversed(list(ROW.items()))), other]
    response = client.post(path, json={"records": shuffled})
    assert response.status_code == 200, response.text
    assert response.json() == _by_position(client, path, [ROW, other])


def test_a_csv_body_matches_columns_by_name(client: TestClient, path: str) -> None:
    body = "petal_width;sepal_length;petal_length;sepal_width\n0.2;5.1;1.4;3.5\n"
    response = client.post(path, content=body, headers={"content-type": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.json() == _by_position(client, path, [ROW])
    comma = "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n"
    same = client.post(path, content=comma, headers={"content-type": "text/csv; charset=utf-8"})
    assert same.json() == response.json()


def test_a_missing_column_is_named(client: TestClient, path: str) -> None:
    partial = {key: value for key, value in ROW.items() if key != "petal_width"}
    response = client.post(path, json={"records": [partial]})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "'petal_width'" in detail and "sepal_length" in detail
    csv = "sepal_length,sepal_width,petal_length\n5.1,3.5,1.4\n"
    response = client.post(path, content=csv, headers={"content-type": "text/csv"})
    assert response.status_code == 422 and "'petal_width'" in response.json()["detail"]
    extra = client.post(path, json={"records": [{**ROW, "colour": 1}]})
    assert extra.status_code == 422 and "'colour'" in extra.json()["detail"]
    uneven = client.post(path, json={"records": [ROW, partial]})
    assert uneven.status_code == 422 and "records[1]" in uneven.json()["detail"]
    text = client.post(path, json={"records": [{**ROW, "petal_width": "x"}]})
    assert text.status_code == 422 and "petal_width" in text.json()["detail"]


def test_a_flat_row_gets_one_clear_message(client: TestClient, path: str) -> None:
    response = client.post(path, json={"inputs": [5.1, 3.5, 1.4, 0.2]})
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert len(errors) == 1 and "[[5.1, 3.5, 1.4, 0.2]]" in errors[0]["msg"]


def test_a_wrong_column_count_lists_the_feature_names(client: TestClient, path: str) -> None:
    response = client.post(path, json={"inputs": [[1.0, 2.0]]})
    assert response.status_code == 422
    assert ", ".join(ORDER) in response.json()["detail"]


def test_a_missing_or_wrong_content_type_says_so(client: TestClient, path: str) -> None:
    # no Content-Type: JSON is still read as JSON
    ok = client.post(path, content=b'{"records": [' + str(ROW).replace("'", '"').encode() + b"]}")
    assert ok.status_code == 200, ok.text
    missing = client.post(path, content=b"sepal_length,sepal_width\n1,2\n")
    assert missing.status_code == 400 and "Content-Type" in missing.json()["detail"]
    form = client.post(
        path, content=b"inputs=1", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert form.status_code == 422
    assert "application/x-www-form-urlencoded" in form.json()["detail"]
    assert "text/csv" in form.json()["detail"]
