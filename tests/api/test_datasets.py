"""Datasets: built-ins are listed and read-only; uploads as JSON or CSV are checked."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from .conftest import API, iris_spec

BUILTINS = ["iris", "xor", "blobs", "moons", "circles", "spiral", "sine"]


def upload(client: TestClient, **overrides: Any) -> Any:
    body = {
        "name": "and gate",
        "task": "classification",
        "features": [[0, 0], [0, 1], [1, 0], [1, 1]],
        "targets": ["no", "no", "no", "yes"],
    } | overrides
    return client.post(f"{API}/datasets", json=body)


def test_the_built_ins_are_listed_with_their_shapes(idle_client: TestClient) -> None:
    listing = idle_client.get(f"{API}/datasets").json()
    assert [item["id"] for item in listing["items"]] == BUILTINS
    assert listing["total"] == 7
    iris = idle_client.get(f"{API}/datasets/iris").json()
    assert iris | {"created_at": None} == {
        "id": "iris",
        "name": "iris",
        "task": "classification",
        "n_samples": 150,
        "n_features": 4,
        "n_outputs": 3,
        "class_names": ["setosa", "versicolor", "virginica"],
        "feature_names": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
        "builtin": True,
        "created_at": None,
    }
    sine = idle_client.get(f"{API}/datasets/sine").json()
    assert (sine["task"], sine["n_features"], sine["n_outputs"], sine["class_names"]) == (
        "regression",
        1,
        1,
        None,
    )


def test_an_unknown_dataset_is_404(idle_client: TestClient) -> None:
    assert idle_client.get(f"{API}/datasets/nope").status_code == 404
    assert idle_client.delete(f"{API}/datasets/nope").status_code == 404


def test_a_built_in_cannot_be_deleted(idle_client: TestClient) -> None:
    response = idle_client.delete(f"{API}/datasets/iris")
    assert response.status_code == 403, response.text


def test_a_json_upload_is_stored_listed_and_deleted(idle_client: TestClient) -> None:
    response = upload(idle_client, feature_names=["a", "b"])
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["name"] == "and gate" and dataset["builtin"] is False
    assert (dataset["n_samples"], dataset["n_features"], dataset["n_outputs"]) == (4, 2, 2)
    assert dataset["class_names"] == ["no", "yes"]
    assert dataset["feature_names"] == ["a", "b"]
    assert idle_client.get(f"{API}/datasets/{dataset['id']}").json() == dataset
    assert dataset["id"] in [
        item["id"] for item in idle_client.get(f"{API}/datasets").json()["items"]
    ]
    assert idle_client.delete(f"{API}/datasets/{dataset['id']}").status_code == 204
    assert idle_client.get(f"{API}/datasets/{dataset['id']}").status_code == 404


def test_a_regression_upload_with_several_outputs(idle_client: TestClient) -> None:
    response = upload(
        idle_client,
        name="two outputs",
        task="regression",
        features=[[0.0], [1.0], [2.0]],
        targets=[[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]],
    )
    assert response.status_code == 201, response.text
    assert response.json()["n_outputs"] == 2 and response.json()["class_names"] is None


def test_a_csv_upload(idle_client: TestClient) -> None:
    csv = b"x1,x2,label\n0,0,off\n0,1,on\n1,0,on\n1,1,off\n"
    response = idle_client.post(
        f"{API}/datasets",
        files={"file": ("xor.csv", csv, "text/csv")},
        data={"target": "label", "task": "classification"},
    )
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["name"] == "xor"
    assert (dataset["n_samples"], dataset["n_features"]) == (4, 2)
    assert sorted(dataset["class_names"]) == ["off", "on"]
    assert dataset["feature_names"] == ["x1", "x2"]


def test_a_csv_upload_with_a_name_and_an_unknown_target_column(idle_client: TestClient) -> None:
    csv = b"x,y\n1,2\n2,4\n3,6\n"
    ok = idle_client.post(
        f"{API}/datasets",
        files={"file": ("line.csv", csv)},
        data={"target": "y", "task": "regression", "name": "line"},
    )
    assert ok.status_code == 201 and ok.json()["name"] == "line", ok.text
    bad = idle_client.post(
        f"{API}/datasets",
        files={"file": ("line.csv", csv)},
        data={"target": "z", "task": "regression"},
    )
    assert bad.status_code == 422, bad.text
    missing = idle_client.post(
        f"{API}/datasets", files={"file": ("line.csv", csv)}, data={"task": "regression"}
    )
    assert missing.status_code == 422 and "target" in missing.text
    # the offload process parses the streamed file where it lies: an empty one is still
    # named as such, as when its bytes were read
    empty = idle_client.post(
        f"{API}/datasets",
        files={"file": ("empty.csv", b"")},
        data={"target": "y", "task": "regression"},
    )
    assert empty.status_code == 422, empty.text
    [error] = empty.json()["detail"]
    assert error["loc"] == ["body", "file"] and "the CSV file is empty" in error["msg"]


BAD_DATA = {
    "ragged rows": {"features": [[0, 0], [0], [1, 0], [1, 1]]},
    "non-numeric feature": {"features": [[0, 0], [0, "a"], [1, 0], [1, 1]]},
    "fewer than 2 rows": {"features": [[0, 0]], "targets": ["a"]},
    "targets count is not the row count": {"targets": ["no", "yes"]},
    "one class": {"targets": ["no", "no", "no", "no"]},
    "unknown task": {"task": "clustering"},
    "unknown field": {"label": "x"},
    "feature names of the wrong length": {"feature_names": ["a"]},
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_is_422(idle_client: TestClient, case: str) -> None:
    response = upload(idle_client, **BAD_DATA[case])
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_features_are_422(idle_client: TestClient, token: bytes) -> None:
    body = (
        b'{"name": "n", "task": "regression", "features": [[1.0], ['
        + token
        + b'], [3.0]], "targets": [1, 2, 3]}'
    )
    response = idle_client.post(
        f"{API}/datasets", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text


LOCATED = {
    "ragged row": ({"features": [[0, 0], [0], [1, 0], [1, 1]]}, ["body", "features", 1]),
    "empty class name": ({"targets": ["no", "", "no", "yes"]}, ["body", "targets"]),
}


@pytest.mark.parametrize("case", list(LOCATED))
def test_an_upload_error_gives_loc_as_a_list_of_parts(idle_client: TestClient, case: str) -> None:
    overrides, loc = LOCATED[case]
    response = upload(idle_client, **overrides)
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [loc]


def test_a_non_finite_cell_is_located_by_row_and_column(idle_client: TestClient) -> None:
    body = b'{"name": "n", "task": "regression", "features": [[1, 2], [3, NaN]], "targets": [1, 2]}'
    response = idle_client.post(
        f"{API}/datasets", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [["body", "features", 1, 1]]


def test_a_csv_error_is_located_in_the_file_part(idle_client: TestClient) -> None:
    response = idle_client.post(
        f"{API}/datasets",
        files={"file": ("bad.csv", b"x,y\n1,a\n2,b.c\n3,\n")},
        data={"target": "y", "task": "classification"},
    )
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [["body", "file"]]


def test_a_csv_with_a_non_finite_cell_is_422(idle_client: TestClient) -> None:
    csv = b"x,y\n1,2\nnan,4\n3,6\n"
    response = idle_client.post(
        f"{API}/datasets",
        files={"file": ("bad.csv", csv)},
        data={"target": "y", "task": "regression"},
    )
    assert response.status_code == 422, response.text


def test_a_dataset_over_the_row_limit_is_422_naming_the_setting(make_client: Any) -> None:
    client = make_client(executor="none", max_dataset_rows=3)
    response = upload(client)
    assert response.status_code == 422, response.text
    assert "ANNLAB_MAX_DATASET_ROWS" in response.text


def test_a_dataset_over_the_byte_limit_is_422_naming_the_setting(make_client: Any) -> None:
    client = make_client(executor="none", max_dataset_bytes=100)
    response = upload(client)
    assert response.status_code == 422, response.text
    assert "ANNLAB_MAX_DATASET_BYTES" in response.text


def test_a_dataset_used_by_a_queued_run_cannot_be_deleted(idle_client: TestClient) -> None:
    dataset = upload(idle_client).json()
    spec = iris_spec() | {
        "dataset": dataset["id"],
        "model": {"layers": [{"units": 2, "activation": "softmax"}]},
    }
    run = idle_client.post(f"{API}/runs", json=spec)
    assert run.status_code == 202, run.text
    assert run.json()["n_parameters"] == 2 * 2 + 2
    response = idle_client.delete(f"{API}/datasets/{dataset['id']}")
    assert response.status_code == 409, response.text
    assert idle_client.post(f"{API}/runs/{run.json()['id']}/cancel").status_code == 202
    # a finished (here cancelled) run still refers to it: only with force
    assert idle_client.delete(f"{API}/datasets/{dataset['id']}").status_code == 409
    forced = idle_client.delete(f"{API}/datasets/{dataset['id']}?force=true")
    assert forced.status_code == 204
