"""The trained model of a run: its weights, and predictions (the hot route).

``predict`` runs on the event loop and, warm, reads no database: the body
(``{"inputs": [[number]]}``, declared in OpenAPI through ``openapi_extra``) is
parsed with orjson and checked with NumPy (``app.api.predict_body``); the model
comes from the cache (``app.services.serving``). Its route class, ``PredictRoute``,
skips FastAPI's per-request dependency solving (a third of a warm 1-row
prediction's time) and runs the same guards itself (``app.api.fast_lane``). With ``?epoch=`` (a snapshot)
the request takes FastAPI's documented path, which validates the query.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.api.fast_lane import FastLaneRoute
from app.api.predict_body import NamedInputs, predict_inputs
from app.config import Settings
from app.deps import (
    RUN_ID_MAX_LENGTH,
    CurrentUser,
    ModelCacheDep,
    RunId,
    SessionDep,
    ValidRun,
)
from app.http import GuardedRoute, ORJSONResponse, check_json_depth
from app.schemas import (
    MALFORMED_JSON,
    TOO_LARGE,
    PredictResponse,
    WeightsDocument,
    problem,
)
from app.services import serving
from app.services.serving import LoadedModel, ModelCache, ModelKey, Prediction
from core.export_onnx import to_onnx


class PredictRoute(FastLaneRoute, GuardedRoute):
    """The predict route's fast lane (``app.api.fast_lane``): after the caller, the row
    bound and the JSON depth guard (``GuardedRoute``'s), then the endpoint. A run id
    over ``RUN_ID_MAX_LENGTH`` goes to FastAPI's handler, for its 422; so does any
    request with a query string (``?epoch=``: FastAPI validates it)."""

    def fast_arguments(self, request: Request) -> dict[str, Any] | None:
        run_id = request.path_params["run_id"]
        if len(run_id) > RUN_ID_MAX_LENGTH or request.scope.get("query_string"):
            return None
        return {"run_id": run_id}

    async def check_body(self, request: Request) -> None:
        # more rows than the limit: refused before any scan or parse of the body
        check_row_bound(await request.body(), request.app.state.settings)
        await check_json_depth(request)


router = APIRouter(prefix="/runs", tags=["runs"], route_class=GuardedRoute)
#: The predict route alone (``PredictRoute``), mounted first (``app.api.main``).
predict_router = APIRouter(prefix="/runs", tags=["runs"], route_class=PredictRoute)

NOT_READY: dict[int | str, dict[str, Any]] = {409: problem("The run has not succeeded (yet).")}
NO_SNAPSHOT: dict[int | str, dict[str, Any]] = {
    404: problem(
        "No run with this id, or (with `epoch`) no snapshot at that epoch: "
        "the detail lists the epochs that have one."
    )
}

#: ``?epoch=``: a snapshot instead of the final model.
SnapshotEpoch = Annotated[
    int | None,
    Query(
        ge=1,
        le=2**31 - 1,
        description="A snapshot's epoch (`GET /runs/{id}/snapshots`): its model, allowed "
        "while the run is still running or after a cancel. Omitted: the final model.",
    ),
]

#: Above this many rows a prediction runs in the thread pool, not on the event loop.
INLINE_PREDICT_ROWS = 1000
#: Bodies larger than this are parsed in the thread pool, not on the event loop.
INLINE_PARSE_BYTES = 256 * 1024

PREDICT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/PredictRequest"},
                        {"$ref": "#/components/schemas/PredictRecordsRequest"},
                    ]
                }
            },
            "text/csv": {
                "schema": {
                    "type": "string",
                    "description": "A header row of feature names (any order), then rows.",
                },
                "example": "petal_length,sepal_length,petal_width,sepal_width\n1.4,5.1,0.2,3.5\n",
            },
        },
    }
}


@router.get(
    "/{run_id}/weights",
    response_model=WeightsDocument,
    responses={
        **NO_SNAPSHOT,
        **NOT_READY,
        200: {
            "description": "The weights document (JSON), or with `format=npz` the same arrays "
            "as an .npz file that loads with allow_pickle=False, or with `format=onnx` an "
            "ONNX model (input `inputs`, raw features; output `outputs`).",
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
    cache: ModelCacheDep,
    format: Annotated[
        Literal["json", "npz", "onnx"],
        Query(description="`json` (default), `npz`, or `onnx` (opset 17; standardisation inside)."),
    ] = "json",
    epoch: SnapshotEpoch = None,
) -> Response:
    if format == "onnx":
        name = run.id if epoch is None else f"{run.id}-epoch-{epoch}"
        if epoch is None:
            serving.weights_npz(session=session, run=run)  # 409 until succeeded
        entry = serving.model_of(session=session, cache=cache, run=run, epoch=epoch)
        return Response(
            content=to_onnx(entry.model),
            media_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{name}.onnx"'},
        )
    if format == "npz":
        name = run.id if epoch is None else f"{run.id}-epoch-{epoch}"
        return Response(
            content=serving.weights_npz(session=session, run=run, epoch=epoch),
            media_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{name}.npz"'},
        )
    return ORJSONResponse(
        serving.weights_document(session=session, cache=cache, run=run, epoch=epoch)
    )


@predict_router.post(
    "/{run_id}/predict",
    response_model=PredictResponse,
    responses={
        **NO_SNAPSHOT,
        **NOT_READY,
        400: MALFORMED_JSON,
        413: TOO_LARGE,
        422: problem(
            "Not a list of rows, wrong feature count, non-finite numbers, more "
            "rows than ANNLAB_MAX_PREDICT_ROWS, or inputs so large the outputs overflow."
        ),
    },
    openapi_extra=PREDICT_BODY,
    summary="Predict with the trained model",
)
async def predict(
    run_id: RunId, request: Request, user: CurrentUser, epoch: SnapshotEpoch = None
) -> Response:
    state = request.app.state
    body = await request.body()
    content_type = request.headers.get("content-type")
    check_row_bound(body, state.settings)
    if len(body) > INLINE_PARSE_BYTES:
        parsed = await run_in_threadpool(predict_inputs, body, content_type)
    else:
        parsed = predict_inputs(body, content_type)
    named: NamedInputs | None = None
    matrix: np.ndarray | None
    if isinstance(parsed, NamedInputs):  # records or CSV: columns by name
        named, matrix, rows = parsed, parsed.matrix, None
    else:
        matrix, rows = parsed
    serving.check_predict_rows(
        n_rows=len(matrix) if matrix is not None else len(rows or []), settings=state.settings
    )
    key = ModelKey(run_id, epoch)
    cache: ModelCache = state.model_cache
    entry = serving.cached_model(cache=cache, key=key, scope=user.scope)
    if entry is None:  # a miss: the run and its model, in the thread pool
        entry = await run_in_threadpool(_load, state.session_factory, cache, key, user.scope)
    if named is not None:  # records or CSV: columns by name, in the model's order
        matrix = named.for_features(entry.model.feature_names)
    inputs = serving.input_matrix(model=entry, matrix=matrix, rows=rows)
    if len(inputs) <= INLINE_PREDICT_ROWS:
        result = serving.try_predict(model=entry, inputs=inputs)
        if result is not None:  # None: the model is busy in another thread; never wait here
            return _response(result)
    return _response(await run_in_threadpool(_predict, entry, inputs))


def check_row_bound(body: bytes, settings: Settings) -> None:
    """A valid body has one "[" per row and one around them: more is over the row limit
    (or not a valid body at all), a 422 before anything is parsed (a C-speed count)."""
    serving.check_predict_rows(n_rows=body.count(b"[") - 1, settings=settings)


def _load(
    factory: sessionmaker[Session], cache: ModelCache, key: ModelKey, scope: str | None
) -> LoadedModel:
    with factory() as session:
        return serving.load_model(session=session, cache=cache, key=key, scope=scope)


def _predict(entry: LoadedModel, inputs: np.ndarray) -> Prediction:
    return serving.predict(model=entry, inputs=inputs)


def _response(result: Prediction) -> Response:
    return ORJSONResponse({"outputs": result.outputs, "predictions": result.predictions})
