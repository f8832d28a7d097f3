"""What the terminal client prints: rich tables of runs, experiments and models,
and the live progress bar of a followed run.

Kept apart from the commands (`app.cli_client`) so that a command reads as
"ask the API, hand the answer to a renderer", and the renderers can be tested
with canned answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from app.client_types import (
    EpochMetrics,
    Experiment,
    Model,
    Prediction,
    ProgressEvent,
    Run,
    RunEvent,
    StatusEvent,
)

STATUS_STYLE = {
    "queued": "yellow",
    "running": "cyan",
    "succeeded": "green",
    "finished": "green",
    "failed": "red",
    "cancelled": "magenta",
}


def number(value: float | None, digits: int = 4) -> str:
    """A metric for a table: 4 significant digits, "-" when absent."""
    return "-" if value is None else f"{value:.{digits}g}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def status_text(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


# --------------------------------------------------------------------- runs


def _best(run: Run) -> EpochMetrics:
    return run.best_metrics or run.metrics


def runs_table(runs: Sequence[Run], total: int) -> Table:
    table = Table(title=f"runs ({len(runs)} of {total})", title_justify="left")
    for header, justify in (
        ("ID", "left"),
        ("NAME", "left"),
        ("STATUS", "left"),
        ("DATASET", "left"),
        ("EPOCH", "right"),
        ("VAL LOSS", "right"),
        ("VAL ACC", "right"),
        ("BEST", "right"),
        ("CREATED", "left"),
    ):
        table.add_column(header, justify=justify, no_wrap=header == "ID")  # type: ignore[arg-type]
    for run in runs:
        best = _best(run)
        table.add_row(
            run.id,
            run.name,
            status_text(run.status),
            run.dataset,
            f"{run.progress.epoch}/{run.progress.epochs}",
            number(best.val_loss if best.val_loss is not None else best.train_loss),
            percent(best.val_accuracy),
            "-" if run.best_epoch is None else str(run.best_epoch),
            run.created_at.strftime("%Y-%m-%d %H:%M") if run.created_at else "-",
        )
    return table


def run_details(run: Run) -> Table:
    """One run as a two-column table: what it is, where it got, its metrics."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    optimizer = run.spec.get("optimizer", {})
    layers = run.spec.get("model", {}).get("layers", [])
    rows: list[tuple[str, str]] = [
        ("id", run.id),
        ("name", run.name),
        ("status", status_text(run.status)),
        ("stop reason", run.stop_reason or "-"),
        ("dataset", run.dataset),
        ("model", " → ".join(f"{layer['units']} {layer['activation']}" for layer in layers)),
        ("parameters", str(run.n_parameters)),
        ("optimizer", optimizer_text(optimizer)),
        ("epoch", f"{run.progress.epoch}/{run.progress.epochs} (step {run.progress.step})"),
        ("best epoch", "-" if run.best_epoch is None else str(run.best_epoch)),
    ]
    for label, metrics in (("last", run.metrics), ("best", run.best_metrics)):
        if metrics is not None:
            rows.append((f"{label} metrics", metrics_text(metrics)))
    if run.tags:
        rows.append(("tags", ", ".join(f"{k}={v}" for k, v in run.tags.items())))
    if run.experiment_id:
        rows.append(("experiment", run.experiment_id))
    rows.append(("created", str(run.created_at or "-")))
    rows.append(("finished", str(run.finished_at or "-")))
    if run.error:
        rows.append(("error", f"[red]{run.error}[/]"))
    for label, value in rows:
        table.add_row(label, value)
    return table


def optimizer_text(optimizer: dict[str, Any]) -> str:
    """``adam learning_rate=0.01 …``: the type, then the fields that matter (no zero penalties)."""
    fields = [
        f"{name}={value}"
        for name, value in optimizer.items()
        if name not in ("type", "schedule") and not (name in ("l1", "l2") and not value)
    ]
    schedule = optimizer.get("schedule") or {}
    if schedule.get("type", "constant") != "constant":
        fields.append("schedule=" + json.dumps(schedule))
    return " ".join([str(optimizer.get("type", "?")), *fields])


def metrics_text(metrics: EpochMetrics) -> str:
    parts = [] if metrics.train_loss is None else [f"loss {number(metrics.train_loss)}"]
    if metrics.val_loss is not None:
        parts.append(f"val_loss {number(metrics.val_loss)}")
    if metrics.train_accuracy is not None:
        parts.append(f"acc {percent(metrics.train_accuracy)}")
    if metrics.val_accuracy is not None:
        parts.append(f"val_acc {percent(metrics.val_accuracy)}")
    return "  ".join(parts)


def outcome_line(run: Run) -> str:
    """The last lines of a followed run: how it ended, then its numbers (those of the
    best epoch when the server sends them, else the last epoch's) or its error."""
    reason = f" ({run.stop_reason})" if run.stop_reason else ""
    line = (
        f"run {run.id} {status_text(run.status)}{reason} "
        f"at epoch {run.progress.epoch}/{run.progress.epochs}"
    )
    if run.status == "succeeded":
        if run.best_metrics is not None and run.best_epoch is not None:
            line += f"\nbest epoch {run.best_epoch}: {metrics_text(run.best_metrics)}"
        else:
            best = f" (best epoch {run.best_epoch})" if run.best_epoch is not None else ""
            line += f"\nepoch {run.progress.epoch}: {metrics_text(run.metrics)}{best}"
    if run.error:
        line += f"\n[red]error: {run.error}[/]"
    return line


