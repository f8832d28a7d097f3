"""Plots as PNG or SVG (API.md "Plots"): a run's loss curves and decision boundary, the
optimizer trajectories over a contour plot.

The routes are ``async``: what a plot needs is gathered in the thread pool
(``app.services.run_plots``), the drawing done by the app's bounded renderer
(``app.state.plot_renderer``, a process pool by default), so neither blocks the
event loop. A plot that cannot change any more is cached: asked twice, drawn once.
``.png`` or ``.svg`` by the path's suffix; ``?width=&height=`` in pixels.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from app.api.optimizers import check_work
from app.api.predict import NO_SNAPSHOT, SnapshotEpoch
from app.api.runs import NOT_FOUND
from app.deps import ModelCacheDep, SessionDep, SettingsDep, ValidRun
from app.errors import NotReady, Unprocessable
from app.http import GuardedRoute
from app.schemas import Problem
from app.services import plots, run_plots
from app.services.plot_pool import PlotRenderer, PlotsBusy
from app.services.run_plots import PlotJob
from core.specs import TrajectoryRequest

router = APIRouter(tags=["plots"], route_class=GuardedRoute)

Width = Annotated[
    int,
    Query(
        ge=plots.MIN_SIZE,
        le=plots.MAX_SIZE,
        description="Width in pixels (200..3000); a PNG is exactly this wide.",
    ),
]
Height = Annotated[
    int,
    Query(
        ge=plots.MIN_SIZE,
        le=plots.MAX_SIZE,
        description="Height in pixels (200..3000); a PNG is exactly this high.",
    ),
]

FORMATS: tuple[plots.Format, ...] = ("png", "svg")


class PNGResponse(Response):
    media_type = "image/png"


class SVGResponse(Response):
    media_type = "image/svg+xml"


RESPONSE_CLASSES: dict[plots.Format, type[Response]] = {"png": PNGResponse, "svg": SVGResponse}


PROBLEM_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _responses(
    fmt: plots.Format, extra: dict[int | str, dict[str, Any]]
) -> dict[int | str, dict[str, Any]]:
    """The 200 as the image's media type; every error as JSON (``"model"`` would
    document it under the route's image type)."""
    errors: dict[int | str, dict[str, Any]] = {
        422: {"model": Problem, "description": "width or height outside 200..3000, or bad data."},
        503: {
            "model": Problem,
            "description": "Too many plots being rendered at once; retry after `Retry-After` s.",
        },
        **extra,
    }
    return {
        200: {
            "description": f"The plot as {fmt.upper()}.",
            "content": {plots.media_type(fmt): {"schema": {"type": "string", "format": "binary"}}},
        },
        **{
            code: {"description": error["description"], "content": PROBLEM_JSON}
            for code, error in errors.items()
        },
    }


async def _render(request: Request, job: PlotJob, fmt: plots.Format) -> Response:
    """The job's bytes (from the cache, or drawn by the renderer), as the format's type."""
    if job.cached is not None:
        return RESPONSE_CLASSES[fmt](job.cached)
    renderer: PlotRenderer = request.app.state.plot_renderer
    try:
        content = await renderer.render(job.key, job.fn, **job.kwargs)
    except PlotsBusy as busy:
        raise NotReady(str(busy), headers={"Retry-After": str(busy.retry_after)}) from None
    except plots.PlotError as error:
        raise Unprocessable(str(error)) from None
    return RESPONSE_CLASSES[fmt](content)


def _loss_route(fmt: plots.Format) -> Callable[..., Awaitable[Response]]:
    async def loss_plot(
        request: Request,
        run: ValidRun,
        session: SessionDep,
        width: Width = plots.DEFAULT_WIDTH,
        height: Height = plots.DEFAULT_HEIGHT,
    ) -> Response:
        job = await run_in_threadpool(
            lambda: run_plots.loss_job(
                session=session, run=run, fmt=fmt, width=width, height=height
            )
        )
        return await _render(request, job, fmt)

    loss_plot.__doc__ = (
        "Train and validation loss per epoch (log scale when the loss spans more than two "
        "decades; the best epoch marked), and accuracy in a second panel for classification."
    )
    return loss_plot


