"""Contract tests of the `annlab` commands for endpoints main does not serve yet:
the request each command sends and how it renders a canned API.md answer
(`httpx.MockTransport` behind the commands' client)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from . import canned
from .conftest import MockApi, body, flat


def test_runs_sorted_by_best_val_loss_render_the_best_metrics(
    run_cli: Any, mock_api: MockApi
) -> None:
    mock_api.add(
        "GET",
        "/runs",
        {"items": [canned.run("run_a"), canned.run("run_b", status="running")], "total": 12},
    )
    result = run_cli(
        ["runs", "--sort", "best_val_loss", "--tag", "team:red", "--limit", "2"], mock_api
    )
    assert result.exit_code == 0, result.output
    assert dict(mock_api.last.url.params) == {
        "sort": "best_val_loss",
        "tag": "team:red",
        "limit": "2",
    }
    lines = result.stdout.splitlines()
    assert lines[0].strip() == "runs (2 of 12)"
    row = next(line for line in lines if "run_a" in line)
    # best_metrics (not the last epoch's): val_loss 0.071, val_accuracy 98.3 %, best epoch 120
    assert [cell.strip() for cell in row.strip("│ ").split("│")] == [
        "run_a",
        "adam on iris",
        "succeeded",
        "iris",
        "200/200",
        "0.071",
        "98.3%",
        "120",
        "2026-12-01 19:00",
    ]


def test_an_unknown_sort_key_is_the_servers_422(run_cli: Any, mock_api: MockApi) -> None:
    detail = [
        {
            "loc": ["query", "sort"],
            "msg": "unknown sort key 'best'; known: created_at, best_val_loss, best_val_accuracy, duration",
            "type": "value_error",
        }
    ]
    mock_api.add("GET", "/runs", {"detail": detail}, status=422)
    result = run_cli(["runs", "--sort", "best"], mock_api)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: query.sort: {detail[0]['msg']}"


def test_stop(run_cli: Any, mock_api: MockApi) -> None:
    mock_api.add("POST", "/runs/run_1/stop", canned.run(status="running"), status=202)
    result = run_cli(["stop", "run_1"], mock_api)
    assert (result.exit_code, result.stdout.strip()) == (0, "stopping run run_1 (now running)")
    assert mock_api.last.method == "POST" and mock_api.last.url.path == "/api/v1/runs/run_1/stop"
    stopped = json.loads(run_cli(["stop", "run_1", "--json"], mock_api).stdout)
    assert stopped["id"] == "run_1"


def test_show_renders_tags_best_metrics_and_the_experiment(run_cli: Any, mock_api: MockApi) -> None:
    mock_api.add("GET", "/runs/run_1", canned.run(experiment_id="exp_1", stop_reason="stopped"))
    out = run_cli(["show", "run_1"], mock_api).stdout
    assert "best metrics  loss 0.06  val_loss 0.071  acc 97.0%  val_acc 98.3%" in out
    assert "tags          team=red" in out and "experiment    exp_1" in out
    assert "stop reason   stopped" in out


def test_weights_onnx_and_plots_write_the_bytes(
    run_cli: Any, mock_api: MockApi, tmp_path: Path
) -> None:
    mock_api.add("GET", "/runs/run_1/weights", b"onnx-model")
    mock_api.add("GET", "/runs/run_1/plots/loss.png", b"\x89PNG\r\n")
    mock_api.add("GET", "/runs/run_1/plots/decision-boundary.svg", b"<svg/>")
    assert (
        run_cli(
            ["weights", "run_1", "-o", str(tmp_path / "m.onnx"), "--epoch", "7"], mock_api
        ).exit_code
        == 0
    )
    assert dict(mock_api.last.url.params) == {"format": "onnx", "epoch": "7"}
    assert (tmp_path / "m.onnx").read_bytes() == b"onnx-model"
    assert (
        run_cli(
            ["plot", "run_1", "-o", str(tmp_path / "loss.png"), "--width", "640"], mock_api
        ).exit_code
        == 0
    )
    assert dict(mock_api.last.url.params) == {"width": "640"}
    assert (tmp_path / "loss.png").read_bytes() == b"\x89PNG\r\n"
    result = run_cli(
        ["plot", "run_1", "--kind", "decision-boundary", "-o", str(tmp_path / "b.svg")], mock_api
    )
    assert result.exit_code == 0 and (tmp_path / "b.svg").read_bytes() == b"<svg/>"
    bad = run_cli(["plot", "run_1", "--kind", "weights", "-o", str(tmp_path / "x.png")], mock_api)
    assert bad.exit_code == 2 and "choose loss or decision-boundary" in flat(bad.stderr)
    assert run_cli(["plot", "run_1", "-o", str(tmp_path / "x.jpg")], mock_api).exit_code == 2
    mock_api.add(
        "GET",
        "/runs/run_x/plots/decision-boundary.png",
        {"detail": "decision-boundary: dataset 'iris' has 4 features, not 2"},
        status=422,
    )
    refused = run_cli(
        ["plot", "run_x", "--kind", "decision-boundary", "-o", str(tmp_path / "y.png")], mock_api
    )
    assert refused.exit_code == 1 and "has 4 features, not 2" in refused.stderr
    assert not (tmp_path / "y.png").exists()


def grid_file(tmp_path: Path) -> Path:
    path = tmp_path / "grid.json"
    path.write_text(
        json.dumps(
            {
                "name": "optimizers on moons",
                "base": canned.SPEC,
                "grid": canned.experiment()["grid"],
            }
        )
    )
    return path


def test_experiment_follow_prints_a_line_per_run_then_the_summary(
    run_cli: Any, mock_api: MockApi, tmp_path: Path
) -> None:
    mock_api.add(
        "POST", "/experiments", canned.experiment(status="queued", run_status="queued"), status=202
    )
    halfway = canned.experiment(status="running", run_status="running")
    halfway["runs"][0]["status"] = "succeeded"
    mock_api.add("GET", "/experiments/exp_1", halfway, canned.experiment())
    result = run_cli(
        ["experiment", str(grid_file(tmp_path)), "--follow", "--interval", "0.1"], mock_api
    )
    assert result.exit_code == 0, result.output
    assert body(mock_api.sent("POST", "/experiments")[0])["grid"] == canned.experiment()["grid"]
    assert len(mock_api.sent("GET", "/experiments/exp_1")) == 2
    progress = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert progress[0].startswith("[1/4] run_1 succeeded")
    assert [line.split()[0] for line in progress] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert 'optimizer={"type": "adam"}, training.seed=0' in progress[2]
    assert "summary over seeds" in result.stdout
    assert "0.12 ± 0.01414  (0.11 … 0.13)" in result.stdout
    assert "best: run run_3 (val_loss 0.11)" in result.stdout
    assert "run_3 ★" in result.stdout


def test_experiment_with_a_failed_run_exits_1(
    run_cli: Any, mock_api: MockApi, tmp_path: Path
) -> None:
    failed = canned.experiment()
    failed["runs"][1]["status"] = "failed"
    mock_api.add("POST", "/experiments", failed, status=202)
    assert run_cli(["experiment", str(grid_file(tmp_path)), "--follow"], mock_api).exit_code == 1


def test_experiment_without_follow_and_by_id(
    run_cli: Any, mock_api: MockApi, tmp_path: Path
) -> None:
    mock_api.add(
        "POST", "/experiments", canned.experiment(status="queued", run_status="queued"), status=202
    )
    created = run_cli(["experiment", str(grid_file(tmp_path))], mock_api)
    assert created.exit_code == 0
    assert "created experiment exp_1: 4 runs" in created.stderr
    assert "follow it with: annlab experiment exp_1 --follow" in created.stderr
    mock_api.add("GET", "/experiments/exp_1", canned.experiment())
    shown = run_cli(["experiment", "exp_1", "--json"], mock_api)
    assert json.loads(shown.stdout)["best"]["run_id"] == "run_3"


def test_an_experiment_file_without_a_grid_is_a_usage_error(
    run_cli: Any, mock_api: MockApi, tmp_path: Path
) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"name": "x", "base": {}, "grids": {}}))
    result = run_cli(["experiment", str(path)], mock_api)
    assert result.exit_code == 2
    assert "missing grid; unknown grids (expected name, base, grid)" in flat(result.stderr)
    assert mock_api.requests == []


def test_models_commands(run_cli: Any, mock_api: MockApi) -> None:
    mock_api.add("GET", "/models", {"items": [canned.model()], "total": 1})
    listed = run_cli(["models", "list"], mock_api)
    assert "iris-classifier" in listed.stdout and "production→2, staging→1" in listed.stdout
    mock_api.add("GET", "/models/iris-classifier", canned.model())
    shown = run_cli(["models", "show", "iris-classifier"], mock_api).stdout
    row = next(line for line in shown.splitlines() if "run_2" in line)
    assert "production" in row and "50" in row and "val_acc 98.3%" in row
    mock_api.add("POST", "/models", canned.model(), status=201)
    assert (
        run_cli(["models", "create", "iris-classifier", "--description", "d"], mock_api).exit_code
        == 0
    )
    assert body(mock_api.last) == {"name": "iris-classifier", "description": "d"}
    mock_api.add(
        "POST", "/models/iris-classifier/versions", canned.model()["versions"][1], status=201
    )
    version = run_cli(["models", "version", "iris-classifier", "run_2", "--epoch", "50"], mock_api)
    assert version.stdout.strip() == "iris-classifier version 2 ← run run_2"
    assert body(mock_api.last) == {"run_id": "run_2", "epoch": 50}
    mock_api.add("PUT", "/models/iris-classifier/aliases/production", {"production": 2})
    moved = run_cli(["models", "alias", "iris-classifier", "production", "2"], mock_api)
    assert moved.stdout.strip() == "iris-classifier@production → version 2"
    assert (mock_api.last.method, body(mock_api.last)) == ("PUT", {"version": 2})
    mock_api.add("DELETE", "/models/iris-classifier/aliases/staging", httpx.Response(204))
    assert (
        run_cli(["models", "alias", "iris-classifier", "staging", "--delete"], mock_api).exit_code
        == 0
    )
    assert mock_api.last.method == "DELETE"
    assert run_cli(["models", "alias", "iris-classifier", "staging"], mock_api).exit_code == 2


def test_models_predict_by_alias_from_csv(run_cli: Any, mock_api: MockApi, tmp_path: Path) -> None:
    mock_api.add("GET", "/models/iris-classifier", canned.model())
    mock_api.add("GET", "/runs/run_2", canned.run("run_2"))
    mock_api.add("GET", "/datasets/iris", canned.IRIS)
    mock_api.add("POST", "/models/iris-classifier/aliases/production/predict", canned.PREDICTION)
    csv = tmp_path / "rows.csv"
    csv.write_text(
        "sepal_width,sepal_length,petal_length,petal_width\n3.5,5.1,1.4,0.2\n3.0,6.7,5.2,2.3\n"
    )
    result = run_cli(
        ["models", "predict", "iris-classifier@production", "--csv", str(csv)], mock_api
    )
    assert result.exit_code == 0, result.output
    assert body(mock_api.last) == {"inputs": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}
    assert "P(setosa)" in result.stdout and "virginica" in result.stdout
    missing = run_cli(["models", "predict", "iris-classifier@canary", "--csv", str(csv)], mock_api)
    assert missing.exit_code == 1
    assert (
        "model 'iris-classifier' has no alias 'canary' (aliases: ['production', 'staging'])"
        in missing.stderr
    )
    assert (
        run_cli(["models", "predict", "iris-classifier", "--csv", str(csv)], mock_api).exit_code
        == 2
    )


def test_the_key_option_is_sent_as_a_bearer_token(run_cli: Any, monkeypatch: Any) -> None:
    seen: list[httpx.Request] = []
    from app import cli_client
    from app.client import AnnlabClient

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=canned.run())

    monkeypatch.setattr(
        cli_client,
        "make_client",
        lambda url, key: AnnlabClient(url, key, transport=httpx.MockTransport(handle)),
    )
    assert run_cli(["show", "run_1", "--url", "http://lab:1234", "--key", "abc"]).exit_code == 0
    assert str(seen[0].url) == "http://lab:1234/api/v1/runs/run_1"
    assert seen[0].headers["authorization"] == "Bearer abc"


def test_follow_of_a_run_that_ends_before_the_stream_shows_its_last_epoch(
    run_cli: Any, mock_api: MockApi
) -> None:
    """The run was queued at the first GET and had finished when the stream began, so
    the stream's only event is its final status: the bar still shows 200/200."""
    queued = canned.run(status="queued", progress={"epoch": 0, "epochs": 200, "step": 0})
    mock_api.add("GET", "/runs/run_1", queued, canned.run())
    final_status = 'id: s1\nevent: status\ndata: {"status": "succeeded", "stop_reason": "completed", "error": null}\n\n'
    mock_api.add(
        "GET",
        "/runs/run_1/events",
        httpx.Response(200, headers={"content-type": "text/event-stream"}, content=final_status),
    )
    result = run_cli(["follow", "run_1"], mock_api)
    assert result.exit_code == 0, result.output
    assert "status: succeeded (completed)" in result.stderr
    assert "200/200" in result.stderr, result.stderr
    assert "val_loss 0.09" in result.stderr
