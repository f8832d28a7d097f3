"""Validation rules of API.md over a socket: predict inputs, uploaded datasets, deletes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from .server import API, iris_spec, long_spec, sse_events, submit, wait_epoch, wait_status

pytestmark = pytest.mark.timeout(60)

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def trained(shared_server) -> str:
    with shared_server.client() as client:
        run = submit(client, iris_spec(epochs=3))
        assert wait_status(client, run["id"])["status"] == "succeeded"
        return run["id"]


@pytest.mark.parametrize(
    ("label", "body"),
    [
        ("wrong feature count", b'{"inputs": [[1, 2, 3]]}'),
        ("ragged rows", b'{"inputs": [[1, 2, 3, 4], [1, 2]]}'),
        ("NaN", b'{"inputs": [[NaN, 1, 2, 3]]}'),
        ("overflow to inf", b'{"inputs": [[1e999, 1, 2, 3]]}'),
        ("no rows", b'{"inputs": []}'),
        ("strings", b'{"inputs": [["a", "b", "c", "d"]]}'),
    ],
)
def test_bad_predict_inputs_are_422(
    client: httpx.Client, trained: str, label: str, body: bytes
) -> None:
    response = client.post(f"{API}/runs/{trained}/predict", content=body, headers=JSON)
    assert response.status_code == 422, f"{label}: {response.status_code} {response.text[:200]}"


@pytest.mark.parametrize(
    ("label", "dataset"),
    [
        ("ragged rows", {"task": "regression", "features": [[1], [2, 3]], "targets": [1, 2]}),
        ("fewer than 2 rows", {"task": "regression", "features": [[1]], "targets": [1]}),
        ("targets count", {"task": "regression", "features": [[1], [2]], "targets": [1]}),
        ("one class", {"task": "classification", "features": [[1], [2]], "targets": ["a", "a"]}),
        ("non-numeric", {"task": "regression", "features": [["x"], [2]], "targets": [1, 2]}),
    ],
)
def test_bad_datasets_are_422(client: httpx.Client, label: str, dataset: dict) -> None:
    response = client.post(f"{API}/datasets", json={"name": "bad"} | dataset)
    assert response.status_code == 422, f"{label}: {response.status_code} {response.text[:200]}"


def test_non_finite_features_are_422(client: httpx.Client) -> None:
    body = b'{"name": "nan", "task": "regression", "features": [[1.0], [NaN]], "targets": [1, 2]}'
    assert client.post(f"{API}/datasets", content=body, headers=JSON).status_code == 422


def test_a_csv_upload_becomes_a_dataset_that_trains(client: httpx.Client) -> None:
    csv = b"a,b,label\n0,0,no\n0,1,yes\n1,0,yes\n1,1,no\n0.1,0.1,no\n0.9,0.1,yes\n"
    response = client.post(
        f"{API}/datasets",
        files={"file": ("xorish.csv", csv, "text/csv")},
        data={"target": "label", "task": "classification", "name": "xorish"},
    )
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert (dataset["n_samples"], dataset["n_features"]) == (6, 2)
    assert dataset["class_names"] == ["no", "yes"] and dataset["feature_names"] == ["a", "b"]
    assert dataset["builtin"] is False
    spec = iris_spec(epochs=2, validation_split=0.0) | {
        "dataset": dataset["id"],
        "model": {"layers": [{"units": 2, "activation": "softmax"}]},
    }
    run = submit(client, spec)
    assert wait_status(client, run["id"])["status"] == "succeeded"
    predicted = client.post(f"{API}/runs/{run['id']}/predict", json={"inputs": [[0, 1]]}).json()
    assert predicted["predictions"][0] in ("no", "yes")
    refused = client.delete(f"{API}/datasets/{dataset['id']}")  # a run refers to it
    assert refused.status_code == 409 and "1 run" in refused.json()["detail"]
    assert client.delete(f"{API}/datasets/{dataset['id']}?force=true").status_code == 204
    assert client.get(f"{API}/datasets/{dataset['id']}").status_code == 404


def test_built_in_datasets_cannot_be_deleted(client: httpx.Client) -> None:
    assert client.delete(f"{API}/datasets/iris").status_code == 403
    assert client.get(f"{API}/datasets/iris").status_code == 200


@pytest.fixture
def own_dataset(client: httpx.Client) -> Iterator[str]:
    features = [[float(i), float(i % 3)] for i in range(20)]
    targets = ["a" if i % 2 else "b" for i in range(20)]
    response = client.post(
        f"{API}/datasets",
        json={"name": "in use", "task": "classification", "features": features, "targets": targets},
    )
    assert response.status_code == 201, response.text
    yield response.json()["id"]
    client.delete(f"{API}/datasets/{response.json()['id']}")


def test_a_dataset_used_by_a_running_run_cannot_be_deleted(
    client: httpx.Client, own_dataset: str
) -> None:
    spec = long_spec(100_000) | {
        "dataset": own_dataset,
        "model": {"layers": [{"units": 2, "activation": "softmax"}]},
    }
    run = submit(client, spec)
    try:
        wait_epoch(client, run["id"], 1)
        response = client.delete(f"{API}/datasets/{own_dataset}")
        assert response.status_code == 409, response.text
    finally:
        client.post(f"{API}/runs/{run['id']}/cancel")
        wait_status(client, run["id"], timeout=10)
    # the cancelled run still refers to it: only with force
    assert client.delete(f"{API}/datasets/{own_dataset}").status_code == 409
    assert client.delete(f"{API}/datasets/{own_dataset}?force=true").status_code == 204


def test_an_unknown_spec_field_is_422_naming_it(client: httpx.Client) -> None:
    spec = iris_spec()
    spec["optimizer"]["learning_rte"] = 0.1
    response = client.post(f"{API}/runs", json=spec)
    assert response.status_code == 422
    assert "learning_rte" in response.text


def test_the_event_stream_of_a_finished_run_replays_and_ends(
    client: httpx.Client, trained: str
) -> None:
    events = list(sse_events(client, f"{API}/runs/{trained}/events", timeout=10))
    assert [kind for kind, _ in events][-1] == "status"
    assert [kind for kind, _ in events].count("progress") == 3
