"""The client and the `annlab` commands against a real `annlab serve`, for what
main serves today: datasets, submit (with Idempotency-Key), follow, show, runs,
cancel, weights (JSON, .npz), predict (CSV, JSON), exit codes, and a dropped
event stream resumed without gaps or repeats.

The server on main sends its events without ``id:`` and replays the run's whole
history on every connection (Last-Event-ID is ignored): the client's resume
then rests on skipping what it has already yielded; `test_contract_events`
covers a server that honours Last-Event-ID.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.client import AnnlabClient, ApiError
from app.client_types import ProgressEvent, StatusEvent
from tests.e2e.server import iris_spec, long_spec, wait_status

from .conftest import flat
from .proxy import CuttingProxy

pytestmark = pytest.mark.slow


def write_spec(tmp_path: Path, spec: dict[str, Any], name: str = "spec.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(spec))
    return path


def finished_run(api: AnnlabClient) -> str:
    run = api.submit_run(iris_spec())
    assert api.wait(run.id).status == "succeeded"
    return run.id


# ------------------------------------------------------------------ the client


def test_datasets_list_get_and_csv_upload(api: AnnlabClient) -> None:
    assert {"iris", "xor", "moons"} <= {dataset.id for dataset in api.list_datasets().items}
    assert api.get_dataset("iris").feature_names[0] == "sepal_length"
    uploaded = api.upload_csv(
        "x1,x2,label\n0,0,a\n0,1,b\n1,0,b\n1,1,a\n",
        target="label",
        task="classification",
        name="xor-csv",
    )
    assert (uploaded.n_samples, uploaded.n_features, uploaded.class_names) == (4, 2, ["a", "b"])
    assert api.get_dataset(uploaded.id).name == "xor-csv"


def test_a_refused_request_is_one_api_error_with_the_servers_message(api: AnnlabClient) -> None:
    spec = iris_spec()
    spec["optimizer"]["learning_rte"] = 0.1
    spec["training"]["epochs"] = 0
    with pytest.raises(ApiError) as caught:
        api.submit_run(spec)
    assert caught.value.status == 422
    assert str(caught.value).splitlines() == [
        "optimizer.adam.learning_rte: Extra inputs are not permitted",
        "training.epochs: Input should be greater than or equal to 1",
    ]
    with pytest.raises(ApiError, match="run 'run_nope' not found") as missing:
        api.get_run("run_nope")
    assert missing.value.status == 404


def test_an_unreachable_server_is_an_api_error_without_status() -> None:
    with AnnlabClient("http://127.0.0.1:9", timeout=2) as api, pytest.raises(ApiError) as caught:
        api.get_run("run_x")
    assert caught.value.status is None
    assert "cannot reach annlab at http://127.0.0.1:9" in str(caught.value)


def test_submit_with_the_same_idempotency_key_returns_the_same_run(api: AnnlabClient) -> None:
    first = api.submit_run(iris_spec(), idempotency_key="client-test-key-1")
    again = api.submit_run(iris_spec(), idempotency_key="client-test-key-1")
    other = api.submit_run(iris_spec())  # a fresh key each call: a new run
    assert again.id == first.id != other.id


def test_events_yield_every_epoch_once_then_the_final_status(api: AnnlabClient) -> None:
    run = api.submit_run(iris_spec(epochs=25))
    events = list(api.events(run.id))
    epochs = [event.epoch for event in events if isinstance(event, ProgressEvent)]
    statuses = [event.status for event in events if isinstance(event, StatusEvent)]
    assert epochs == list(range(1, 26))
    assert statuses[-1] == "succeeded" and isinstance(events[-1], StatusEvent)
    assert len(statuses) == len(set(statuses))
    assert api.metrics(run.id).epoch == epochs


def test_a_dropped_event_stream_resumes_without_gaps_or_repeats(
    api: AnnlabClient, server: Any
) -> None:
    run = api.submit_run(long_spec(epochs=300, name="cli resume"))
    reconnects: list[tuple[int, str]] = []
    with (
        CuttingProxy(server.port, cut_first_after=2500) as proxy,
        AnnlabClient(proxy.url) as through,
    ):
        events = list(
            through.events(
                run.id, backoff=0.05, on_reconnect=lambda n, e: reconnects.append((n, repr(e)))
            )
        )
        assert proxy.cuts == 1 and proxy.connections >= 2
    assert len(reconnects) == 1, reconnects
    epochs = [event.epoch for event in events if isinstance(event, ProgressEvent)]
    assert epochs == list(range(1, 301))
    assert [e.status for e in events if isinstance(e, StatusEvent)][-1] == "succeeded"


# ------------------------------------------------------------------ the commands


def test_submit_follow_shows_the_run_to_its_end_and_exits_0(
    run_cli: Any, server: Any, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path, iris_spec(epochs=20))
    result = run_cli(["submit", str(spec), "--follow", "--url", server.base_url])
    assert result.exit_code == 0, result.output
    # (today's server polls the database, so a short run may go queued → succeeded
    # without a "running" in between)
    assert "status: succeeded (completed)" in result.stderr
    assert "20/20" in result.stderr  # the progress bar's last state
    assert "succeeded (completed) at epoch 20/20" in result.stdout


def test_follow_of_a_finished_run_shows_its_bar_and_final_status(
    run_cli: Any, server: Any, api: AnnlabClient
) -> None:
    run_id = finished_run(api)
    result = run_cli(["follow", run_id, "--url", server.base_url])
    assert result.exit_code == 0, result.output
    epochs = api.get_run(run_id).progress.epochs
    assert f"{epochs}/{epochs}" in result.stderr
    assert result.stderr.count("status: succeeded (completed)") == 1


def test_submit_follow_json_prints_the_final_run(run_cli: Any, server: Any, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, iris_spec(epochs=5))
    result = run_cli(["submit", str(spec), "-f", "--json", "--url", server.base_url])
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert (run["status"], run["progress"]["epoch"]) == ("succeeded", 5)


def test_a_failed_run_exits_1_with_its_error(run_cli: Any, server: Any, tmp_path: Path) -> None:
    diverging = {
        "dataset": "sine",
        "model": {"layers": [{"units": 1, "activation": "linear"}]},
        "optimizer": {"type": "sgd", "learning_rate": 1e6},
        "training": {"epochs": 50, "standardize": False},
    }
    result = run_cli(
        ["submit", str(write_spec(tmp_path, diverging)), "--follow", "--url", server.base_url]
    )
    assert result.exit_code == 1
    assert "failed (diverged)" in result.stdout
    assert "loss became NaN/infinite at epoch 1" in result.stdout


def test_api_errors_exit_1_and_usage_errors_exit_2(
    run_cli: Any, server: Any, tmp_path: Path
) -> None:
    bad = iris_spec()
    bad["optimizer"]["learning_rte"] = 1
    refused = run_cli(["submit", str(write_spec(tmp_path, bad)), "--url", server.base_url])
    assert refused.exit_code == 1
    assert "error: optimizer.adam.learning_rte: Extra inputs are not permitted" in refused.stderr
    unknown = run_cli(["show", "run_nope", "--url", server.base_url])
    assert (unknown.exit_code, unknown.stderr.strip()) == (1, "error: run 'run_nope' not found")
    assert (
        run_cli(["submit", str(tmp_path / "missing.json"), "--url", server.base_url]).exit_code == 2
    )
    (tmp_path / "broken.json").write_text("{not json")
    broken = run_cli(["submit", str(tmp_path / "broken.json"), "--url", server.base_url])
    assert broken.exit_code == 2 and "is not JSON: Expecting property name" in flat(broken.stderr)
    assert run_cli(["weights", "run_x", "-o", str(tmp_path / "w.txt")]).exit_code == 2
    assert run_cli(["runs", "--limit", "0"]).exit_code == 2
    assert run_cli(["no-such-command"]).exit_code == 2


def test_show_and_runs_render_the_run(run_cli: Any, api: AnnlabClient, server: Any) -> None:
    run_id = finished_run(api)
    shown = run_cli(["show", run_id, "--url", server.base_url])
    assert shown.exit_code == 0
    assert run_id in shown.stdout and "8 relu → 3 softmax" in shown.stdout
    assert "adam learning_rate=0.01" in shown.stdout
    listed = run_cli(["runs", "--status", "succeeded", "--limit", "100", "--url", server.base_url])
    assert listed.exit_code == 0 and run_id in listed.stdout
    as_json = json.loads(
        run_cli(["runs", "--json", "--limit", "100", "--url", server.base_url]).stdout
    )
    assert run_id in {item["id"] for item in as_json["items"]}


def test_cancel_a_running_run_then_cancel_again_is_409(
    run_cli: Any, api: AnnlabClient, server: Any
) -> None:
    run = api.submit_run(long_spec(epochs=100_000, name="cli cancel"))
    result = run_cli(["cancel", run.id, "--url", server.base_url])
    assert result.exit_code == 0 and f"cancelling run {run.id}" in result.stdout
    with server.client() as http:
        assert wait_status(http, run.id)["status"] == "cancelled"
    again = run_cli(["cancel", run.id, "--url", server.base_url])
    assert again.exit_code == 1 and "already finished" in again.stderr
    followed = run_cli(["follow", run.id, "--url", server.base_url])
    assert followed.exit_code == 1 and "cancelled" in followed.stdout


def test_weights_by_suffix_equal_the_apis(
    run_cli: Any, api: AnnlabClient, server: Any, tmp_path: Path
) -> None:
    run_id = finished_run(api)
    npz, document = tmp_path / "model.npz", tmp_path / "model.json"
    assert run_cli(["weights", run_id, "-o", str(npz), "--url", server.base_url]).exit_code == 0
    assert (
        run_cli(["weights", run_id, "-o", str(document), "--url", server.base_url]).exit_code == 0
    )
    assert npz.read_bytes() == api.weights(run_id, format="npz")
    with np.load(io.BytesIO(npz.read_bytes()), allow_pickle=False) as archive:
        assert archive.files
    assert json.loads(document.read_text()) == api.weights_document(run_id)
    queued = api.submit_run(long_spec(epochs=100_000, name="cli weights 409"))
    early = run_cli(
        ["weights", queued.id, "-o", str(tmp_path / "early.npz"), "--url", server.base_url]
    )
    api.cancel_run(queued.id)
    assert early.exit_code == 1 and "weights exist once it has succeeded" in early.stderr


def test_predict_from_csv_matches_columns_by_name(
    run_cli: Any, api: AnnlabClient, server: Any, tmp_path: Path
) -> None:
    run_id = finished_run(api)
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    expected = api.predict(run_id, rows)
    # Columns in another order, the target column beside them, semicolons.
    csv = tmp_path / "rows.csv"
    csv.write_text(
        "petal_width;species;sepal_length;petal_length;sepal_width\n"
        + "".join(f"{r[3]};x;{r[0]};{r[2]};{r[1]}\n" for r in rows)
    )
    result = run_cli(
        ["predict", run_id, "--csv", str(csv), "--output", "json", "--url", server.base_url]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == expected.model_dump(mode="json")
    assert "ignored columns that are not features: species" in result.stderr
    table = run_cli(["predict", run_id, "--csv", str(csv), "--url", server.base_url])
    assert "P(setosa)" in table.stdout and expected.predictions[0] in table.stdout
    (tmp_path / "short.csv").write_text("sepal_length,sepal_width\n1,2\n")
    short = run_cli(
        ["predict", run_id, "--csv", str(tmp_path / "short.csv"), "--url", server.base_url]
    )
    assert short.exit_code == 2 and "lacks the feature column(s) petal_length, petal_width" in flat(
        short.stderr
    )


def test_predict_from_json_rows(
    run_cli: Any, api: AnnlabClient, server: Any, tmp_path: Path
) -> None:
    run_id = finished_run(api)
    rows = [[5.1, 3.5, 1.4, 0.2]]
    (tmp_path / "rows.json").write_text(json.dumps({"inputs": rows}))
    result = run_cli(
        [
            "predict",
            run_id,
            "--json",
            str(tmp_path / "rows.json"),
            "--output",
            "csv",
            "--url",
            server.base_url,
        ]
    )
    assert result.exit_code == 0, result.output
    header, line = result.stdout.strip().splitlines()
    assert header == "prediction,p_setosa,p_versicolor,p_virginica"
    assert line.split(",")[0] == api.predict(run_id, rows).predictions[0]
    wide = run_cli(
        ["predict", run_id, "--json", "-", "--url", server.base_url], input="[[1, 2, 3]]"
    )
    assert wide.exit_code == 1 and "each row must have 4 numbers" in wide.stderr


def test_follow_through_a_dropped_connection_reconnects_and_finishes(
    run_cli: Any, api: AnnlabClient, server: Any
) -> None:
    run = api.submit_run(long_spec(epochs=200, name="cli follow resume"))
    # The command's first connection carries GET /runs/{id} (~1.5 kB) and then the
    # event stream, cut a few events in.
    with CuttingProxy(server.port, cut_first_after=4000) as proxy:
        result = run_cli(["follow", run.id, "--url", proxy.url])
        assert proxy.cuts == 1
    assert result.exit_code == 0, result.output
    assert "connection lost" in result.stderr and "reconnecting (attempt 1)" in result.stderr
    assert "200/200" in result.stderr
    assert f"run {run.id} succeeded (completed) at epoch 200/200" in result.stdout
