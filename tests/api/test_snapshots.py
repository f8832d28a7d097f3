"""Weight snapshots through the HTTP API: stored with the run, bit for bit the final
model of the same spec with fewer epochs, kept across a pause and resume, readable
while the run trains and after a cancel, deleted with the run."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db.tables import SnapshotRow
from core.snapshots import log_epochs

from .conftest import API, get_run, iris_spec, long_spec, submit, wait_for


def blobs_spec(epochs: int, **training: Any) -> dict[str, Any]:
    """SGD with momentum, float32, the whole set per step (batch GD): another corner of
    the matrix than ``iris_spec`` (Adam, float64, mini-batches)."""
    return {
        "name": "blobs momentum",
        "dataset": "blobs",
        "model": {
            "layers": [{"units": 4, "activation": "tanh"}, {"units": 2, "activation": "softmax"}]
        },
        "optimizer": {"type": "sgd", "learning_rate": 0.05, "momentum": 0.9},
        "training": {"epochs": epochs, "batch_size": None, "seed": 7, **training},
        "dtype": "float32",
    }


def npz_arrays(client: TestClient, run_id: str, epoch: int | None = None) -> dict[str, np.ndarray]:
    params = {"format": "npz"} | ({"epoch": epoch} if epoch is not None else {})
    response = client.get(f"{API}/runs/{run_id}/weights", params=params)
    assert response.status_code == 200, response.text
    with np.load(io.BytesIO(response.content), allow_pickle=False) as loaded:
        return {name: loaded[name] for name in loaded.files if name != "spec"}


def assert_same_bits(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    """Every array of two models' .npz (but the spec, whose epochs differ) identical:
    same dtype, same bytes."""
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert a[name].tobytes() == b[name].tobytes(), f"{name} differs"


def snapshot_epochs(client: TestClient, run_id: str) -> list[int]:
    response = client.get(f"{API}/runs/{run_id}/snapshots")
    assert response.status_code == 200, response.text
    return response.json()["epochs"]


def count_rows(client: TestClient, run_id: str) -> int:
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    with factory() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(SnapshotRow).where(SnapshotRow.run_id == run_id)
            )
        )


CASES = {
    "adam-float64-minibatch-16": (iris_spec, {"snapshots": [3, 7, 12]}, [3, 7, 12], 12),
    "sgd-momentum-float32-batch-gd-log": (blobs_spec, {}, log_epochs(20), 20),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_snapshot_at_e_is_the_final_model_of_epochs_e(client: TestClient, case: str) -> None:
    make_spec, training, expected, epochs = CASES[case]
    spec = make_spec(epochs=epochs, **training)
    run = submit(client, spec)
    assert wait_for(client, run["id"])["status"] == "succeeded"
    assert snapshot_epochs(client, run["id"]) == expected
    for epoch in (expected[0], expected[len(expected) // 2]):
        shorter_spec = make_spec(epochs=epoch, **training | {"snapshots": "none"})
        shorter = submit(client, shorter_spec)
        assert wait_for(client, shorter["id"])["status"] == "succeeded"
        assert_same_bits(npz_arrays(client, run["id"], epoch), npz_arrays(client, shorter["id"]))
        snapshot_doc = client.get(f"{API}/runs/{run['id']}/weights", params={"epoch": epoch})
        final_doc = client.get(f"{API}/runs/{shorter['id']}/weights")
        assert snapshot_doc.json() == final_doc.json()
    # the last snapshot of a completed run is its final model
    assert_same_bits(npz_arrays(client, run["id"], expected[-1]), npz_arrays(client, run["id"]))


def test_no_snapshot_at_an_epoch_is_404_listing_the_epochs(client: TestClient) -> None:
    run = submit(client, iris_spec(epochs=6, snapshots=[2, 5]))
    wait_for(client, run["id"])
    for method, path, body in (
        ("GET", f"{API}/runs/{run['id']}/weights?epoch=3", None),
        ("GET", f"{API}/runs/{run['id']}/weights?epoch=3&format=npz", None),
        ("POST", f"{API}/runs/{run['id']}/predict?epoch=3", {"inputs": [[5.1, 3.5, 1.4, 0.2]]}),
        ("GET", f"{API}/runs/{run['id']}/decision-boundary?epoch=3", None),
        (
            "POST",
            f"{API}/runs/{run['id']}/backprop",
            {"inputs": [[1, 2, 3, 4]], "targets": [0], "epoch": 3},
        ),
    ):
        response = client.request(method, path, json=body)
        if "decision-boundary" in path:  # iris has four features: the shape is checked first
            assert response.status_code == 422, response.text
            continue
        assert response.status_code == 404, f"{method} {path}: {response.text}"
        assert "[2, 5]" in response.json()["detail"], response.text
    assert client.get(f"{API}/runs/{run['id']}/weights?epoch=0").status_code == 422
    predicted = client.post(
        f"{API}/runs/{run['id']}/predict?epoch=5", json={"inputs": [[5.1, 3.5, 1.4, 0.2]]}
    )
    assert predicted.status_code == 200 and predicted.json()["predictions"][0] in {
        "setosa",
        "versicolor",
        "virginica",
    }


def test_a_queued_run_has_no_snapshots(idle_client: TestClient) -> None:
    run = submit(idle_client, iris_spec(epochs=5))
    assert snapshot_epochs(idle_client, run["id"]) == []
    missing = idle_client.get(f"{API}/runs/{run['id']}/weights", params={"epoch": 1})
    assert missing.status_code == 404 and "none" in missing.json()["detail"]
    assert idle_client.get(f"{API}/runs/run_nope/snapshots").status_code == 404


def test_snapshots_are_served_while_running_and_after_a_cancel(client: TestClient) -> None:
    run = submit(client, long_spec(epochs=100_000, snapshots=[1, 2]))
    wait_for(client, run["id"], lambda r: r["status"] == "running" and r["progress"]["epoch"] >= 2)
    assert snapshot_epochs(client, run["id"]) == [1, 2]
    row = {"inputs": [[5.1, 3.5, 1.4, 0.2]]}
    assert client.get(f"{API}/runs/{run['id']}/weights").status_code == 409  # no final model
    while_running = client.post(f"{API}/runs/{run['id']}/predict?epoch=2", json=row)
    assert while_running.status_code == 200, while_running.text
    weights = client.get(f"{API}/runs/{run['id']}/weights", params={"epoch": 1})
    assert weights.status_code == 200 and weights.json()["dtype"] == "float64"
    latest = client.post(f"{API}/runs/{run['id']}/backprop", json=row | {"targets": ["setosa"]})
    assert latest.status_code == 200 and latest.json()["epoch"] == 2, latest.text

    assert client.post(f"{API}/runs/{run['id']}/cancel").status_code == 202
    assert wait_for(client, run["id"])["status"] == "cancelled"
    assert client.post(f"{API}/runs/{run['id']}/predict?epoch=2", json=row).json() == (
        while_running.json()
    )
    assert client.get(f"{API}/runs/{run['id']}/weights", params={"epoch": 1}).json() == (
        weights.json()
    )
    assert client.get(f"{API}/runs/{run['id']}/weights").status_code == 409


def test_log_snapshots_end_with_the_last_epoch_run(client: TestClient) -> None:
    spec = iris_spec(epochs=400, early_stopping={"patience": 3, "restore_best": False})
    run = wait_for(client, submit(client, spec)["id"])
    assert run["stop_reason"] == "early_stopping", run
    last = run["progress"]["epoch"]
    assert snapshot_epochs(client, run["id"]) == sorted({*log_epochs(last), last})
    assert_same_bits(npz_arrays(client, run["id"], last), npz_arrays(client, run["id"]))


def test_an_explicit_list_over_the_byte_budget_is_a_422(make_client: Any) -> None:
    # iris_spec has 4·8 + 8 + 8·3 + 3 = 67 parameters, 536 bytes a float64 snapshot
    client = make_client(executor="none", max_snapshot_bytes=1500)
    refused = client.post(f"{API}/runs", json=iris_spec(epochs=10, snapshots=[1, 2, 3]))
    assert refused.status_code == 422, refused.text
    message = str(refused.json()["detail"])
    assert "ANNLAB_MAX_SNAPSHOT_BYTES" in message and "snapshots" in message
    assert (
        client.post(f"{API}/runs", json=iris_spec(epochs=10, snapshots=[1, 2])).status_code == 202
    )
    assert client.post(f"{API}/runs", json=iris_spec(epochs=1000)).status_code == 202  # thinned


def test_log_snapshots_are_thinned_to_the_budget(make_client: Any) -> None:
    client = make_client(max_snapshot_bytes=4 * 536)
    run = wait_for(client, submit(client, iris_spec(epochs=100))["id"])
    epochs = snapshot_epochs(client, run["id"])
    assert len(epochs) == 4 and epochs[0] == 1 and epochs[-1] == 100, epochs


def test_snapshots_are_deleted_with_the_run(client: TestClient) -> None:
    run = wait_for(client, submit(client, iris_spec(epochs=10))["id"])
    assert count_rows(client, run["id"]) == len(log_epochs(10))
    assert client.delete(f"{API}/runs/{run['id']}").status_code == 204
    assert count_rows(client, run["id"]) == 0
    assert client.get(f"{API}/runs/{run['id']}/snapshots").status_code == 404


def test_a_pause_and_resume_keeps_every_snapshot_bit_for_bit(
    make_client: Any, tmp_path: Path
) -> None:
    data_dir = tmp_path / "pause"
    spec = blobs_spec(epochs=700) | {"name": "paused"}
    spec["training"] |= {"batch_size": 16, "snapshots": "log"}
    expected = log_epochs(700)
    first: TestClient = make_client(data_dir=data_dir, checkpoint_seconds=0.05)
    run = submit(first, spec)
    wait_for(first, run["id"], lambda r: r["progress"]["epoch"] >= 10)
    first.__exit__(None, None, None)  # executor shutdown: the run pauses and is requeued

    idle = make_client(data_dir=data_dir, executor="none")
    paused = get_run(idle, run["id"])
    assert paused["status"] == "queued" and paused["progress"]["epoch"] >= 10, paused
    before = snapshot_epochs(idle, run["id"])
    assert before == [e for e in expected if e <= paused["progress"]["epoch"]], before
    kept = {epoch: npz_arrays(idle, run["id"], epoch) for epoch in before}
    idle.__exit__(None, None, None)

    resumed = make_client(data_dir=data_dir)
    assert wait_for(resumed, run["id"], timeout=120)["status"] == "succeeded"
    assert snapshot_epochs(resumed, run["id"]) == expected
    assert count_rows(resumed, run["id"]) == len(expected)  # none written twice
    for epoch, arrays in kept.items():
        assert_same_bits(npz_arrays(resumed, run["id"], epoch), arrays)
    # and every snapshot is the one of a run that was never interrupted
    straight = submit(resumed, spec | {"name": "straight"})
    assert wait_for(resumed, straight["id"], timeout=120)["status"] == "succeeded"
    for epoch in expected:
        assert_same_bits(
            npz_arrays(resumed, run["id"], epoch), npz_arrays(resumed, straight["id"], epoch)
        )