def _boundary_route(fmt: plots.Format) -> Callable[..., Awaitable[Response]]:
    async def decision_boundary_plot(
        request: Request,
        run: ValidRun,
        session: SessionDep,
        cache: ModelCacheDep,
        epoch: SnapshotEpoch = None,
        width: Width = plots.DEFAULT_WIDTH,
        height: Height = plots.DEFAULT_HEIGHT,
    ) -> Response:
        renderer: PlotRenderer = request.app.state.plot_renderer
        job = await run_in_threadpool(
            lambda: run_plots.decision_boundary_job(
                session=session,
                cache=cache,
                plot_cache=renderer.cache,
                run=run,
                epoch=epoch,
                fmt=fmt,
                width=width,
                height=height,
            )
        )
        return await _render(request, job, fmt)

    decision_boundary_plot.__doc__ = (
        "The class regions of `decision-boundary` filled (paler where the model is less "
        "sure), the dataset's points on top coloured and shaped by class. Two-feature "
        "classification sets only. Without `epoch`: the final model, or the latest snapshot "
        "of a run that has none (yet)."
    )
    return decision_boundary_plot


def _trajectories_route(fmt: plots.Format) -> Callable[..., Awaitable[Response]]:
    async def trajectories_plot(
        request: Request,
        body: TrajectoryRequest,
        settings: SettingsDep,
        width: Width = plots.DEFAULT_WIDTH,
        height: Height = plots.DEFAULT_HEIGHT,
    ) -> Response:
        check_work(body, settings)
        renderer: PlotRenderer = request.app.state.plot_renderer
        job = await run_in_threadpool(
            lambda: run_plots.trajectories_job(
                request=body, plot_cache=renderer.cache, fmt=fmt, width=width, height=height
            )
        )
        return await _render(request, job, fmt)

    trajectories_plot.__doc__ = (
        "The body of `POST /optimizers/trajectories`: log-spaced contour lines of f over the "
        "function's plotting window, each optimizer's path in its own colour with a legend, "
        "the start and the minima marked."
    )
    return trajectories_plot


NO_BOUNDARY: dict[int | str, dict[str, Any]] = {
    **NO_SNAPSHOT,
    409: {
        "model": Problem,
        "description": "No `epoch` given and the run has neither a final model nor a snapshot "
        "yet; or its dataset was deleted since.",
    },
}
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Malformed or too deeply nested JSON."},
    413: {"model": Problem, "description": "Body over ANNLAB_MAX_BODY_BYTES."},
}

for _fmt in FORMATS:
    router.add_api_route(
        f"/runs/{{run_id}}/plots/loss.{_fmt}",
        _loss_route(_fmt),
        methods=["GET"],
        response_class=RESPONSE_CLASSES[_fmt],
        responses=_responses(_fmt, NOT_FOUND),
        summary=f"A run's loss (and accuracy) curves as {_fmt.upper()}",
        name=f"loss_plot_{_fmt}",
    )
    router.add_api_route(
        f"/runs/{{run_id}}/plots/decision-boundary.{_fmt}",
        _boundary_route(_fmt),
        methods=["GET"],
        response_class=RESPONSE_CLASSES[_fmt],
        responses=_responses(_fmt, NO_BOUNDARY),
        summary=f"A run's decision boundary at an epoch as {_fmt.upper()}",
        name=f"decision_boundary_plot_{_fmt}",
    )
    router.add_api_route(
        f"/optimizers/trajectories.{_fmt}",
        _trajectories_route(_fmt),
        methods=["POST"],
        response_class=RESPONSE_CLASSES[_fmt],
        responses=_responses(_fmt, BODY_ERRORS),
        summary=f"Optimizer trajectories over a contour plot as {_fmt.upper()}",
        name=f"trajectories_plot_{_fmt}",
    )
