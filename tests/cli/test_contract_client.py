"""Contract tests of `AnnlabClient` for the endpoints API.md adds and main does not
serve yet (stop, plots, snapshots, runs sort/tag/experiment, PATCH, CSV and
records predict, evaluate, ONNX, experiments, models): each asserts the exact
request (method, path, query, body, headers) and the parsing of a canned
API.md-shaped answer, on an `httpx.MockTransport`."""

from __future__ import annotations

import json

import httpx
import pytest

from app.client import AnnlabClient, ApiError, render_detail

from . import canned
from .conftest import MockApi, body


def test_every_request_carries_the_key_and_the_base_path(mock_api: MockApi) -> None:
    mock_api.add("GET", "/runs/run_1", canned.run())
    run = mock_api.client().get_run("run_1")
    request = mock_api.last
    assert str(request.url) == "http://annlab.test/api/v1/runs/run_1"
    assert request.headers["authorization"] == "Bearer secret"
    assert run.owner == "alice" and run.tags == {"team": "red"}
    assert run.best_metrics is not None and run.best_metrics.val_loss == 0.071
    assert run.duration_seconds == 2.0


def test_url_and_key_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNLAB_URL", "http://lab.example:9000/")
    monkeypatch.setenv("ANNLAB_API_KEY", "k-123")
    api = AnnlabClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"status": "ok"}))
    )
    assert api.base_url == "http://lab.example:9000"
    assert api._http.headers["authorization"] == "Bearer k-123"
    monkeypatch.delenv("ANNLAB_URL")
    monkeypatch.delenv("ANNLAB_API_KEY")
    plain = AnnlabClient()
    assert plain.base_url == "http://127.0.0.1:8000" and "authorization" not in plain._http.headers


def test_submit_sends_an_idempotency_key_and_retries_a_dropped_request_with_it() -> None:
    keys: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["idempotency-key"])
        if len(keys) == 1:
            raise httpx.ReadError("connection reset by peer")
        return httpx.Response(202, json=canned.run(status="queued"))

    api = AnnlabClient("http://annlab.test", transport=httpx.MockTransport(handle))
    assert api.submit_run(canned.SPEC).status == "queued"
    assert len(keys) == 2 and keys[0] == keys[1] and len(keys[0]) == 36


def test_list_runs_sends_only_the_filters_given(mock_api: MockApi) -> None:
    mock_api.add("GET", "/runs", {"items": [canned.run()], "total": 7})
    page = mock_api.client().list_runs(
        sort="best_val_loss", tag="team:red", experiment="exp_1", limit=5
    )
    assert dict(mock_api.last.url.params) == {
        "sort": "best_val_loss",
        "tag": "team:red",
        "experiment": "exp_1",
        "limit": "5",
    }
    assert page.total == 7 and page.items[0].id == "run_1"


def test_stop_update_snapshots_and_evaluate(mock_api: MockApi) -> None:
    api = mock_api.client()
    mock_api.add("POST", "/runs/run_1/stop", canned.run(status="running"), status=202)
    assert api.stop_run("run_1").status == "running"
    assert mock_api.last.content == b""
    mock_api.add("PATCH", "/runs/run_1", canned.run(name="renamed"))
    assert api.update_run("run_1", tags={"a": "b"}, name="renamed").name == "renamed"
    assert body(mock_api.last) == {"tags": {"a": "b"}, "name": "renamed"}
    mock_api.add("GET", "/runs/run_1/snapshots", {"epochs": [1, 2, 3, 5, 7, 10]})
    assert api.snapshots("run_1") == [1, 2, 3, 5, 7, 10]
    mock_api.add("POST", "/runs/run_1/evaluate", {"n": 30, "loss": 0.1, "accuracy": 0.9})
    assert api.evaluate("run_1", dataset="iris")["accuracy"] == 0.9
    assert body(mock_api.last) == {"dataset": "iris"}


def test_weights_formats_and_snapshot_epoch(mock_api: MockApi) -> None:
    mock_api.add("GET", "/runs/run_1/weights", b"\x08\x09onnx-bytes")
    api = mock_api.client()
    assert api.weights("run_1", format="onnx", epoch=50) == b"\x08\x09onnx-bytes"
    assert dict(mock_api.last.url.params) == {"format": "onnx", "epoch": "50"}
    api.weights("run_1")
    assert dict(mock_api.last.url.params) == {}


def test_predict_rows_records_and_csv(mock_api: MockApi) -> None:
    mock_api.add("POST", "/runs/run_1/predict", canned.PREDICTION)
    api = mock_api.client()
    prediction = api.predict("run_1", [[5.1, 3.5, 1.4, 0.2]], epoch=10)
    assert prediction.predictions == ["setosa", "virginica"]
    assert body(mock_api.last) == {"inputs": [[5.1, 3.5, 1.4, 0.2]]}
    assert dict(mock_api.last.url.params) == {"epoch": "10"}
    api.predict("run_1", records=[{"sepal_length": 5.1}])
    assert body(mock_api.last) == {"records": [{"sepal_length": 5.1}]}
    api.predict_csv("run_1", "sepal_length,sepal_width\n5.1,3.5\n")
    assert mock_api.last.headers["content-type"] == "text/csv"
    assert mock_api.last.content == b"sepal_length,sepal_width\n5.1,3.5\n"
    with pytest.raises(ValueError, match="exactly one"):
        api.predict("run_1")


