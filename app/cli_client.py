"""The terminal client: `annlab submit|follow|runs|show|stop|cancel|delete|predict|
weights|plot|experiment|models`, each one call of `app.client.AnnlabClient`.

Exit codes: 0 the run (or experiment) succeeded or the request was done; 1 a
run failed or was cancelled, or the API refused the request (its message on
stderr); 2 bad usage (typer's own, kept); 130 detached from a followed run by
Ctrl-C (the run goes on; the message says how to re-attach).

Human tables go to stdout, progress and notes to stderr, so ``--json`` output
(or a table) can be piped while the bar stays on the terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, cast

import typer

from app.cli_common import (
    DETACHED,
    CancelOption,
    JsonOption,
    KeyOption,
    RunArgument,
    UrlOption,
    answer,
    detach_or_cancel,
    echo_json,
    exit_for,
    fail,
    stderr,
    stdout,
)
from app.cli_input import read_json_file, rows_for_features
from app.cli_render import (
    RunProgress,
    outcome_line,
    prediction_table,
    run_details,
    runs_table,
    status_text,
)
from app.client import AnnlabClient, ApiError, PlotFormat, PlotKind, WeightsFormat
from app.client_types import Prediction, Run


def make_client(url: str | None, key: str | None) -> AnnlabClient:
    """The client every command uses (tests swap it for one on an `httpx.MockTransport`)."""
    return AnnlabClient(url, key)


@contextmanager
def connect(url: str | None, key: str | None) -> Iterator[AnnlabClient]:
    """A client for one command; an `ApiError` becomes its message on stderr and exit 1."""
    try:
        with make_client(url, key) as api:
            yield api
    except ApiError as exc:
        fail(str(exc))


# --------------------------------------------------------------------- runs


def submit(
    spec: Annotated[Path, typer.Argument(help="The RunSpec as a JSON file.", metavar="SPEC.json")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Show the training live until it ends.")
    ] = False,
    cancel_on_interrupt: CancelOption = False,
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="Resend with the same key to get the same run, never a second one."),
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Submit a run; with --follow, a progress bar per epoch until it ends (exit 0 if it succeeded)."""
    document = read_json_file(spec)
    if not isinstance(document, dict):
        raise typer.BadParameter("the spec must be a JSON object", param_hint="SPEC.json")
    with connect(url, key) as api:
        run = api.submit_run(document, idempotency_key=idempotency_key)
        if not follow:
            if as_json:
                echo_json(run.model_dump(mode="json"))
            else:
                stdout().print(f"submitted run {run.id} ({status_text(run.status)})")
                stderr().print(f"follow it with: annlab follow {run.id}")
            return
        stderr().print(f"submitted run {run.id}")
        final = follow_run(api, run.id, cancel_on_interrupt=cancel_on_interrupt)
    report(final, as_json)


