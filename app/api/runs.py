"""Runs: submit, watch, cancel, delete, and use the trained model."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import numpy as np
import orjson
from fastapi import APIRouter, Body, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match, Route
from starlette.types import Scope

from app.db import runs as run_store
from app.db.datasets import get_dataset
from app.db.engine import transaction
from app.deps import (
    RUN_ID_MAX_LENGTH,
    CurrentUser,
    ExecutorDep,
    PredictCacheDep,
    RunId,
    SessionDep,
    SettingsDep,
    ValidRun,
    get_current_user,
)
from app.errors import (
    BadRequest,
    Conflict,
    LimitExceeded,
    NotFound,
    TooMany,
    Unprocessable,
    limit_message,
)
from app.http import GuardedRoute, ORJSONResponse, check_json_depth
from app.limits import check_spec_limits
from app.predict_cache import CachedModel, PredictCache
from app.schemas import (
    MetricsOut,
    PredictRequest,
    PredictResponse,
    Problem,
    RunList,
    RunOut,
    RunStatus,
    WeightsDocument,
)
from core.datasets import BUILTIN_DATASETS
from core.specs import DataShape, RunSpec, check_against_dataset

router = APIRouter(prefix="/runs", tags=["runs"], route_class=GuardedRoute)

#: Seconds between two looks at the database while an event stream is open.
EVENTS_POLL_SECONDS = 0.25
TERMINAL = frozenset(run_store.TERMINAL_STATUSES)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No run with this id."}
}

_LAYERS = [{"units": 16, "activation": "relu"}, {"units": 3, "activation": "softmax"}]
_TRAINING = {"epochs": 100, "batch_size": 16, "seed": 0, "validation_split": 0.2}
RUN_EXAMPLES: dict[str, dict[str, Any]] = {
    "adam": {
        "summary": "Adam on iris (with early stopping)",
        "value": {
            "name": "adam on iris",
            "dataset": "iris",
            "model": {"layers": _LAYERS, "init": "auto"},
            "loss": "cross_entropy",
            "optimizer": {"type": "adam", "learning_rate": 0.01},
            "training": {
                **_TRAINING,
                "early_stopping": {"patience": 20, "min_delta": 0.0, "restore_best": True},
            },
            "dtype": "float64",
        },
    },
    "sgd": {
        "summary": "SGD with Nesterov momentum and a step schedule",
        "value": {
            "dataset": "iris",
            "model": {"layers": _LAYERS},
            "optimizer": {
                "type": "sgd",
                "learning_rate": 0.05,
                "momentum": 0.9,
                "nesterov": True,
                "schedule": {"type": "step", "step_size": 200, "gamma": 0.5},
            },
            "training": _TRAINING,
        },
    },
    "adagrad": {
        "summary": "Adagrad with L2 on the weights",
        "value": {
            "dataset": "moons",
            "model": {
                "layers": [
                    {"units": 16, "activation": "tanh"},
                    {"units": 2, "activation": "softmax"},
                ]
            },
            "optimizer": {"type": "adagrad", "learning_rate": 0.1, "l2": 0.001},
            "training": _TRAINING,
        },
    },
    "rmsprop": {
        "summary": "RMSProp, regression on sine",
        "value": {
            "dataset": "sine",
            "model": {
                "layers": [
                    {"units": 32, "activation": "tanh"},
                    {"units": 1, "activation": "linear"},
                ]
            },
            "loss": "mse",
            "optimizer": {
                "type": "rmsprop",
                "learning_rate": 0.005,
                "rho": 0.9,
                "schedule": {"type": "inverse_time", "decay": 0.001},
            },
            "training": {"epochs": 300, "batch_size": 32},
        },
    },
    "perceptron": {
        "summary": "The classic perceptron on blobs (step unit, batch gradient descent)",
        "value": {
            "dataset": "blobs",
            "model": {"layers": [{"units": 1, "activation": "step"}], "init": "zeros"},
            "loss": "mse",
            "optimizer": {"type": "sgd", "learning_rate": 0.1},
            "training": {"epochs": 50, "batch_size": None, "validation_split": 0.0},
        },
    },
}


def dataset_shape(*, session: Any, dataset_id: str, owner_id: str | None) -> DataShape:
    if dataset_id in BUILTIN_DATASETS:
        return BUILTIN_DATASETS[dataset_id].shape()
    row = get_dataset(session=session, dataset_id=dataset_id, owner_id=owner_id)
    if row is None:  # unknown, or another user's: the same answer, so nothing leaks
        raise NotFound(f"dataset {dataset_id!r} not found (GET /api/v1/datasets lists yours)")
    return DataShape(
        task=row.task,  # type: ignore[arg-type]
        n_features=row.n_features,
        n_outputs=row.n_outputs,
        n_classes=len(row.class_names) if row.class_names is not None else None,
        n_samples=row.n_samples,
    )


class _InFlight:
    """Idempotency keys whose first request is still being handled (→ 409)."""

    def __init__(self) -> None:
        self.keys: set[tuple[str, str]] = set()
        self.lock = threading.Lock()

    def enter(self, key: tuple[str, str]) -> None:
        with self.lock:
            if key in self.keys:
                raise Conflict("a request with this Idempotency-Key is still being handled; retry")
            self.keys.add(key)

    def leave(self, key: tuple[str, str]) -> None:
        with self.lock:
            self.keys.discard(key)


def in_flight(request: Request) -> _InFlight:
    state = request.app.state
    if not hasattr(state, "idempotency_in_flight"):
        state.idempotency_in_flight = _InFlight()
    return state.idempotency_in_flight


@router.post(
    "",
    status_code=202,
    response_model=RunOut,
    responses={
        200: {
            "model": RunOut,
            "description": "Replay: the run first created with this Idempotency-Key.",
        },
        400: {"model": Problem, "description": "Malformed or too deeply nested JSON."},
        404: {"model": Problem, "description": "No dataset with the spec's `dataset` id."},
        409: {"model": Problem, "description": "The same Idempotency-Key is still being handled."},
        413: {"model": Problem, "description": "Body over ANNLAB_MAX_BODY_BYTES."},
        422: {
            "model": Problem,
            "description": "Invalid spec (the field is named), a spec that does not fit its "
            "dataset, a spec over a limit, or an Idempotency-Key reused with another body.",
        },
        429: {"model": Problem, "description": "Too many queued runs (ANNLAB_MAX_QUEUED_RUNS)."},
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
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Makes retries safe: the same key and body return the first run.",
        ),
    ] = None,
) -> RunOut:
    """Queue a run. It is stored before the 202 is sent; `Location` points at it."""
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
        raise Unprocessable("the Idempotency-Key header must have 1 to 255 characters")
    request_hash = hashlib.sha256(spec.model_dump_json().encode()).hexdigest()
    key = (user.owner_id, idempotency_key) if idempotency_key else None
    if key is not None:
        in_flight(request).enter(key)
    try:
        if key is not None:
            existing = run_store.find_by_idempotency_key(
                session=session, owner_id=user.owner_id, key=key[1]
            )
            if existing is not None:
                return _replay(existing, request_hash, request, response)
        shape = dataset_shape(session=session, dataset_id=spec.dataset, owner_id=user.scope)
        normalised = check_against_dataset(spec, shape)
        n_parameters = check_spec_limits(normalised, n_features=shape.n_features, settings=settings)
        queued = run_store.count_queued(session=session, owner_id=user.owner_id)
        if queued >= settings.max_queued_runs:
            raise TooMany(
                limit_message(
                    "the number of your queued runs",
                    queued,
                    settings.max_queued_runs,
                    "max_queued_runs",
                ),
                headers={"Retry-After": "10"},
            )
        try:
            row = run_store.create_run(
                session=session,
                owner_id=user.owner_id,
                dataset_id=spec.dataset,
                spec=normalised.model_dump(mode="json"),
                name=normalised.name or spec.dataset,
                epochs=normalised.training.epochs,
                n_parameters=n_parameters,
                idempotency_key=idempotency_key,
                request_hash=request_hash if idempotency_key else None,
            )
            session.commit()
        except IntegrityError:
            # Another process stored the same key first.
            session.rollback()
            existing = run_store.find_by_idempotency_key(
                session=session, owner_id=user.owner_id, key=idempotency_key or ""
            )
            if existing is None:
                raise
            return _replay(existing, request_hash, request, response)
    finally:
        if key is not None:
            in_flight(request).leave(key)
    executor.notify()
    response.headers["Location"] = str(request.url_for("get_run", run_id=row.id))
    return RunOut.from_row(row)


def _replay(existing: Any, request_hash: str, request: Request, response: Response) -> RunOut:
    if existing.request_hash != request_hash:
        raise Unprocessable(
            "this Idempotency-Key was already used with another request body; use a new key"
        )
    response.status_code = 200
    response.headers["Location"] = str(request.url_for("get_run", run_id=existing.id))
    response.headers["Idempotent-Replayed"] = "true"
    return RunOut.from_row(existing)


@router.get("", response_model=RunList, summary="List runs, newest first")
def list_runs(
    session: SessionDep,
    user: CurrentUser,
    status: Annotated[RunStatus | None, Query(description="Only runs in this status.")] = None,
    dataset: Annotated[str | None, Query(description="Only runs on this dataset id.")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size (at most 100).")] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="Runs to skip.")] = 0,
) -> RunList:
    rows, total = run_store.list_runs(
        session=session,
        owner_id=user.scope,
        status=status,
        dataset_id=dataset,
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


@router.get(
    "/{run_id}/events",
    responses={
        **NOT_FOUND,
        200: {
            "description": "`event: progress` (data `{epoch, epochs, metrics}`) per recorded "
            "epoch, `event: status` (data `{status, stop_reason, error}`) on each status "
            "change starting with the current one; the stream ends after a final status "
            "(or without one if the run is deleted meanwhile).",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
    },
    response_class=EventSourceResponse,
    summary="Follow a run as server-sent events",
)
async def run_events(run_id: RunId, request: Request, user: CurrentUser) -> EventSourceResponse:
    factory = request.app.state.session_factory

    def snapshot(after_epoch: int) -> tuple[dict[str, Any], list[tuple[int, Any]]] | None:
        with factory() as session:
            row = run_store.get_run(session=session, run_id=run_id, owner_id=user.scope)
            if row is None:
                return None
            state = {
                "status": row.status,
                "stop_reason": row.stop_reason,
                "error": row.error,
                "epochs": row.epochs,
            }
            metrics = [
                (row.epoch, run_store.metrics_dict(row))
                for row in run_store.get_metrics(
                    session=session, run_id=run_id, after_epoch=after_epoch
                )
            ]
            return state, metrics

    first = await run_in_threadpool(snapshot, 2**31 - 1)
    if first is None:
        raise NotFound(f"run {run_id!r} not found")

    async def stream() -> AsyncIterator[dict[str, str]]:
        last_epoch, last_status = 0, None
        while True:
            current = await run_in_threadpool(snapshot, last_epoch)
            if current is None:  # deleted while watched: no status to report, just end
                return
            state, metrics = current
            for epoch, values in metrics:
                last_epoch = epoch
                payload = {"epoch": epoch, "epochs": state["epochs"], "metrics": values}
                yield {"event": "progress", "data": json.dumps(payload)}
            if state["status"] != last_status:
                last_status = state["status"]
                payload = {key: state[key] for key in ("status", "stop_reason", "error")}
                yield {"event": "status", "data": json.dumps(payload)}
            if state["status"] in TERMINAL:
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(EVENTS_POLL_SECONDS)

    return EventSourceResponse(stream(), ping=15)


@router.post(
    "/{run_id}/cancel",
    status_code=202,
    response_model=RunOut,
    responses={**NOT_FOUND, 409: {"model": Problem, "description": "The run already finished."}},
    summary="Cancel a queued or running run",
)
def cancel_run(run: ValidRun, session: SessionDep) -> RunOut:
    if run.status in TERMINAL:
        raise Conflict(f"run {run.id!r} already finished ({run.status})")
    if not run_store.cancel_queued(session=session, run_id=run.id) and not run_store.request_cancel(
        session=session, run_id=run.id
    ):
        raise Conflict(f"run {run.id!r} already finished")
    session.commit()
    session.refresh(run)
    return RunOut.from_row(run)


@router.delete(
    "/{run_id}",
    status_code=204,
    responses=NOT_FOUND,
    summary="Delete a run (a running run is cancelled first)",
)
def delete_run(
    run: ValidRun, request: Request, session: SessionDep, cache: PredictCacheDep
) -> Response:
    run_id = run.id
    if run.status == "queued":
        run_store.cancel_queued(session=session, run_id=run_id)
    if run_store.request_cancel(session=session, run_id=run_id):
        session.commit()
        _wait_until_stopped(request, run_id, timeout=2.0)
    run_store.delete_run(session=session, run_id=run_id)
    session.commit()
    cache.evict(run_id)
    return Response(status_code=204)


def _wait_until_stopped(request: Request, run_id: str, *, timeout: float) -> None:
    factory = request.app.state.session_factory
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with factory() as session:
            row = run_store.get_run(session=session, run_id=run_id, owner_id=None)
            if row is None or row.status != "running":
                return
        time.sleep(0.05)


# ------------------------------------------------------------------ the trained model

NOT_READY = {409: {"model": Problem, "description": "The run has not succeeded (yet)."}}


def _load_model(*, session: Any, run: Any, cache: Any) -> CachedModel:
    from core.serialize import TrainedModel

    entry = cache.get(run.id)
    if entry is not None:
        return entry
    if run.status != "succeeded":
        raise Conflict(f"run {run.id!r} is {run.status}: no trained model until it has succeeded")
    blob = run_store.get_weights(session=session, run_id=run.id)
    if blob is None:
        raise Conflict(f"run {run.id!r} has no stored weights")
    model = TrainedModel.from_npz_bytes(blob)
    entry = CachedModel(
        owner_id=run.owner_id, model=model, n_features=int(model.layers[0][0].shape[0])
    )
    cache.put(run.id, entry)
    return entry


@router.get(
    "/{run_id}/weights",
    response_model=WeightsDocument,
    responses={
        **NOT_FOUND,
        **NOT_READY,
        200: {
            "description": "The weights document (JSON), or with `format=npz` the same arrays "
            "as an .npz file that loads with allow_pickle=False.",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
    },
    summary="Download the trained weights (JSON or .npz)",
)
def get_weights(
    run: ValidRun,
    session: SessionDep,
    cache: PredictCacheDep,
    format: Annotated[
        Literal["json", "npz"], Query(description="`json` (default) or `npz`.")
    ] = "json",
) -> Response:
    if run.status != "succeeded":
        raise Conflict(f"run {run.id!r} is {run.status}: weights exist once it has succeeded")
    if format == "npz":
        blob = run_store.get_weights(session=session, run_id=run.id)
        if blob is None:
            raise Conflict(f"run {run.id!r} has no stored weights")
        return Response(
            content=blob,
            media_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{run.id}.npz"'},
        )
    entry = _load_model(session=session, run=run, cache=cache)
    return ORJSONResponse(entry.model.to_weights_document())


#: Above this many rows a prediction runs in the thread pool, not on the event loop.
INLINE_PREDICT_ROWS = 1000

PREDICT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}
        },
    }
}


@router.post(
    "/{run_id}/predict",
    response_model=PredictResponse,
    responses={
        **NOT_FOUND,
        **NOT_READY,
        400: {"model": Problem, "description": "Malformed or too deeply nested JSON."},
        413: {"model": Problem, "description": "Body over ANNLAB_MAX_BODY_BYTES."},
        422: {
            "model": Problem,
            "description": "Not a list of rows, wrong feature count, non-finite numbers, more "
            "rows than ANNLAB_MAX_PREDICT_ROWS, or inputs so large the outputs overflow.",
        },
    },
    openapi_extra=PREDICT_BODY,
    summary="Predict with the trained model",
)
async def predict(run_id: RunId, request: Request, user: CurrentUser) -> Response:
    # The hot path, on the event loop: a warm prediction reads no database. The body
    # ({"inputs": [[number]]}, declared in OpenAPI through openapi_extra) is parsed
    # with orjson and checked with NumPy; what fails the fast check is validated by
    # PredictRequest for the 422 list FastAPI would give. Only a cache miss opens a
    # session (in the thread pool). With auth on, the key lookup is a thread hop.
    settings = request.app.state.settings
    matrix, rows = _predict_inputs(await request.body(), request.headers.get("content-type"))
    n_rows = len(matrix) if matrix is not None else len(rows or [])
    if n_rows > settings.max_predict_rows:
        raise LimitExceeded(
            "inputs: "
            + limit_message(
                "the number of rows", n_rows, settings.max_predict_rows, "max_predict_rows"
            )
        )
    cache = request.app.state.predict_cache
    entry = cache.get(run_id)
    if entry is not None and user.scope is not None and entry.owner_id != user.scope:
        raise NotFound(f"run {run_id!r} not found")  # another user's run: as if unknown
    if entry is None:
        entry = await run_in_threadpool(
            _load_for_predict, request.app.state.session_factory, run_id, user.scope, cache
        )
    if matrix is None:
        widths = {len(row) for row in rows or []}
        if widths == {entry.n_features}:
            matrix = np.asarray(rows, dtype=np.float64)
    else:
        widths = {matrix.shape[1]}
    if matrix is None or matrix.shape[1] != entry.n_features:
        raise Unprocessable(
            f"inputs: each row must have {entry.n_features} numbers (the model's input width); "
            f"got rows of {sorted(widths)}"
        )
    if len(matrix) <= INLINE_PREDICT_ROWS:
        result = entry.model.try_predict(matrix)
        if result is not None:  # None: the model is busy in another thread; never wait here
            return _predict_response(entry, *result)
    return await run_in_threadpool(_predict_in_thread, entry, matrix)


async def predict_fast_lane(request: Request) -> Response:
    """``predict`` without FastAPI's per-request machinery (a third of a warm 1-row
    prediction's time): the same steps in the same order as the documented route,
    whose router-wide dependency with auth on only resolves the caller (the HTTPBearer
    scheme, ``auto_error=False``, documents it and checks nothing): the depth guard,
    the caller (401), then the route."""
    await check_json_depth(request)
    user = await get_current_user(request)
    return await predict(request.path_params["run_id"], request, user)


class PredictFastLane(Route):
    """``POST {prefix}/runs/{run_id}/predict`` at the head of the app's routes (the
    documented route is found only after every other one; FastAPI's nested routers
    match it several times over). Not in OpenAPI: the documented route describes it.
    A run id over ``RUN_ID_MAX_LENGTH`` is left to the documented route (FastAPI's
    422), as is any other method (its 405)."""

    def __init__(self, prefix: str) -> None:
        super().__init__(
            f"{prefix}{router.prefix}/{{run_id}}/predict",
            predict_fast_lane,
            methods=["POST"],
            include_in_schema=False,
        )

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.FULL or len(child_scope["path_params"]["run_id"]) > (
            RUN_ID_MAX_LENGTH
        ):
            return Match.NONE, {}
        return match, child_scope


def _predict_in_thread(entry: CachedModel, matrix: np.ndarray) -> Response:
    return _predict_response(entry, *entry.model.predict(matrix))


def _predict_response(entry: CachedModel, outputs: np.ndarray, predictions: list) -> Response:
    if not np.isfinite(outputs).all():  # JSON has no NaN/Inf: never answer null for them
        row = int(np.argwhere(~np.isfinite(outputs))[0][0])
        raise Unprocessable(
            f"inputs[{row}]: the model's outputs are not finite for this row (the inputs are "
            f"too large for {entry.model.spec.dtype}: the computation overflows)"
        )
    return ORJSONResponse({"outputs": outputs, "predictions": predictions})


def _load_for_predict(
    factory: Any, run_id: str, scope: str | None, cache: PredictCache
) -> CachedModel:
    """A cache miss: the run (404 unknown or another user's, 409 not succeeded) and its
    model, loaded into the cache."""
    with transaction(factory) as session:
        run = run_store.get_run(session=session, run_id=run_id, owner_id=scope)
        if run is None:
            raise NotFound(f"run {run_id!r} not found")
        return _load_model(session=session, run=run, cache=cache)


def _predict_inputs(
    body: bytes, content_type: str | None
) -> tuple[np.ndarray | None, list[list[float]] | None]:
    """The checked inputs of a predict body: a finite float64 matrix (the fast path),
    or validated rows of uneven widths (a 422 once the model's width is known).

    400 for malformed JSON (FastAPI's list shape), 422 as ``PredictRequest`` says."""
    if content_type is not None and not _is_json(content_type):
        _validation_error(body)  # FastAPI validates the raw bytes: a 422
    if not body:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        # orjson refuses NaN, Infinity, 1e999 and huge integers, which Python's parser
        # reads (then the schema says 422 naming the number), and nesting past 1024.
        try:
            document = json.loads(body)
        except RecursionError:
            raise BadRequest("JSON nested too deeply to parse") from None
        except ValueError as error:
            if not isinstance(error, json.JSONDecodeError):
                raise BadRequest(f"the body is not JSON: {error}") from None
            raise RequestValidationError(
                [
                    {
                        "type": "json_invalid",
                        "loc": ("body", error.pos),
                        "msg": "JSON decode error",
                        "input": {},
                        "ctx": {"error": error.msg},
                    }
                ]
            ) from None
    if type(document) is dict and len(document) == 1:
        inputs = document.get("inputs")
        if type(inputs) is list and inputs:
            try:
                matrix = np.array(inputs)
            except (ValueError, TypeError, OverflowError):  # e.g. ragged rows
                matrix = None
            if matrix is not None and matrix.ndim == 2 and matrix.dtype.kind in "fiub":
                matrix = np.asarray(matrix, dtype=np.float64)
                if np.isfinite(matrix).all():
                    return matrix, None
    return None, _validation_error(document).inputs


def _validation_error(document: Any) -> PredictRequest:
    """``PredictRequest`` for what the fast check did not accept: FastAPI's 422 list
    (``loc`` from ``body``), or the validated rows."""
    try:
        return PredictRequest.model_validate(document)
    except ValidationError as error:
        raise RequestValidationError(
            [
                {**detail, "loc": ("body", *detail["loc"])}
                for detail in error.errors(include_url=False)
            ]
        ) from None


def _is_json(content_type: str) -> bool:
    subtype = content_type.partition(";")[0].strip().lower().partition("/")[2]
    return subtype == "json" or subtype.endswith("+json")