def prediction_table(prediction: Prediction, class_names: Sequence[str] | None) -> Table:
    table = Table(title="predictions", title_justify="left")
    table.add_column("ROW", justify="right")
    table.add_column("PREDICTION")
    widths = len(prediction.outputs[0]) if prediction.outputs else 0
    names = list(class_names) if class_names and len(class_names) == widths else None
    for index in range(widths):
        table.add_column(f"P({names[index]})" if names else f"OUT {index}", justify="right")
    for row, (predicted, outputs) in enumerate(
        zip(prediction.predictions, prediction.outputs, strict=True)
    ):
        table.add_row(str(row), str(predicted), *(number(value) for value in outputs))
    return table


# ---------------------------------------------------------------- following


class RunProgress:
    """A rich progress bar fed by a run's events: one bar, advanced per epoch, with
    the latest loss and accuracy beside it; status changes printed above it."""

    def __init__(self, console: Console, run: Run) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task: TaskID = self.progress.add_task(
            run.name, total=run.progress.epochs or None, metrics=status_text(run.status)
        )
        self.epochs_seen: list[int] = []

    def __enter__(self) -> RunProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def show(self, event: RunEvent) -> None:
        if isinstance(event, ProgressEvent):
            self.epochs_seen.append(event.epoch)
            self.progress.update(
                self.task,
                completed=event.epoch,
                total=event.epochs,
                metrics=metrics_text(event.metrics),
            )
        elif isinstance(event, StatusEvent):
            reason = f" ({event.stop_reason})" if event.stop_reason else ""
            self.progress.console.print(f"status: {status_text(event.status)}{reason}")
            if not self.epochs_seen:
                self.progress.update(self.task, metrics=status_text(event.status))

    def finish(self, run: Run) -> None:
        """The bar at the run's final state (its recorded epochs and last metrics)."""
        self.progress.update(
            self.task,
            completed=run.progress.epoch,
            total=run.progress.epochs or None,
            metrics=metrics_text(run.metrics) or status_text(run.status),
        )

    def note(self, message: str) -> None:
        self.progress.console.print(message)


# -------------------------------------------------------------- experiments


def params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{path}={json.dumps(value)}" for path, value in params.items()) or "-"


def experiment_runs_table(experiment: Experiment) -> Table:
    table = Table(title=f"experiment {experiment.id}: {experiment.name}", title_justify="left")
    for header in ("RUN", "PARAMS", "STATUS", "BEST EPOCH", "VAL LOSS", "VAL ACC"):
        table.add_column(header)
    best_id = experiment.best.run_id if experiment.best else None
    for run in experiment.runs:
        metrics = run.best_metrics or EpochMetrics()
        marker = " ★" if run.id == best_id else ""
        table.add_row(
            run.id + marker,
            params_text(run.params),
            status_text(run.status),
            "-" if run.best_epoch is None else str(run.best_epoch),
            number(metrics.val_loss if metrics.val_loss is not None else metrics.train_loss),
            percent(metrics.val_accuracy),
        )
    return table


def summary_table(experiment: Experiment) -> Table:
    """Error bars over seeds: one row per group of runs that differ only in the seed."""
    table = Table(title="summary over seeds (mean ± std, min … max)", title_justify="left")
    for header in ("PARAMS", "N", "VAL LOSS", "VAL ACC"):
        table.add_column(header)

    def spread(values: Any, format: Callable[[float | None], str]) -> str:
        if values is None or values.mean is None:
            return "-"
        std = "" if values.std is None else f" ± {format(values.std)}"
        return f"{format(values.mean)}{std}  ({format(values.min)} … {format(values.max)})"

    for row in experiment.summary:
        table.add_row(
            params_text(row.params),
            str(row.n),
            spread(row.val_loss, number),
            spread(row.val_accuracy, percent),
        )
    return table


# ------------------------------------------------------------------- models


def models_table(models: Iterable[Model]) -> Table:
    table = Table(title="models", title_justify="left")
    for header in ("NAME", "LATEST", "ALIASES", "DESCRIPTION"):
        table.add_column(header)
    for model in models:
        table.add_row(
            model.name,
            "-" if model.latest_version is None else str(model.latest_version),
            ", ".join(f"{alias}→{version}" for alias, version in model.aliases.items()) or "-",
            model.description or "",
        )
    return table


def versions_table(model: Model) -> Table:
    table = Table(title=f"model {model.name}", title_justify="left")
    for header in ("VERSION", "RUN", "EPOCH", "ALIASES", "CREATED", "METRICS"):
        table.add_column(header)
    for version in model.versions:
        aliases = [alias for alias, number_ in model.aliases.items() if number_ == version.version]
        metrics = version.metrics or {}
        table.add_row(
            str(version.version),
            version.run_id,
            "-" if version.epoch is None else str(version.epoch),
            ", ".join(aliases) or "-",
            version.created_at.strftime("%Y-%m-%d %H:%M") if version.created_at else "-",
            metrics_text(EpochMetrics.model_validate(metrics)) if metrics else "-",
        )
    return table