@pytest.mark.parametrize(("kind", "format"), [("loss", "png"), ("decision-boundary", "svg")])
def test_plots(mock_api: MockApi, kind: str, format: str) -> None:
    mock_api.add("GET", f"/runs/run_1/plots/{kind}.{format}", b"\x89PNG...")
    content = mock_api.client().plot(
        "run_1", kind=kind, format=format, width=640, height=480, epoch=3
    )  # type: ignore[arg-type]
    assert content == b"\x89PNG..."
    assert dict(mock_api.last.url.params) == {"width": "640", "height": "480", "epoch": "3"}


def test_experiments(mock_api: MockApi) -> None:
    api = mock_api.client()
    mock_api.add("POST", "/experiments", canned.experiment(status="queued"), status=202)
    grid = {"optimizer": [{"type": "sgd"}, {"type": "adam"}], "training.seed": [0, 1]}
    created = api.create_experiment(name="optimizers on moons", base=canned.SPEC, grid=grid)
    assert body(mock_api.last) == {"name": "optimizers on moons", "base": canned.SPEC, "grid": grid}
    assert len(created.runs) == 4 and created.best is None
    mock_api.add("GET", "/experiments/exp_1", canned.experiment())
    finished = api.get_experiment("exp_1")
    assert finished.finished and finished.best is not None and finished.best.run_id == "run_3"
    assert finished.summary[1].val_loss is not None and finished.summary[1].val_loss.mean == 0.12
    mock_api.add(
        "GET",
        "/experiments/exp_1/metrics",
        {"runs": {"run_1": {"epoch": [1, 2], "train_loss": [0.9, 0.5]}}},
    )
    assert api.experiment_metrics("exp_1")["run_1"].train_loss == [0.9, 0.5]
    mock_api.add(
        "POST", "/experiments/exp_1/cancel", canned.experiment(status="cancelled"), status=202
    )
    cancelled = api.cancel_experiment("exp_1")
    assert cancelled is not None and cancelled.status == "cancelled"
    mock_api.add("DELETE", "/experiments/exp_1", httpx.Response(204))
    api.delete_experiment("exp_1")
    assert mock_api.last.method == "DELETE"


def test_models(mock_api: MockApi) -> None:
    api = mock_api.client()
    mock_api.add("POST", "/models", canned.model(), status=201)
    api.create_model("iris-classifier", description="the lab's iris model")
    assert body(mock_api.last) == {"name": "iris-classifier", "description": "the lab's iris model"}
    mock_api.add(
        "POST", "/models/iris-classifier/versions", canned.model()["versions"][1], status=201
    )
    version = api.create_version("iris-classifier", run_id="run_2", epoch=50)
    assert body(mock_api.last) == {"run_id": "run_2", "epoch": 50}
    assert (version.version, version.epoch) == (2, 50)
    mock_api.add("PUT", "/models/iris-classifier/aliases/production", {"production": 2})
    api.set_alias("iris-classifier", "production", version=2)
    assert body(mock_api.last) == {"version": 2}
    mock_api.add("GET", "/models/iris-classifier", canned.model())
    assert [v.version for v in api.versions("iris-classifier")] == [1, 2]
    mock_api.add("POST", "/models/iris-classifier/aliases/production/predict", canned.PREDICTION)
    assert (
        api.predict_model("iris-classifier", [[1, 2, 3, 4]], alias="production").predictions[0]
        == "setosa"
    )
    assert body(mock_api.last) == {"inputs": [[1, 2, 3, 4]]}
    mock_api.add("POST", "/models/iris-classifier/versions/1/predict", canned.PREDICTION)
    api.predict_model("iris-classifier", [[1, 2, 3, 4]], version=1)
    mock_api.add("GET", "/models/iris-classifier/versions/1/onnx", b"onnx")
    assert api.model_onnx("iris-classifier", 1) == b"onnx"
    mock_api.add("DELETE", "/models/iris-classifier/aliases/staging", httpx.Response(204))
    api.delete_alias("iris-classifier", "staging")
    mock_api.add("GET", "/models", {"items": [canned.model()], "total": 1})
    assert api.list_models().items[0].aliases == {"production": 2, "staging": 1}


def test_a_409_naming_the_model_is_the_exception_message(mock_api: MockApi) -> None:
    detail = "run 'run_2' is version 2 of model 'iris-classifier': delete the version first"
    mock_api.add("DELETE", "/runs/run_2", {"detail": detail}, status=409)
    with pytest.raises(ApiError) as caught:
        mock_api.client().delete_run("run_2")
    assert (caught.value.status, str(caught.value)) == (409, detail)


def test_error_rendering() -> None:
    fastapi_422 = [
        {
            "type": "extra_forbidden",
            "loc": ["body", "optimizer", "adam", "learning_rte"],
            "msg": "Extra inputs are not permitted",
        },
        {
            "type": "literal_error",
            "loc": ["query", "sort"],
            "msg": "Input should be 'created_at' or 'best_val_loss'",
        },
        {"type": "x", "loc": [], "msg": "the whole body"},
    ]
    assert render_detail(fastapi_422).splitlines() == [
        "optimizer.adam.learning_rte: Extra inputs are not permitted",
        "query.sort: Input should be 'created_at' or 'best_val_loss'",
        "the whole body",
    ]
    assert (
        render_detail({"error_code": "BAD_REQUEST", "message": "missing column x"})
        == "missing column x"
    )
    plain = httpx.MockTransport(lambda r: httpx.Response(502, text="Bad Gateway"))
    with pytest.raises(ApiError, match=r"^Bad Gateway$") as caught:
        AnnlabClient("http://annlab.test", transport=plain).get_run("run_1")
    assert caught.value.status == 502
    assert json.dumps(caught.value.detail) == '"Bad Gateway"'
