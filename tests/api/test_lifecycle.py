"""A run's whole life: submit, follow, use, delete — and the 404/409 around it."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from .conftest import API, get_run, iris_spec, long_spec, sse_events, submit, wait_for

METRICS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "learning_rate")
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


def check_whole_life(client: TestClient) -> None:
    """Shared by the thread, process and PostgreSQL variants."""
    response = client.post(f"{API}/runs", json=iris_spec(epochs=15))
    assert response.status_code == 202, response.text
    created = response.json()
    run_id = created["id"]
    assert response.headers["location"].endswith(f"/api/v1/runs/{run_id}")
    assert created["status"] in ("queued", "running")
    assert created["spec"]["optimizer"]["beta1"] == 0.9, "the spec is normalised"
    assert created["spec"]["training"]["validation_split"] == 0.2
    assert created["n_parameters"] == 4 * 8 + 8 + 8 * 3 + 3
    assert created["progress"] == {"epoch": 0, "epochs": 15, "step": 0}

    events = sse_events(client, f"{API}/runs/{run_id}/events")
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "status" and events[-1][1]["status"] == "succeeded", kinds
    statuses = [data["status"] for kind, data in events if kind == "status"]
    # (a run that ended before the stream began sends its history, then its one final
    # status: test_events_resume.test_a_finished_run_sends_its_history_then_its_final_status)
    assert statuses == sorted(set(statuses), key=statuses.index), "one event per change"
    progress = [data for kind, data in events if kind == "progress"]
    assert [event["epoch"] for event in progress] == list(range(progress[0]["epoch"], 16)), (
        "one progress event per epoch, in order, up to the last"
    )
    assert all(event["epochs"] == 15 for event in progress)
    assert set(progress[-1]["metrics"]) == set(METRICS)

    run = get_run(client, run_id)
    assert run["status"] == "succeeded" and run["stop_reason"] == "completed", run
    assert run["progress"]["epoch"] == 15
    assert run["started_at"] and run["finished_at"] and run["error"] is None
    assert run["metrics"]["train_accuracy"] is not None

    metrics = client.get(f"{API}/runs/{run_id}/metrics").json()
    assert metrics["epoch"] == list(range(1, 16))
    assert all(len(metrics[name]) == 15 for name in METRICS)
    assert metrics["train_loss"][-1] == pytest.approx(run["metrics"]["train_loss"])
    assert progress[-1]["metrics"]["train_loss"] == pytest.approx(run["metrics"]["train_loss"])

    predicted = client.post(f"{API}/runs/{run_id}/predict", json={"inputs": IRIS_ROWS})
    assert predicted.status_code == 200, predicted.text
    outputs = np.array(predicted.json()["outputs"])
    assert outputs.shape == (3, 3)
    np.testing.assert_allclose(outputs.sum(axis=1), 1.0)
    names = ["setosa", "versicolor", "virginica"]
    assert predicted.json()["predictions"] == [names[i] for i in outputs.argmax(axis=1)]
    again = client.post(f"{API}/runs/{run_id}/predict", json={"inputs": IRIS_ROWS})
    assert again.json() == predicted.json(), "a warm (cached) prediction is the same"

    document = client.get(f"{API}/runs/{run_id}/weights").json()
    assert document["dtype"] == "float64"
    assert [layer["activation"] for layer in document["layers"]] == ["relu", "softmax"]
    assert [np.array(layer["weights"]).shape for layer in document["layers"]] == [(4, 8), (8, 3)]
    assert len(document["standardize"]["mean"]) == 4
    npz = client.get(f"{API}/runs/{run_id}/weights", params={"format": "npz"})
    assert npz.status_code == 200
    with np.load(io.BytesIO(npz.content), allow_pickle=False) as archive:
        arrays = [archive[key] for key in archive.files]
    for layer in document["layers"]:
        expected = np.array(layer["weights"])
        assert any(a.shape == expected.shape and np.array_equal(a, expected) for a in arrays)

    assert client.delete(f"{API}/runs/{run_id}").status_code == 204
    for method, path in [
        ("GET", f"{API}/runs/{run_id}"),
        ("GET", f"{API}/runs/{run_id}/weights"),
        ("POST", f"{API}/runs/{run_id}/predict"),
        ("DELETE", f"{API}/runs/{run_id}"),
    ]:
        body = {"inputs": IRIS_ROWS} if method == "POST" else None
        assert client.request(method, path, json=body).status_code == 404, (method, path)


def test_a_run_from_submission_to_deletion(client: TestClient) -> None:
    check_whole_life(client)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/runs/nope"),
        ("GET", "/runs/nope/metrics"),
        ("GET", "/runs/nope/events"),
        ("GET", "/runs/nope/weights"),
        ("GET", "/runs/nope/weights?format=npz"),
        ("POST", "/runs/nope/cancel"),
        ("POST", "/runs/nope/predict"),
        ("DELETE", "/runs/nope"),
    ],
)
def test_an_unknown_run_is_404(idle_client: TestClient, method: str, path: str) -> None:
    body = {"inputs": [[1.0, 2.0, 3.0, 4.0]]} if path.endswith("predict") else None
    response = idle_client.request(method, f"{API}{path}", json=body)
    assert response.status_code == 404, response.text
    assert "detail" in response.json()


def test_weights_and_predict_are_409_before_success(idle_client: TestClient) -> None:
    run = submit(idle_client, iris_spec())
    for path in ("/weights", "/weights?format=npz"):
        assert idle_client.get(f"{API}/runs/{run['id']}{path}").status_code == 409
    response = idle_client.post(f"{API}/runs/{run['id']}/predict", json={"inputs": IRIS_ROWS})
    assert response.status_code == 409, response.text


def test_cancelling_a_queued_run_then_a_finished_one(idle_client: TestClient) -> None:
    run = submit(idle_client, iris_spec())
    response = idle_client.post(f"{API}/runs/{run['id']}/cancel")
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "cancelled"
    assert response.json()["stop_reason"] == "cancelled"
    assert idle_client.post(f"{API}/runs/{run['id']}/cancel").status_code == 409
    events = sse_events(idle_client, f"{API}/runs/{run['id']}/events")
    assert events == [
        ("status", {"status": "cancelled", "stop_reason": "cancelled", "error": None})
    ]


def test_cancelling_a_running_run(client: TestClient) -> None:
    run = submit(client, long_spec())
    wait_for(client, run["id"], lambda r: r["progress"]["epoch"] >= 1)
    response = client.post(f"{API}/runs/{run['id']}/cancel")
    assert response.status_code == 202
    final = wait_for(client, run["id"], timeout=5)  # the latency bound is tests/e2e's
    assert (final["status"], final["stop_reason"]) == ("cancelled", "cancelled")
    assert client.get(f"{API}/runs/{run['id']}/weights").status_code == 409


def test_deleting_a_running_run_cancels_it_and_frees_the_worker(client: TestClient) -> None:
    run = submit(client, long_spec())
    wait_for(client, run["id"], lambda r: r["progress"]["epoch"] >= 1)
    assert client.delete(f"{API}/runs/{run['id']}").status_code == 204
    assert client.get(f"{API}/runs/{run['id']}").status_code == 404
    again = submit(client, iris_spec(epochs=2))
    assert wait_for(client, again["id"])["status"] == "succeeded"


def test_listing_is_newest_first_filters_and_pages(idle_client: TestClient) -> None:
    ids = [submit(idle_client, iris_spec())["id"] for _ in range(5)]
    xor = submit(
        idle_client,
        {
            "dataset": "xor",
            "model": {"layers": [{"units": 2, "activation": "softmax"}]},
            "optimizer": {"type": "sgd"},
        },
    )
    idle_client.post(f"{API}/runs/{ids[0]}/cancel")
    listing = idle_client.get(f"{API}/runs").json()
    assert listing["total"] == 6
    assert [run["id"] for run in listing["items"]] == [xor["id"], *reversed(ids)]
    iris = idle_client.get(f"{API}/runs", params={"dataset": "iris"}).json()
    assert iris["total"] == 5 and all(run["dataset"] == "iris" for run in iris["items"])
    queued = idle_client.get(f"{API}/runs", params={"status": "queued"}).json()
    assert queued["total"] == 5
    cancelled = idle_client.get(f"{API}/runs", params={"status": "cancelled"}).json()
    assert [run["id"] for run in cancelled["items"]] == [ids[0]]
    page = idle_client.get(f"{API}/runs", params={"limit": 2, "offset": 2}).json()
    assert [run["id"] for run in page["items"]] == [ids[3], ids[2]] and page["total"] == 6
    assert idle_client.get(f"{API}/runs", params={"limit": 101}).status_code == 422
    assert idle_client.get(f"{API}/runs", params={"limit": 0}).status_code == 422
    assert idle_client.get(f"{API}/runs", params={"offset": -1}).status_code == 422
    assert idle_client.get(f"{API}/runs", params={"status": "done"}).status_code == 422


def test_predict_rejects_bad_inputs(client: TestClient) -> None:
    run = submit(client, iris_spec(epochs=2))
    assert wait_for(client, run["id"])["status"] == "succeeded"
    path = f"{API}/runs/{run['id']}/predict"
    wrong_width = client.post(path, json={"inputs": [[1.0, 2.0, 3.0]]})
    assert wrong_width.status_code == 422 and "4" in wrong_width.text
    ragged = client.post(path, json={"inputs": [[1.0, 2.0, 3.0, 4.0], [1.0]]})
    assert ragged.status_code == 422
    empty = client.post(path, json={"inputs": []})
    assert empty.status_code == 422
    text = client.post(path, json={"inputs": [["a", 2.0, 3.0, 4.0]]})
    assert text.status_code == 422
    for token in (b"NaN", b"Infinity"):
        body = b'{"inputs": [[1.0, 2.0, 3.0, ' + token + b"]]}"
        response = client.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422, response.text


def test_predict_rows_over_the_limit_is_422_naming_the_setting(make_client: Any) -> None:
    client = make_client(max_predict_rows=2)
    run = submit(client, iris_spec(epochs=2))
    assert wait_for(client, run["id"])["status"] == "succeeded"
    response = client.post(f"{API}/runs/{run['id']}/predict", json={"inputs": IRIS_ROWS})
    assert response.status_code == 422 and "ANNLAB_MAX_PREDICT_ROWS" in response.text


def test_a_diverging_run_fails_saying_at_which_epoch(client: TestClient) -> None:
    spec = {
        "dataset": "sine",
        "model": {"layers": [{"units": 1, "activation": "linear"}]},
        "optimizer": {"type": "sgd", "learning_rate": 1000.0},
        "training": {"epochs": 200, "batch_size": 8},
        "dtype": "float64",
    }
    final = wait_for(client, submit(client, spec)["id"])
    assert (final["status"], final["stop_reason"]) == ("failed", "diverged"), final
    assert "epoch" in final["error"]
    assert client.get(f"{API}/runs/{final['id']}/metrics").status_code == 200


def test_a_run_over_the_time_limit_keeps_its_model_naming_the_setting(make_client: Any) -> None:
    client = make_client(max_run_seconds=0.5)
    final = wait_for(client, submit(client, long_spec())["id"], timeout=10)
    assert (final["status"], final["stop_reason"]) == ("succeeded", "interrupted"), final
    assert "ANNLAB_MAX_RUN_SECONDS" in final["error"]
    assert client.get(f"{API}/runs/{final['id']}/weights").status_code == 200


def test_early_stopping_ends_the_run_early(client: TestClient) -> None:
    spec = iris_spec(epochs=2000, early_stopping={"patience": 3, "min_delta": 10.0})
    final = wait_for(client, submit(client, spec)["id"])
    assert (final["status"], final["stop_reason"]) == ("succeeded", "early_stopping"), final
    assert final["progress"]["epoch"] < 2000 and final["best_epoch"] is not None


def test_a_run_on_an_uploaded_dataset(client: TestClient) -> None:
    dataset = client.post(
        f"{API}/datasets",
        json={
            "name": "line",
            "task": "regression",
            "features": [[x] for x in range(10)],
            "targets": [2.0 * x for x in range(10)],
        },
    ).json()
    spec = {
        "dataset": dataset["id"],
        "model": {"layers": [{"units": 1, "activation": "linear"}]},
        "optimizer": {"type": "sgd", "learning_rate": 0.05},
        "training": {"epochs": 5, "validation_split": 0.0},
    }
    final = wait_for(client, submit(client, spec)["id"])
    assert final["status"] == "succeeded", final
    predicted = client.post(f"{API}/runs/{final['id']}/predict", json={"inputs": [[1.0]]}).json()
    assert len(predicted["predictions"]) == 1


def test_trajectories(idle_client: TestClient) -> None:
    body = {
        "function": "quadratic",
        "start": [1.0, 1.0],
        "steps": 3,
        "optimizers": [
            {"type": "sgd", "learning_rate": 0.01},
            {"type": "adam", "learning_rate": 0.1},
        ],
    }
    response = idle_client.post(f"{API}/optimizers/trajectories", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["function"] == "quadratic" and result["minimum"] == [0.0, 0.0]
    first = result["trajectories"][0]
    assert first["optimizer"]["momentum"] == 0.0, "normalised"
    assert first["points"][0] == [1.0, 1.0] and len(first["points"]) == 4
    # one plain gradient step on x² + 10 y²: (1, 1) - 0.01 (2, 20)
    assert first["points"][1] == pytest.approx([0.98, 0.8])
    assert first["values"][0] == pytest.approx(11.0)
    bad = idle_client.post(f"{API}/optimizers/trajectories", json=body | {"function": "nope"})
    assert bad.status_code == 422
