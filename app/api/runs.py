"""Runs: submit, list (sorted, filtered by tag), read, rename/retag, stop, cancel,
delete. The event stream is ``events.py``, the trained model (weights, predictions)
``predict.py``, evaluation and the split ``evaluation.py``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, Response

from app.api.examples import RUN_EXAMPLES
from app.api.query import StrictQuery, choice_error
from app.db import runs as run_store
from app.deps import (
    CurrentUser,
    ExecutorDep,
    InFlightDep,
    ModelCacheDep,
    SessionDep,
    SettingsDep,
    ValidRun,
)
from app.http import GuardedRoute
from app.run_schemas import RunPatch
from app.schemas import (
    MALFORMED_JSON,
    TOO_LARGE,
    MetricsOut,
    RunList,
    RunOut,
    RunStatusField,
    problem,
)
from app.services import runs as run_service
from core.specs import RunSpec

router = APIRouter(prefix="/runs", tags=["runs"], route_class=GuardedRoute)

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: problem("No run with this id.")}


@router.post(
    "",
    status_code=202,
    response_model=RunOut,
    responses={
        200: {
            "model": RunOut,
            "description": "Replay: the run first created with this Idempotency-Key.",
        },
        400: MALFORMED_JSON,
        404: problem("No dataset with the spec's `dataset` id."),
        409: problem("The same Idempotency-Key is still being handled."),
        413: TOO_LARGE,
        422: problem(
            "Invalid spec (the field is named), a spec that does not fit its "
            "dataset, a spec over a limit, or an Idempotency-Key reused with another body."
        ),
        429: problem("Too many queued runs (ANNLAB_MAX_QUEUED_RUNS)."),
    },
    summary="Submit a training run",
)
def submit_run(
    request: Request,
    response: Response,
    spec: Annotated[RunSpec, Body(openapi_examples=RUN_EXAMPLES)],
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    executor: ExecutorDep,
    in_flight: InFlightDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Makes retries safe: the same key and body return the first run.",
        ),
    ] = None,
) -> RunOut:
    """Queue a run. It is stored before the 202 is sent; `Location` points at it."""
    submission = run_service.submit_run(
        session=session,
        spec=spec,
        caller=user,
        settings=settings,
        executor=executor,
        in_flight=in_flight,
        idempotency_key=idempotency_key,
    )
    if submission.replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = str(request.url_for("get_run", run_id=submission.run.id))
    return RunOut.from_row(submission.run)


@router.get(
    "",
    response_model=RunList,
    dependencies=[StrictQuery],
    responses={422: problem("An unknown query parameter, sort key or malformed tag filter.")},
    summary="List runs (newest first, or by best validation loss, accuracy, duration)",
)
def list_runs(
    session: SessionDep,
    user: CurrentUser,
    status: Annotated[RunStatusField | None, Query(description="Only runs in this status.")] = None,
    dataset: Annotated[str | None, Query(description="Only runs on this dataset id.")] = None,
    experiment: Annotated[
        str | None, Query(max_length=40, description="Only the runs of this experiment id.")
    ] = None,
    tag: Annotated[
        list[str],
        Query(
            description="`key:value`: only runs with this tag (repeat for several, all must match)."
        ),
    ] = [],  # noqa: B006  (FastAPI copies defaults)
    sort: Annotated[
        str,
        Query(
            description="`created_at`, `best_val_loss`, `best_val_accuracy` or `duration`; "
            "a leading `-` sorts descending. Runs without the value come last.",
            json_schema_extra={"enum": run_store.sort_keys()},
        ),
    ] = run_store.DEFAULT_SORT,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size (at most 100).")] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="Runs to skip.")] = 0,
) -> RunList:
    if sort not in run_store.sort_keys():
        raise choice_error("sort", sort, run_store.sort_keys())
    tags: dict[str, str] = {}
    for item in tag:
        key, colon, value = item.partition(":")
        if not colon or not key:
            raise choice_error("tag", item, ["key:value"])
        tags[key] = value
    rows, total = run_store.list_runs(
        session=session,
        owner_id=user.scope,
        status=status,
        dataset_id=dataset,
        experiment_id=experiment,
        tags=tags,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    return RunList(items=[RunOut.from_row(row) for row in rows], total=total)


@router.get("/{run_id}", response_model=RunOut, responses=NOT_FOUND, summary="One run")
def get_run(run: ValidRun) -> RunOut:
    return RunOut.from_row(run)


@router.get(
    "/{run_id}/metrics",
    response_model=MetricsOut,
    responses=NOT_FOUND,
    summary="Per-epoch metrics, one list per metric",
)
def get_metrics(run: ValidRun, session: SessionDep) -> MetricsOut:
    return MetricsOut.from_rows(run_store.get_metrics(session=session, run_id=run.id))


@router.patch(
    "/{run_id}",
    response_model=RunOut,
    responses={**NOT_FOUND, 400: MALFORMED_JSON, 422: problem("An invalid name or tag.")},
    summary="Rename a run or replace its tags",
)
def patch_run(run: ValidRun, session: SessionDep, patch: RunPatch) -> RunOut:
    return RunOut.from_row(
        run_service.update_run(session=session, run=run, name=patch.name, tags=patch.tags)
    )


@router.post(
    "/{run_id}/stop",
    status_code=202,
    response_model=RunOut,
    responses={**NOT_FOUND, 409: problem("The run already finished.")},
    summary="Stop training early and keep the model",
    description="Training ends at the next mini-batch boundary; the run `succeeded` with "
    "`stop_reason` `stopped` and its model (the best epoch's weights with `restore_best`). "
    "A queued run has nothing to keep and is cancelled. `cancel` throws the model away.",
)
def stop_run(run: ValidRun, session: SessionDep, user: CurrentUser) -> RunOut:
    return RunOut.from_row(run_service.stop_run(session=session, run=run, actor=user))


@router.post(
    "/{run_id}/cancel",
    status_code=202,
    response_model=RunOut,
    responses={**NOT_FOUND, 409: problem("The run already finished.")},
    summary="Cancel a queued or running run",
)
def cancel_run(run: ValidRun, session: SessionDep, user: CurrentUser) -> RunOut:
    return RunOut.from_row(run_service.cancel_run(session=session, run=run, actor=user))


@router.delete(
    "/{run_id}",
    status_code=204,
    responses=NOT_FOUND,
    summary="Delete a run (a running run is cancelled first)",
)
def delete_run(
    run: ValidRun, session: SessionDep, cache: ModelCacheDep, user: CurrentUser
) -> Response:
    run_service.delete_run(session=session, run=run, cache=cache, actor=user)
    return Response(status_code=204)
