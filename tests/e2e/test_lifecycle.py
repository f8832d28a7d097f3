"""A run's whole life over a real socket: submit, watch, use, delete; and cancel."""

from __future__ import annotations

import io
import json
import time

import httpx
import numpy as np
import pytest

from .server import (
    API,
    TERMINAL,
    get_run,
    iris_spec,
    long_spec,
    sse_events,
    submit,
    wait_epoch,
    wait_status,
)

pytestmark = pytest.mark.timeout(120)

METRICS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "learning_rate")


def test_health_and_readiness(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_submit_answers_202_with_location_and_a_queued_run(client: httpx.Client) -> None:
    response = client.post(f"{API}/runs", json=iris_spec(epochs=2))
    assert response.status_code == 202, response.text
    run = response.json()
    assert run["status"] in ("queued", "running", "succeeded"), (
        run
    )  # a fast worker may already have it
    assert response.headers["location"].endswith(f"/api/v1/runs/{run['id']}")
    followed = client.get(response.headers["location"])
    assert followed.status_code == 200 and followed.json()["id"] == run["id"]
    wait_status(client, run["id"])


@pytest.mark.slow
def test_a_run_from_submission_to_deletion(client: httpx.Client) -> None:
    spec = iris_spec(epochs=40, batch_size=8)
    created = submit(client, spec)
    run_id = created["id"]
    assert created["spec"]["training"]["epochs"] == 40
    assert created["spec"]["optimizer"]["beta1"] == 0.9, (
        "spec is normalised with defaults filled in"
    )
    assert created["dataset"] == "iris"
    assert created["n_parameters"] == 4 * 8 + 8 + 8 * 3 + 3

    # --- the event stream, from just after submission to its end
    events = list(sse_events(client, f"{API}/runs/{run_id}/events", timeout=60))
    kinds = [kind for kind, _ in events]
    progress = [json.loads(data) for kind, data in events if kind == "progress"]
    statuses = [json.loads(data) for kind, data in events if kind == "status"]
    assert statuses, f"no status event in {kinds}"
    status_values = [event.get("status") for event in statuses]
    assert status_values[-1] == "succeeded", status_values
    assert kinds[-1] == "status", (
        f"the stream must end right after the terminal status: {kinds[-5:]}"
    )
    assert progress, f"no progress event in {kinds}"
    epochs_seen = [event["epoch"] for event in progress]
    assert epochs_seen == list(range(epochs_seen[0], epochs_seen[0] + len(epochs_seen))), (
        f"one progress event per epoch, in order: {epochs_seen}"
    )
    assert epochs_seen[-1] == 40
    assert all(event["epochs"] == 40 for event in progress)
    assert set(progress[-1]["metrics"]) >= {"train_loss", "val_loss"}, progress[-1]

    # --- the finished run
    run = get_run(client, run_id)
    assert run["status"] == "succeeded" and run["stop_reason"] == "completed", run
    assert run["progress"]["epoch"] == run["progress"]["epochs"] == 40
    assert run["started_at"] and run["finished_at"] and run["error"] is None
    assert run["metrics"]["train_accuracy"] is not None

    metrics = client.get(f"{API}/runs/{run_id}/metrics").json()
    assert metrics["epoch"] == list(range(1, 41))
    for name in METRICS:
        assert len(metrics[name]) == len(metrics["epoch"]), name
    assert metrics["train_loss"][-1] == pytest.approx(run["metrics"]["train_loss"])

    # --- predictions
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
    response = client.post(f"{API}/runs/{run_id}/predict", json={"inputs": rows})
    assert response.status_code == 200, response.text
    predicted = response.json()
    outputs = np.array(predicted["outputs"])
    assert outputs.shape == (3, 3)
    np.testing.assert_allclose(outputs.sum(axis=1), 1.0, rtol=1e-9)
    dataset = client.get(f"{API}/datasets/iris").json()
    assert len(predicted["predictions"]) == 3
    assert set(predicted["predictions"]) <= set(dataset["class_names"])
    assert predicted["predictions"] == [dataset["class_names"][i] for i in outputs.argmax(axis=1)]

    # --- weights as JSON and as .npz: same numbers
    document = client.get(f"{API}/runs/{run_id}/weights").json()
    assert document["dtype"] == "float64"
    assert len(document["standardize"]["mean"]) == len(document["standardize"]["std"]) == 4
    shapes = [
        (np.array(layer["weights"]).shape, len(layer["biases"])) for layer in document["layers"]
    ]
    assert shapes == [((4, 8), 8), ((8, 3), 3)]
    assert [layer["units"] for layer in document["layers"]] == [8, 3]
    assert [layer["activation"] for layer in document["layers"]] == ["relu", "softmax"]

    response = client.get(f"{API}/runs/{run_id}/weights", params={"format": "npz"})
    assert response.status_code == 200
    with np.load(io.BytesIO(response.content), allow_pickle=False) as archive:
        stored = {key: archive[key] for key in archive.files}
    for index, layer in enumerate(document["layers"]):
        for part in ("weights", "biases"):
            expected = np.array(layer[part], dtype=np.float64)
            assert any(
                array.shape == expected.shape and np.array_equal(array, expected)
                for array in stored.values()
            ), (
                f"layer {index} {part} of the JSON document not found, bit for bit, in the npz {sorted(stored)}"
            )

    # --- delete: 204, then 404 everywhere
    assert client.delete(f"{API}/runs/{run_id}").status_code == 204
    assert client.get(f"{API}/runs/{run_id}").status_code == 404
    assert client.get(f"{API}/runs/{run_id}/weights").status_code == 404
    assert client.delete(f"{API}/runs/{run_id}").status_code == 404


def test_listing_is_newest_first_and_filters(client: httpx.Client) -> None:
    first = submit(client, iris_spec(epochs=1))
    second = submit(client, iris_spec(epochs=1))
    listing = client.get(f"{API}/runs", params={"dataset": "iris", "limit": 100}).json()
    ids = [run["id"] for run in listing["items"]]
    assert ids.index(second["id"]) < ids.index(first["id"])
    assert all(run["dataset"] == "iris" for run in listing["items"])
    assert listing["total"] >= 2
    assert client.get(f"{API}/runs", params={"limit": 101}).status_code == 422
    for run in (first, second):
        wait_status(client, run["id"])


@pytest.mark.slow
def test_cancel_of_a_long_run_takes_effect_within_one_second(client: httpx.Client) -> None:
    run = submit(client, long_spec(epochs=100_000, name="e2e cancel"))
    wait_epoch(client, run["id"], 1, timeout=30)
    started = time.monotonic()
    response = client.post(f"{API}/runs/{run['id']}/cancel")
    assert response.status_code == 202, response.text
    assert response.json()["id"] == run["id"]
    final = wait_status(client, run["id"], TERMINAL, timeout=5)
    elapsed = time.monotonic() - started
    print(f"cancel took effect in {elapsed:.3f}s")
    assert final["status"] == "cancelled", final
    assert final["stop_reason"] == "cancelled", final
    assert elapsed <= 1.0, f"cancel took {elapsed:.2f}s to take effect"
    assert client.post(f"{API}/runs/{run['id']}/cancel").status_code == 409


@pytest.mark.slow
def test_deleting_a_running_run_cancels_it(client: httpx.Client) -> None:
    run = submit(client, long_spec(epochs=100_000, name="e2e delete running"))
    wait_epoch(client, run["id"], 1, timeout=30)
    assert client.delete(f"{API}/runs/{run['id']}").status_code == 204
    assert client.get(f"{API}/runs/{run['id']}").status_code == 404
    # the worker is free again: a new run finishes
    again = submit(client, iris_spec(epochs=2))
    assert wait_status(client, again["id"], timeout=30)["status"] == "succeeded"
