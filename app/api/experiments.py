"""Experiments (API.md "Experiments"): a grid of runs, compared. The logic is
``app.services.experiments``; the plot goes through the app's plot renderer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from app.api.plots import FORMATS, Height, Width, _render, _responses
from app.db import experiments as store
from app.db import runs as run_store
from app.db.tables import ExperimentRow
from app.deps import CurrentUser, ExecutorDep, ModelCacheDep, SessionDep, SettingsDep
from app.http import GuardedRoute
from app.schemas import MALFORMED_JSON, TOO_LARGE, EpochMetricsOut, MetricsOut, problem
from app.schemas_registry import (
    BestOut,
    ExperimentIn,
    ExperimentList,
    ExperimentMetrics,
    ExperimentOut,
    ExperimentRunOut,
    SummaryRowOut,
)
from app.services import experiments as service
from app.services import plots
from app.services.run_plots import PlotJob
from core.stopping import TERMINAL_STATUSES

router = APIRouter(prefix="/experiments", tags=["experiments"], route_class=GuardedRoute)

ExperimentId = Annotated[str, Path(max_length=40, description="Experiment id.")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: problem("No experiment with this id.")}


def valid_experiment(
    experiment_id: ExperimentId, session: SessionDep, user: CurrentUser
) -> ExperimentRow:
    return service.get_experiment(session=session, experiment_id=experiment_id, scope=user.scope)


ValidExperiment = Annotated[ExperimentRow, Depends(valid_experiment)]


def experiment_out(session: SessionDep, row: ExperimentRow) -> ExperimentOut:
    seen = service.view(session=session, row=row)
    return ExperimentOut(
        id=row.id,
        name=row.name,
        status=seen.status,
        created_at=row.created_at,
        base=row.base,
        grid=row.grid,
        runs=[
            ExperimentRunOut(
                id=run.id,
                params=params,
                status=run.status,
                best_epoch=run.best_epoch,
                best_metrics=EpochMetricsOut.model_validate(run.best_metrics)
                if run.best_metrics
                else None,
            )
            for run, params in seen.runs
        ],
        summary=[SummaryRowOut.model_validate(item) for item in seen.summary],
        best=BestOut.model_validate(seen.best) if seen.best else None,
    )


@router.post(
    "",
    status_code=202,
    response_model=ExperimentOut,
    responses={
        400: MALFORMED_JSON,
        404: problem("No dataset with the base spec's `dataset` id."),
        413: TOO_LARGE,
        422: problem(
            "A grid path that does not exist, an invalid combination (the combination and "
            "the field are named), or more runs than ANNLAB_MAX_EXPERIMENT_RUNS."
        ),
        429: problem("The runs would pass ANNLAB_MAX_QUEUED_RUNS."),
    },
    summary="Run a grid of specs (one transaction; nothing is created if one is invalid)",
)
def create_experiment(
    body: ExperimentIn,
    request: Request,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    executor: ExecutorDep,
) -> ExperimentOut:
    row = service.create_experiment(
        session=session,
        name=body.name,
        base=body.base,
        grid=body.grid,
        caller=user,
        settings=settings,
        executor=executor,
    )
    response.headers["Location"] = str(request.url_for("get_experiment", experiment_id=row.id))
    return experiment_out(session, row)


@router.get("", response_model=ExperimentList, summary="List experiments, newest first")
def list_experiments(
    session: SessionDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size (at most 100).")] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="Experiments to skip.")] = 0,
) -> ExperimentList:
    rows, total = store.list_experiments(
        session=session, owner_id=user.scope, limit=limit, offset=offset
    )
    return ExperimentList(items=[experiment_out(session, row) for row in rows], total=total)


@router.get(
    "/{experiment_id}", response_model=ExperimentOut, responses=NOT_FOUND, summary="One experiment"
)
def get_experiment(row: ValidExperiment, session: SessionDep) -> ExperimentOut:
    return experiment_out(session, row)


@router.get(
    "/{experiment_id}/metrics",
    response_model=ExperimentMetrics,
    responses=NOT_FOUND,
    summary="Every run's per-epoch metrics",
)
def get_metrics(row: ValidExperiment, session: SessionDep) -> ExperimentMetrics:
    runs = service.view(session=session, row=row).runs
    return ExperimentMetrics(
        runs={
            run.id: MetricsOut.from_rows(run_store.get_metrics(session=session, run_id=run.id))
            for run, _ in runs
        }
    )


@router.post(
    "/{experiment_id}/cancel",
    status_code=202,
    response_model=ExperimentOut,
    responses={**NOT_FOUND, 409: problem("Every run of the experiment already finished.")},
    summary="Cancel every run that has not finished",
)
def cancel_experiment(
    row: ValidExperiment, session: SessionDep, user: CurrentUser
) -> ExperimentOut:
    return experiment_out(session, service.cancel_experiment(session=session, row=row, actor=user))


@router.delete(
    "/{experiment_id}",
    status_code=204,
    responses={**NOT_FOUND, 409: problem("A model version refers to one of its runs.")},
    summary="Delete an experiment and its runs",
)
def delete_experiment(
    row: ValidExperiment, session: SessionDep, cache: ModelCacheDep, user: CurrentUser
) -> Response:
    service.delete_experiment(session=session, row=row, cache=cache, actor=user)
    return Response(status_code=204)


def plot_job(
    *, session: SessionDep, row: ExperimentRow, fmt: plots.Format, width: int, height: int
) -> PlotJob:
    """One validation-loss line per run, labelled by its params; cached once finished."""
    seen = service.view(session=session, row=row)
    lines = []
    for run, params in seen.runs:
        metrics = MetricsOut.from_rows(run_store.get_metrics(session=session, run_id=run.id))
        lines.append((service.short_label(params) or run.name, metrics.model_dump()))
    finished = all(run.status in TERMINAL_STATUSES for run, _ in seen.runs)
    key = ("experiment", row.id, len(lines), fmt, width, height) if finished else None
    return PlotJob(
        key=key,
        fn=plots.experiment_plot,
        kwargs={"runs": lines, "title": row.name, "fmt": fmt, "width": width, "height": height},
    )


def _plot_route(fmt: plots.Format) -> Callable[..., Awaitable[Response]]:
    async def experiment_plot(
        request: Request,
        row: ValidExperiment,
        session: SessionDep,
        width: Width = plots.DEFAULT_WIDTH,
        height: Height = plots.DEFAULT_HEIGHT,
    ) -> Response:
        job = await run_in_threadpool(
            lambda: plot_job(session=session, row=row, fmt=fmt, width=width, height=height)
        )
        return await _render(request, job, fmt)

    experiment_plot.__doc__ = f"One validation-loss line per run ({fmt.upper()})."
    return experiment_plot


for _fmt in FORMATS:
    router.add_api_route(
        f"/{{experiment_id}}/plots/loss.{_fmt}",
        _plot_route(_fmt),
        methods=["GET"],
        response_class=Response,
        responses=_responses(_fmt, NOT_FOUND),
        summary=f"Validation loss of every run ({_fmt.upper()})",
        name=f"experiment_loss_{_fmt}",
    )
