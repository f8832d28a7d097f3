"""`annlab experiment GRID.json [--follow]`: a grid of runs, followed to its summary.

GRID.json is the body of ``POST /experiments`` (``name``, ``base``, ``grid``).
Following polls the experiment (one request a second, whatever the grid's size)
and prints one line per run as it ends, then the runs, the summary over seeds
and the best run. The argument may also be an experiment id, to re-attach.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli_client import (
    connect,
)
from app.cli_common import (
    CancelOption,
    JsonOption,
    KeyOption,
    UrlOption,
    detach_or_cancel,
    echo_json,
    stderr,
    stdout,
)
from app.cli_input import read_json_file
from app.cli_render import (
    experiment_runs_table,
    number,
    params_text,
    percent,
    status_text,
    summary_table,
)
from app.client import AnnlabClient
from app.client_types import TERMINAL_STATUSES, Experiment

EXPERIMENT_KEYS = {"name", "base", "grid"}


def experiment(
    grid: Annotated[
        str,
        typer.Argument(
            help="GRID.json (name, base, grid), or an experiment id to re-attach.",
            metavar="GRID.json|ID",
        ),
    ],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="A line per run as it ends, then the summary.")
    ] = False,
    cancel_on_interrupt: CancelOption = False,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between two looks.")] = 1.0,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Create an experiment from a grid file (or look at one by id); --follow to its summary."""
    path = Path(grid)
    with connect(url, key) as api:
        if path.suffix.lower() == ".json" or path.exists():
            created = api.create_experiment(**_grid_document(path))
            stderr().print(f"created experiment {created.id}: {len(created.runs)} runs")
        else:
            created = api.get_experiment(grid)
        final = (
            follow_experiment(api, created, cancel_on_interrupt, interval) if follow else created
        )
    if as_json:
        echo_json(final.model_dump(mode="json"))
    else:
        out = stdout()
        out.print(experiment_runs_table(final))
        if final.summary:
            out.print(summary_table(final))
        if final.best is not None:
            out.print(
                f"best: run {final.best.run_id} ({final.best.metric} {number(final.best.value)})"
            )
        if not follow and not final.finished:
            stderr().print(f"follow it with: annlab experiment {final.id} --follow")
    if follow and (
        final.status == "cancelled" or any(run.status != "succeeded" for run in final.runs)
    ):
        raise typer.Exit(1)


def _grid_document(path: Path) -> dict[str, Any]:
    document = read_json_file(path)
    if not isinstance(document, dict):
        raise typer.BadParameter(f"{path}: expected a JSON object with name, base and grid")
    missing = sorted(EXPERIMENT_KEYS - set(document))
    unknown = sorted(set(document) - EXPERIMENT_KEYS)
    if missing or unknown:
        problems = [f"missing {', '.join(missing)}"] if missing else []
        problems += [f"unknown {', '.join(unknown)}"] if unknown else []
        raise typer.BadParameter(f"{path}: {'; '.join(problems)} (expected name, base, grid)")
    return document


def follow_experiment(
    api: AnnlabClient, experiment: Experiment, cancel_on_interrupt: bool, interval: float
) -> Experiment:
    """Poll until every run has ended; a line per run as it does."""
    err = stderr()
    total = len(experiment.runs)
    done: set[str] = set()
    try:
        while True:
            for run in experiment.runs:
                if run.status in TERMINAL_STATUSES and run.id not in done:
                    done.add(run.id)
                    metrics = run.best_metrics
                    numbers = (
                        f"val_loss {number(metrics.val_loss)}  val_acc {percent(metrics.val_accuracy)}"
                        if metrics is not None
                        else ""
                    )
                    err.print(
                        f"[{len(done)}/{total}] {run.id} {status_text(run.status)}  "
                        f"{params_text(run.params)}  {numbers}"
                    )
            if experiment.finished or len(done) == total:
                return experiment
            time.sleep(interval)
            experiment = api.get_experiment(experiment.id)
    except KeyboardInterrupt:
        detach_or_cancel(
            err,
            cancel_on_interrupt=cancel_on_interrupt,
            detached=f"detached from experiment {experiment.id}: its runs go on on the server.\n"
            f"re-attach with: annlab experiment {experiment.id} --follow",
            cancel=lambda: api.cancel_experiment(experiment.id),
        )
        err.print(f"interrupted: cancelled experiment {experiment.id}")
        return api.get_experiment(experiment.id)
