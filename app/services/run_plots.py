"""What each plot route draws: the data gathered (database, engine) and the render job.

Gathering is quick and runs in the route's thread; the drawing (``app.services.plots``)
goes to the bounded renderer (``app.services.plot_pool``). A plot that can no
longer change gets a cache key — a finished run's loss curves, a snapshot's or a
finished run's decision boundary, a trajectories body — so asking twice renders
once; a running run's loss plot (``key`` None) is drawn afresh every time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from app.db import runs as run_store
from app.db.tables import RunRow
from app.errors import Unprocessable
from app.schemas import MetricsOut, TrajectoriesResponse
from app.services import inspection, plots, serving
from app.services.plot_pool import PlotCache
from app.services.serving import ModelCache
from core.specs import TrajectoryRequest
from core.stopping import TERMINAL_STATUSES
from core.surfaces import SURFACES, evaluate, run_trajectories

#: Grid points per axis of a decision-boundary plot (finer than a screen needs at 800 px).
PLOT_RESOLUTION = 250
#: The plotting window holds the start: a start beyond this cannot be drawn
#: (Matplotlib's ticks overflow near 1e308) nor seen next to the function's minima.
MAX_START = 1e6


@dataclass(frozen=True)
class PlotJob:
    """A render to hand to ``PlotRenderer.render(key, fn, **kwargs)``, or the bytes
    when the cache had them already (then nothing was computed)."""

    key: Hashable | None
    fn: Callable[..., bytes] = plots.loss_plot
    kwargs: dict[str, Any] = field(default_factory=dict)
    cached: bytes | None = None


def _size(fmt: plots.Format, width: int, height: int) -> dict[str, Any]:
    return {"fmt": fmt, "width": width, "height": height}


def loss_job(
    *, session: Session, run: RunRow, fmt: plots.Format, width: int, height: int
) -> PlotJob:
    """Train/validation loss per epoch, accuracy below for classification."""
    metrics = MetricsOut.from_rows(run_store.get_metrics(session=session, run_id=run.id))
    lists = metrics.model_dump()
    classification = any(value is not None for value in lists["train_accuracy"])
    finished = run.status in TERMINAL_STATUSES
    key = ("loss", run.id, run.name, fmt, width, height) if finished else None
    return PlotJob(
        key=key,
        fn=plots.loss_plot,
        kwargs={
            "metrics": lists,
            "title": f"{run.name}: loss per epoch ({run.status})",
            "best_epoch": run.best_epoch,
            "task": "classification" if classification else "regression",
            **_size(fmt, width, height),
        },
    )


def decision_boundary_job(
    *,
    session: Session,
    cache: ModelCache,
    plot_cache: PlotCache,
    run: RunRow,
    epoch: int | None,
    fmt: plots.Format,
    width: int,
    height: int,
) -> PlotJob:
    """The class regions of the model at ``epoch`` (as ``GET /decision-boundary``) with
    the dataset's points; two-feature classification sets only (else 422)."""
    data = inspection.run_dataset(session=session, run=run)
    if data.task != "classification" or data.n_features != 2:
        raise Unprocessable(
            "a decision-boundary plot needs a classification dataset with exactly two "
            f"features; {data.name!r} is a {data.task} set with {data.n_features} feature(s)"
        )
    at = serving.model_at(session=session, cache=cache, run=run, epoch=epoch)
    # the model at a snapshot, or a finished run's final model, never changes
    which = "final" if epoch is None and run.status in TERMINAL_STATUSES else "epoch"
    key = ("decision-boundary", run.id, run.name, which, at.epoch, fmt, width, height)
    cached = plot_cache.get(key)
    if cached is not None:
        return PlotJob(key=key, cached=cached)
    grid = inspection.boundary(at.model.model, data, epoch=at.epoch, resolution=PLOT_RESOLUTION)
    assert data.class_names is not None  # classification
    names = data.feature_names if len(data.feature_names) == 2 else ["x₁", "x₂"]
    return PlotJob(
        key=key,
        fn=plots.decision_boundary_plot,
        kwargs={
            "grid": {**grid, "class_names": data.class_names},
            "points": data.features,
            "labels": data.targets,
            "title": f"{run.name}: decision boundary at epoch {at.epoch}",
            "feature_names": list(names),
            **_size(fmt, width, height),
        },
    )


def trajectories_job(
    *, request: TrajectoryRequest, plot_cache: PlotCache, fmt: plots.Format, width: int, height: int
) -> PlotJob:
    """The optimizers' paths (``run_trajectories``) over log-spaced contours of f in the
    function's plotting window (widened to hold the start), its minima marked."""
    key = ("trajectories", request.model_dump_json(), fmt, width, height)
    cached = plot_cache.get(key)
    if cached is not None:
        return PlotJob(key=key, cached=cached)
    surface = SURFACES[request.function]
    sx, sy = (float(v) for v in request.start)
    if max(abs(sx), abs(sy)) > MAX_START:
        raise Unprocessable(
            f"start: {request.start} is too far out to plot (each coordinate within "
            f"±{MAX_START:g}); POST /optimizers/trajectories gives the numbers"
        )
    answer = TrajectoriesResponse.body(run_trajectories(request))
    (x_lo, x_hi), (y_lo, y_hi) = surface.window
    pad_x, pad_y = 0.1 * (x_hi - x_lo), 0.1 * (y_hi - y_lo)
    window = (
        min(x_lo, sx - pad_x),
        max(x_hi, sx + pad_x),
        min(y_lo, sy - pad_y),
        max(y_hi, sy + pad_y),
    )
    return PlotJob(
        key=key,
        fn=plots.trajectories_plot,
        kwargs={
            "answer": {**answer, "start": [sx, sy]},
            "f": functools.partial(evaluate, request.function),
            "window": window,
            "minima": [list(point) for point in surface.minima],
            "title": f"{len(request.optimizers)} optimizers on {request.function}, "
            f"{request.steps} steps",
            **_size(fmt, width, height),
        },
    )