def follow(
    run_id: RunArgument,
    cancel_on_interrupt: CancelOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Follow a run's training until it ends (re-attaches after a Ctrl-C detach)."""
    with connect(url, key) as api:
        final = follow_run(api, run_id, cancel_on_interrupt=cancel_on_interrupt)
    report(final, as_json)


def follow_run(api: AnnlabClient, run_id: str, *, cancel_on_interrupt: bool) -> Run:
    """Show the run's events as a progress bar until it ends; Ctrl-C detaches (exit
    130, saying how to re-attach) or, with ``cancel_on_interrupt``, cancels."""
    err = stderr()
    run = api.get_run(run_id)
    # a finished run too: its stream is its history then its final status, so a run
    # that ended before this look (a short one on a busy server) shows its bar as well
    display = RunProgress(err, run)
    try:
        with display:

            def reconnecting(attempt: int, error: Exception | None) -> None:
                why = f" ({error})" if error is not None else ""
                display.note(f"[yellow]connection lost{why}; reconnecting (attempt {attempt})…[/]")

            for event in api.events(run_id, on_reconnect=reconnecting):
                display.show(event)
            final = api.get_run(run_id)
            # the bar at the run's final state (the epochs it reached, however the
            # stream went)
            display.finish(final)
            return final
    except KeyboardInterrupt:
        if detach_or_cancel(
            err,
            cancel_on_interrupt=cancel_on_interrupt,
            detached=f"detached from run {run_id}: it goes on on the server.\n"
            f"re-attach with: annlab follow {run_id}",
            cancel=lambda: api.cancel_run(run_id),
        ):
            err.print(f"interrupted: cancelling run {run_id}")
        return api.wait(run_id)


def report(run: Run, as_json: bool) -> None:
    answer(run, as_json, outcome_line(run))
    exit_for(run)


def runs(
    status: Annotated[str | None, typer.Option(help="Only runs in this status.")] = None,
    sort: Annotated[
        str | None,
        typer.Option(help="created_at, best_val_loss, best_val_accuracy, duration; '-' descends."),
    ] = None,
    dataset: Annotated[str | None, typer.Option(help="Only runs on this dataset.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only runs with this tag (key:value).")] = None,
    experiment: Annotated[str | None, typer.Option(help="Only this experiment's runs.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="At most this many.")] = 20,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """List runs as a table (newest first unless --sort)."""
    with connect(url, key) as api:
        page = api.list_runs(
            status=status, sort=sort, dataset=dataset, tag=tag, experiment=experiment, limit=limit
        )
    answer(page, as_json, runs_table(page.items, page.total))


def show(
    run_id: RunArgument, as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """One run: its model, status, progress and metrics."""
    with connect(url, key) as api:
        run = api.get_run(run_id)
    answer(run, as_json, run_details(run))


def stop(
    run_id: RunArgument, as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """Stop training at the next mini-batch and keep the model (it ends succeeded)."""
    with connect(url, key) as api:
        run = api.stop_run(run_id)
    _acknowledge(run, "stopping", as_json)


def cancel(
    run_id: RunArgument, as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """Cancel a queued or running run (its model is thrown away)."""
    with connect(url, key) as api:
        run = api.cancel_run(run_id)
    _acknowledge(run, "cancelling", as_json)


def _acknowledge(run: Run, verb: str, as_json: bool) -> None:
    answer(run, as_json, f"{verb} run {run.id} (now {status_text(run.status)})")


def delete(run_id: RunArgument, url: UrlOption = None, key: KeyOption = None) -> None:
    """Delete a run (a running one is cancelled first)."""
    with connect(url, key) as api:
        api.delete_run(run_id)
    stdout().print(f"deleted run {run_id}")


# ---------------------------------------------------------- the trained model

CsvOption = Annotated[
    Path | None,
    typer.Option(
        "--csv", help="Rows as CSV with a header of feature names (extra columns ignored)."
    ),
]
JsonInputOption = Annotated[
    Path | None,
    typer.Option(
        "--json",
        help='Rows as JSON: [[...], ...], {"inputs": ...} or {"records": ...}; "-" reads stdin.',
    ),
]
OutputOption = Annotated[
    str, typer.Option("--output", help="table, json (the API's answer) or csv.")
]
EpochOption = Annotated[
    int | None, typer.Option(min=1, help="A snapshot's epoch (default: the final model).")
]


def predict(
    run_id: RunArgument,
    csv: CsvOption = None,
    rows: JsonInputOption = None,
    epoch: EpochOption = None,
    output: OutputOption = "table",
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Predict rows from a CSV or JSON file with a run's trained model."""
    check_output(output)
    with connect(url, key) as api:
        run = api.get_run(run_id)
        dataset = api.get_dataset(run.dataset)
        inputs, records = load_rows(csv, rows, dataset.feature_names)
        prediction = api.predict(run_id, inputs, records=records, epoch=epoch)
    show_prediction(prediction, dataset.class_names, output)


def check_output(output: str) -> None:
    if output not in ("table", "json", "csv"):
        raise typer.BadParameter("choose table, json or csv", param_hint="--output")


def load_rows(
    csv: Path | None, rows: Path | None, feature_names: list[str]
) -> tuple[list[list[float]] | None, list[dict[str, float]] | None]:
    if (csv is None) == (rows is None):
        raise typer.BadParameter("give exactly one of --csv FILE or --json FILE")
    if csv is not None:
        inputs, ignored = rows_for_features(csv, feature_names)
        if ignored:
            stderr().print(f"ignored columns that are not features: {', '.join(ignored)}")
        return inputs, None
    document = read_json_file(rows) if rows is not None else None
    if isinstance(document, dict) and set(document) == {"records"}:
        return None, document["records"]
    if isinstance(document, dict) and set(document) == {"inputs"}:
        return document["inputs"], None
    if isinstance(document, list):
        return document, None
    raise typer.BadParameter(
        'expected [[...], ...], {"inputs": ...} or {"records": ...}', param_hint="--json"
    )


def show_prediction(prediction: Prediction, class_names: list[str] | None, output: str) -> None:
    if output == "json":
        echo_json(prediction.model_dump(mode="json"))
    elif output == "csv":
        import csv as csv_module

        writer = csv_module.writer(sys.stdout, lineterminator="\n")
        width = len(prediction.outputs[0]) if prediction.outputs else 0
        names = class_names if class_names and len(class_names) == width else None
        writer.writerow(["prediction", *(f"p_{n}" for n in names or range(width))])
        for predicted, outputs in zip(prediction.predictions, prediction.outputs, strict=True):
            writer.writerow([predicted, *outputs])
    else:
        stdout().print(prediction_table(prediction, class_names))


WEIGHT_SUFFIXES = {".json": "json", ".npz": "npz", ".onnx": "onnx"}


def weights(
    run_id: RunArgument,
    out: Annotated[Path, typer.Option("--output", "-o", help="FILE.json, FILE.npz or FILE.onnx.")],
    epoch: EpochOption = None,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Download a run's weights; the format follows the file's suffix."""
    format = WEIGHT_SUFFIXES.get(out.suffix.lower())
    if format is None:
        raise typer.BadParameter("the file must end in .json, .npz or .onnx", param_hint="-o")
    with connect(url, key) as api:
        content = api.weights(run_id, format=cast(WeightsFormat, format), epoch=epoch)
    out.write_bytes(content)
    stdout().print(f"wrote {out} ({len(content):,} bytes, {format})")


def plot(
    run_id: RunArgument,
    out: Annotated[Path, typer.Option("--output", "-o", help="FILE.png or FILE.svg.")],
    kind: Annotated[str, typer.Option(help="loss or decision-boundary.")] = "loss",
    epoch: EpochOption = None,
    width: Annotated[int | None, typer.Option(min=200, max=3000, help="Pixels.")] = None,
    height: Annotated[int | None, typer.Option(min=200, max=3000, help="Pixels.")] = None,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Save a plot the server draws: the loss curves or the decision boundary."""
    format = out.suffix.lower().lstrip(".")
    if format not in ("png", "svg"):
        raise typer.BadParameter("the file must end in .png or .svg", param_hint="-o")
    if kind not in ("loss", "decision-boundary"):
        raise typer.BadParameter("choose loss or decision-boundary", param_hint="--kind")
    with connect(url, key) as api:
        content = api.plot(
            run_id,
            kind=cast(PlotKind, kind),
            format=cast(PlotFormat, format),
            width=width,
            height=height,
            epoch=epoch,
        )
    out.write_bytes(content)
    stdout().print(f"wrote {out} ({len(content):,} bytes)")


def register(cli: typer.Typer) -> None:
    """Add the client's commands to the ``annlab`` command."""
    for command in (submit, follow, runs, show, stop, cancel, delete, predict, weights, plot):
        cli.command()(command)
    from app.cli_experiment import experiment
    from app.cli_models import models_cli

    cli.command()(experiment)
    cli.add_typer(models_cli, name="models")


#: Re-exported: the other command modules once imported these from here.
__all__ = [
    "DETACHED",
    "CancelOption",
    "CsvOption",
    "EpochOption",
    "JsonInputOption",
    "JsonOption",
    "KeyOption",
    "OutputOption",
    "RunArgument",
    "UrlOption",
    "answer",
    "check_output",
    "connect",
    "detach_or_cancel",
    "echo_json",
    "exit_for",
    "fail",
    "load_rows",
    "make_client",
    "register",
    "show_prediction",
    "stderr",
    "stdout",
]
