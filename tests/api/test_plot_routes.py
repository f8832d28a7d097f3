"""The plot routes: PNG of exactly the size asked, SVG, the bounds on the size, 422 for
a dataset that has no decision boundary, and a finished plot drawn once however often
it is asked for (counted by the renderer)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from .conftest import API, long_spec, submit, wait_for

TRAJECTORIES = {
    "function": "rosenbrock",
    "start": [-1.5, 2.0],
    "steps": 200,
    "optimizers": [
        {"type": "sgd", "learning_rate": 0.001, "momentum": 0.9},
        {"type": "adam", "learning_rate": 0.05},
    ],
}
BLOBS = {
    "dataset": "blobs",
    "model": {"layers": [{"units": 1, "activation": "step"}]},
    "loss": "mse",
    "optimizer": {"type": "sgd", "learning_rate": 0.01},
    "training": {"epochs": 20, "batch_size": None, "snapshots": [3, 5, 20]},
}


@pytest.fixture
def plots_client(make_client: Any) -> TestClient:
    """Plots rendered in threads (no process pool to start in a unit test)."""
    return make_client(plot_executor="thread")


def renders(client: TestClient) -> int:
    return int(client.app.state.plot_renderer.renders)  # type: ignore[attr-defined]


def finished_run(client: TestClient, spec: dict[str, Any]) -> str:
    run = submit(client, spec)
    assert wait_for(client, run["id"])["status"] == "succeeded"
    return run["id"]


def test_every_plot_as_png_of_the_size_asked_and_as_svg(plots_client: TestClient) -> None:
    run_id = finished_run(plots_client, BLOBS)
    requests = [
        ("GET", f"{API}/runs/{run_id}/plots/loss", None),
        ("GET", f"{API}/runs/{run_id}/plots/decision-boundary", None),
        ("POST", f"{API}/optimizers/trajectories", TRAJECTORIES),
    ]
    for method, path, body in requests:
        png = plots_client.request(
            method, f"{path}.png", params={"width": 640, "height": 360}, json=body
        )
        assert png.status_code == 200, png.text
        assert png.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(png.content)) as image:
            assert image.format == "PNG" and image.size == (640, 360)
        svg = plots_client.request(method, f"{path}.svg", json=body)
        assert svg.status_code == 200, svg.text
        assert svg.headers["content-type"].startswith("image/svg+xml")
        assert b"<svg" in svg.content[:500]


def test_sizes_outside_200_to_3000_are_422(plots_client: TestClient) -> None:
    run_id = finished_run(plots_client, BLOBS)
    for size in ({"width": 199}, {"height": 3001}, {"width": "wide"}):
        response = plots_client.get(f"{API}/runs/{run_id}/plots/loss.png", params=size)
        assert response.status_code == 422, response.text
        response = plots_client.post(
            f"{API}/optimizers/trajectories.svg", params=size, json=TRAJECTORIES
        )
        assert response.status_code == 422, response.text


def test_plot_refusals(plots_client: TestClient, make_client: Any) -> None:
    iris = finished_run(
        plots_client,
        BLOBS
        | {"dataset": "iris", "model": {"layers": [{"units": 3, "activation": "softmax"}]}}
        | {"loss": "cross_entropy"},
    )
    refused = plots_client.get(f"{API}/runs/{iris}/plots/decision-boundary.png")
    assert refused.status_code == 422 and "two features" in refused.json()["detail"]
    assert plots_client.get(f"{API}/runs/run_unknown/plots/loss.png").status_code == 404
    blobs = finished_run(plots_client, BLOBS)
    missing = plots_client.get(f"{API}/runs/{blobs}/plots/decision-boundary.png?epoch=4")
    assert missing.status_code == 404 and "[3, 5, 20]" in missing.json()["detail"]
    bad = plots_client.post(f"{API}/optimizers/trajectories.png", json={"function": "nope"})
    assert bad.status_code == 422
    far = plots_client.post(
        f"{API}/optimizers/trajectories.png", json=TRAJECTORIES | {"start": [1.7e308, 0.0]}
    )
    assert far.status_code == 422 and "too far out to plot" in far.json()["detail"]
    over = make_client(executor="none", max_trajectory_work=100, plot_executor="thread")
    too_much = over.post(f"{API}/optimizers/trajectories.png", json=TRAJECTORIES)
    assert too_much.status_code == 422 and "ANNLAB_MAX_TRAJECTORY_WORK" in too_much.text

    idle = make_client(executor="none", plot_executor="thread")
    queued = submit(idle, BLOBS)["id"]
    assert idle.get(f"{API}/runs/{queued}/plots/decision-boundary.png").status_code == 409
    empty = idle.get(f"{API}/runs/{queued}/plots/loss.png")  # "no epochs recorded yet"
    assert empty.status_code == 200 and empty.headers["content-type"] == "image/png"


def test_a_finished_plot_is_rendered_once(plots_client: TestClient) -> None:
    run_id = finished_run(plots_client, BLOBS)
    for path, body in (
        (f"{API}/runs/{run_id}/plots/loss.png", None),
        (f"{API}/runs/{run_id}/plots/decision-boundary.png?epoch=5", None),
        (f"{API}/runs/{run_id}/plots/decision-boundary.png", None),
        (f"{API}/optimizers/trajectories.png", TRAJECTORIES),
    ):
        method = "GET" if body is None else "POST"
        before = renders(plots_client)
        first = plots_client.request(method, path, json=body)
        second = plots_client.request(method, path, json=body)
        assert first.status_code == second.status_code == 200, first.text
        assert first.content == second.content
        assert renders(plots_client) == before + 1, path
    # another size is another plot
    before = renders(plots_client)
    assert plots_client.get(f"{API}/runs/{run_id}/plots/loss.png?width=300").status_code == 200
    assert renders(plots_client) == before + 1


def test_a_running_runs_loss_plot_is_drawn_afresh(plots_client: TestClient) -> None:
    run = submit(plots_client, long_spec(epochs=100_000))
    wait_for(plots_client, run["id"], lambda r: r["status"] == "running")
    before = renders(plots_client)
    for _ in range(2):
        assert plots_client.get(f"{API}/runs/{run['id']}/plots/loss.png").status_code == 200
    assert renders(plots_client) == before + 2
    assert plots_client.post(f"{API}/runs/{run['id']}/cancel").status_code == 202
    wait_for(plots_client, run["id"])


def test_openapi_documents_the_new_routes(make_client: Any) -> None:
    document = make_client(executor="none", auth=True).get("/openapi.json").json()
    paths = document["paths"]
    for path, method, media in [
        ("/runs/{run_id}/plots/loss.png", "get", "image/png"),
        ("/runs/{run_id}/plots/loss.svg", "get", "image/svg+xml"),
        ("/runs/{run_id}/plots/decision-boundary.png", "get", "image/png"),
        ("/runs/{run_id}/plots/decision-boundary.svg", "get", "image/svg+xml"),
        ("/optimizers/trajectories.png", "post", "image/png"),
        ("/optimizers/trajectories.svg", "post", "image/svg+xml"),
    ]:
        responses = paths[API + path][method]["responses"]
        assert list(responses["200"]["content"]) == [media], path
        for code, response in responses.items():
            if code != "200":  # errors are JSON, whatever the route's media type
                assert list(response["content"]) == ["application/json"], (path, code)
        names = {p["name"] for p in paths[API + path][method].get("parameters", [])}
        assert {"width", "height"} <= names
    schemas = {
        "/runs/{run_id}/snapshots": ("get", "SnapshotsOut"),
        "/runs/{run_id}/backprop": ("post", "BackpropOut"),
        "/runs/{run_id}/decision-boundary": ("get", "DecisionBoundaryOut"),
    }
    for path, (method, schema) in schemas.items():
        content = paths[API + path][method]["responses"]["200"]["content"]["application/json"]
        assert schema in str(content["schema"]), path
    assert "FittedCurveOut" in str(paths[API + "/runs/{run_id}/decision-boundary"])
    for path in ("/runs/{run_id}/weights", "/runs/{run_id}/predict"):
        operation = next(iter(paths[API + path].values()))
        assert "epoch" in {p["name"] for p in operation["parameters"]}, path
