"""Experiments: a grid of runs, validated whole, each run the run POST /runs makes."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from tests.api.conftest import API, iris_spec, long_spec, submit, wait_for

GRID = {
    "optimizer": [
        {"type": "sgd", "learning_rate": 0.1},
        {"type": "adam", "learning_rate": 0.01},
    ],
    "training.seed": [0, 1],
}


def create(client: TestClient, body: dict[str, Any], status: int = 202) -> dict[str, Any]:
    response = client.post(f"{API}/experiments", json=body)
    assert response.status_code == status, response.text
    return response.json()


def wait_finished(client: TestClient, experiment: dict[str, Any]) -> dict[str, Any]:
    for run in experiment["runs"]:
        wait_for(client, run["id"])
    return client.get(f"{API}/experiments/{experiment['id']}").json()


def arrays(client: TestClient, run_id: str) -> dict[str, np.ndarray]:
    response = client.get(f"{API}/runs/{run_id}/weights", params={"format": "npz"})
    assert response.status_code == 200, response.text
    with np.load(io.BytesIO(response.content), allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files if npz[key].dtype.kind in "fc"}


def test_each_run_has_exactly_the_weights_of_its_spec_submitted_alone(client: TestClient) -> None:
    base = iris_spec(epochs=5)
    experiment = create(client, {"name": "opt", "base": base, "grid": GRID})
    assert [run["params"] for run in experiment["runs"]] == [
        {"optimizer": GRID["optimizer"][0], "training.seed": 0},
        {"optimizer": GRID["optimizer"][0], "training.seed": 1},
        {"optimizer": GRID["optimizer"][1], "training.seed": 0},
        {"optimizer": GRID["optimizer"][1], "training.seed": 1},
    ]
    done = wait_finished(client, experiment)
    assert done["status"] == "finished"
    for run in done["runs"]:
        stored = client.get(f"{API}/runs/{run['id']}").json()
        assert stored["experiment_id"] == experiment["id"]
        assert stored["name"].startswith("opt · optimizer=")
        alone_spec = {**base, "optimizer": run["params"]["optimizer"]}
        alone_spec["training"] = {**base["training"], "seed": run["params"]["training.seed"]}
        alone = wait_for(client, submit(client, alone_spec)["id"])
        mine, theirs = arrays(client, run["id"]), arrays(client, alone["id"])
        assert mine.keys() == theirs.keys() and mine
        for key in mine:
            assert mine[key].tobytes() == theirs[key].tobytes(), key
        spec_of = {k: v for k, v in stored["spec"].items() if k != "name"}
        assert spec_of == {k: v for k, v in alone["spec"].items() if k != "name"}


def test_summary_best_metrics_filter_and_plot(client: TestClient) -> None:
    experiment = create(client, {"name": "opt", "base": iris_spec(epochs=4), "grid": GRID})
    done = wait_finished(client, experiment)
    assert len(done["summary"]) == 2
    for row in done["summary"]:
        assert row["n"] == 2 and "training.seed" not in row["params"]
        losses = [
            run["best_metrics"]["val_loss"]
            for run in done["runs"]
            if run["params"]["optimizer"] == row["params"]["optimizer"]
        ]
        assert row["val_loss"]["mean"] == np.mean(losses)
        assert row["val_loss"]["std"] == np.std(losses, ddof=1)
        assert row["val_loss"]["min"] == min(losses)
    best = min(done["runs"], key=lambda run: run["best_metrics"]["val_loss"])
    assert done["best"] == {
        "run_id": best["id"],
        "metric": "val_loss",
        "value": best["best_metrics"]["val_loss"],
    }
    metrics = client.get(f"{API}/experiments/{experiment['id']}/metrics").json()["runs"]
    assert set(metrics) == {run["id"] for run in done["runs"]}
    assert metrics[best["id"]]["epoch"] == [1, 2, 3, 4]
    listed = client.get(f"{API}/runs", params={"experiment": experiment["id"]}).json()
    assert listed["total"] == 4
    assert {run["id"] for run in listed["items"]} == set(metrics)
    submit(client, iris_spec(epochs=1))
    assert client.get(f"{API}/runs").json()["total"] == 5
    page = client.get(f"{API}/experiments").json()
    assert page["total"] == 1 and page["items"][0]["id"] == experiment["id"]
    png = client.get(f"{API}/experiments/{experiment['id']}/plots/loss.png?width=640&height=400")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size == (640, 400)
    svg = client.get(f"{API}/experiments/{experiment['id']}/plots/loss.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")


def test_an_invalid_combination_creates_nothing(idle_client: TestClient) -> None:
    grid = {"optimizer.learning_rate": [0.1, -1.0], "training.seed": [0, 1]}
    response = idle_client.post(
        f"{API}/experiments", json={"name": "bad", "base": iris_spec(), "grid": grid}
    )
    assert response.status_code == 422, response.text
    text = response.text
    assert "combination 3 of 4" in text and "optimizer.learning_rate=-1.0" in text
    assert "learning_rate" in response.json()["detail"][0]["loc"]
    assert idle_client.get(f"{API}/runs").json()["total"] == 0
    assert idle_client.get(f"{API}/experiments").json()["total"] == 0


def test_an_unknown_path_and_too_many_runs_are_422(make_client: Any) -> None:
    client = make_client(executor="none", max_experiment_runs=3)
    unknown = client.post(
        f"{API}/experiments",
        json={"name": "x", "base": iris_spec(), "grid": {"optimizer.momentm": [0.1]}},
    )
    assert unknown.status_code == 422 and "optimizer.momentm" in unknown.text
    too_many = client.post(
        f"{API}/experiments",
        json={"name": "x", "base": iris_spec(), "grid": {"training.seed": [0, 1, 2, 3]}},
    )
    assert too_many.status_code == 422 and "ANNLAB_MAX_EXPERIMENT_RUNS" in too_many.text
    empty = client.post(
        f"{API}/experiments", json={"name": "x", "base": iris_spec(), "grid": {"training.seed": []}}
    )
    assert empty.status_code == 422
    layer = {"model.layers.0.units": [4, 0]}
    bad_layer = client.post(
        f"{API}/experiments", json={"name": "x", "base": iris_spec(), "grid": layer}
    )
    assert bad_layer.status_code == 422 and "combination 2 of 2" in bad_layer.text
    assert client.get(f"{API}/runs").json()["total"] == 0


def test_status_cancel_and_delete(idle_client: TestClient) -> None:
    experiment = create(
        idle_client, {"name": "c", "base": long_spec(), "grid": {"training.seed": [0, 1]}}
    )
    assert experiment["status"] == "queued"
    cancelled = idle_client.post(f"{API}/experiments/{experiment['id']}/cancel")
    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert {run["status"] for run in cancelled.json()["runs"]} == {"cancelled"}
    again = idle_client.post(f"{API}/experiments/{experiment['id']}/cancel")
    assert again.status_code == 409
    assert idle_client.delete(f"{API}/experiments/{experiment['id']}").status_code == 204
    assert idle_client.get(f"{API}/experiments/{experiment['id']}").status_code == 404
    assert idle_client.get(f"{API}/runs").json()["total"] == 0
    assert idle_client.get(f"{API}/experiments/nope").status_code == 404


def test_another_users_experiment_is_404(make_client: Any) -> None:
    from app.db.engine import transaction
    from app.db.users import create_user

    client = make_client(executor="none", auth=True)
    keys = []
    for name in ("ann", "bob"):
        with transaction(client.app.state.session_factory) as session:
            keys.append(create_user(session=session, name=name).key)
    ann, bob = ({"Authorization": f"Bearer {key}"} for key in keys)
    body = {"name": "mine", "base": iris_spec(), "grid": {"training.seed": [0]}}
    made = client.post(f"{API}/experiments", json=body, headers=ann)
    assert made.status_code == 202, made.text
    assert client.get(f"{API}/experiments/{made.json()['id']}", headers=bob).status_code == 404
    assert client.get(f"{API}/experiments", headers=bob).json()["total"] == 0
