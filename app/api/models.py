"""The model registry (API.md "Models"): models, versions, aliases, predicting by name,
and a version's ONNX file. The logic is ``app.services.registry``."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from app.api.predict import INLINE_PREDICT_ROWS, PREDICT_BODY
from app.api.predict_body import NamedInputs, predict_inputs
from app.db import registry as store
from app.db import runs as run_store
from app.db.tables import ModelRow
from app.deps import CurrentUser, ModelCacheDep, SessionDep
from app.errors import NotFound
from app.http import GuardedRoute, ORJSONResponse
from app.schemas import MALFORMED_JSON, TOO_LARGE, PredictResponse, problem
from app.schemas_registry import (
    MODEL_NAME_PATTERN,
    AliasIn,
    ModelIn,
    ModelList,
    ModelOut,
    VersionIn,
    VersionOut,
)
from app.services import registry, serving
from app.services.registry import Resolutions, Served
from core.export_onnx import to_onnx

router = APIRouter(prefix="/models", tags=["models"], route_class=GuardedRoute)

NAME = Annotated[str, Path(max_length=64, description="The model's name.")]
ALIAS = Annotated[str, Path(max_length=64, description="An alias of the model.")]
VERSION = Annotated[int, Path(ge=1, le=2**31 - 1, description="A version number.")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: problem("No such model (or version, alias).")}
BODY_ERRORS: dict[int | str, dict[str, Any]] = {400: MALFORMED_JSON, 413: TOO_LARGE}
OCTETS = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def get_resolutions(request: Request) -> Resolutions:
    resolutions: Resolutions = request.app.state.resolutions
    return resolutions


ResolutionsDep = Annotated[Resolutions, Depends(get_resolutions)]


def valid_model(name: NAME, session: SessionDep, user: CurrentUser) -> ModelRow:
    return registry.get_model(session=session, name=name, scope=user.scope)


ValidModel = Annotated[ModelRow, Depends(valid_model)]


def _out(session: SessionDep, model: ModelRow) -> ModelOut:
    return ModelOut.model_validate(registry.model_document(session=session, model=model))


@router.post(
    "",
    status_code=201,
    response_model=ModelOut,
    responses={
        **BODY_ERRORS,
        409: problem("A model of this name exists."),
        422: problem("Invalid name."),
    },
    summary="Register a model name",
)
def create_model(body: ModelIn, session: SessionDep, user: CurrentUser) -> ModelOut:
    """Names match `^[a-z0-9][a-z0-9._-]{0,63}$` and are unique on the server."""
    row = registry.create_model(
        session=session, owner=user, name=body.name, description=body.description
    )
    return _out(session, row)


@router.get("", response_model=ModelList, summary="List models, by name")
def list_models(
    session: SessionDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size (at most 100).")] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="Models to skip.")] = 0,
) -> ModelList:
    rows, total = store.list_models(
        session=session, owner_id=user.scope, limit=limit, offset=offset
    )
    return ModelList(items=[_out(session, row) for row in rows], total=total)


@router.get("/{name}", response_model=ModelOut, responses=NOT_FOUND, summary="One model")
def get_model(model: ValidModel, session: SessionDep) -> ModelOut:
    return _out(session, model)


@router.delete(
    "/{name}", status_code=204, responses=NOT_FOUND, summary="Delete a model (its runs stay)"
)
def delete_model(
    model: ValidModel, session: SessionDep, resolutions: ResolutionsDep, user: CurrentUser
) -> Response:
    registry.delete_model(session=session, model=model, resolutions=resolutions, actor=user)
    return Response(status_code=204)


@router.post(
    "/{name}/versions",
    status_code=201,
    response_model=VersionOut,
    responses={
        **NOT_FOUND,
        **BODY_ERRORS,
        409: problem("The run has not succeeded (and no snapshot at `epoch` was asked for)."),
    },
    summary="Add a version from a run's final model or one of its snapshots",
)
def add_version(
    body: VersionIn,
    model: ValidModel,
    session: SessionDep,
    user: CurrentUser,
    cache: ModelCacheDep,
) -> VersionOut:
    run = run_store.get_run(session=session, run_id=body.run_id, owner_id=user.scope)
    if run is None:
        raise NotFound(f"run {body.run_id!r} not found")
    row = registry.add_version(
        session=session, cache=cache, model=model, run=run, epoch=body.epoch, actor=user
    )
    return VersionOut.model_validate(registry.version_document(row))


@router.get(
    "/{name}/versions/{version}",
    response_model=VersionOut,
    responses=NOT_FOUND,
    summary="One version",
)
def get_version(model: ValidModel, version: VERSION, session: SessionDep) -> VersionOut:
    row = registry.get_version(session=session, model=model, version=version)
    return VersionOut.model_validate(registry.version_document(row))


@router.put(
    "/{name}/aliases/{alias}",
    response_model=ModelOut,
    responses={
        **NOT_FOUND,
        **BODY_ERRORS,
        422: problem(f"An alias must match {MODEL_NAME_PATTERN}, not a number."),
    },
    summary="Point an alias at a version (takes effect on the next request)",
)
def set_alias(
    alias: ALIAS,
    body: AliasIn,
    model: ValidModel,
    session: SessionDep,
    resolutions: ResolutionsDep,
    user: CurrentUser,
) -> ModelOut:
    registry.set_alias(
        session=session,
        model=model,
        alias=alias,
        version=body.version,
        resolutions=resolutions,
        actor=user,
    )
    return _out(session, model)


@router.delete(
    "/{name}/aliases/{alias}", status_code=204, responses=NOT_FOUND, summary="Delete an alias"
)
def delete_alias(
    alias: ALIAS,
    model: ValidModel,
    session: SessionDep,
    resolutions: ResolutionsDep,
    user: CurrentUser,
) -> Response:
    registry.delete_alias(
        session=session, model=model, alias=alias, resolutions=resolutions, actor=user
    )
    return Response(status_code=204)


@router.get(
    "/{name}/versions/{version}/onnx",
    response_class=Response,
    responses={**NOT_FOUND, 200: {"description": "The version's ONNX model.", "content": OCTETS}},
    summary="Download a version as an ONNX model",
)
def version_onnx(
    model: ValidModel,
    version: VERSION,
    session: SessionDep,
    cache: ModelCacheDep,
    resolutions: ResolutionsDep,
) -> Response:
    served = registry.load(
        session=session,
        name=model.name,
        reference=str(version),
        scope=None,
        resolutions=resolutions,
        cache=cache,
    )
    return onnx_response(served.model, f"{model.name}-v{version}")


def onnx_response(entry: serving.LoadedModel, stem: str) -> Response:
    return Response(
        content=to_onnx(entry.model),
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{stem}.onnx"'},
    )


PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    400: MALFORMED_JSON,
    413: TOO_LARGE,
    422: problem("As a run's predict: wrong feature count, non-finite numbers, too many rows."),
}


@router.post(
    "/{name}/versions/{version}/predict",
    response_model=PredictResponse,
    responses=PREDICT_RESPONSES,
    openapi_extra=PREDICT_BODY,
    summary="Predict with a version",
)
async def predict_version(
    name: NAME, version: VERSION, request: Request, user: CurrentUser
) -> Response:
    return await predict_by_reference(request, name, str(version), user.scope)


@router.post(
    "/{name}/aliases/{alias}/predict",
    response_model=PredictResponse,
    responses=PREDICT_RESPONSES,
    openapi_extra=PREDICT_BODY,
    summary="Predict with the version an alias points at",
)
async def predict_alias(name: NAME, alias: ALIAS, request: Request, user: CurrentUser) -> Response:
    registry.check_alias(alias)
    return await predict_by_reference(request, name, alias, user.scope)


async def served_model(request: Request, name: str, reference: str, scope: str | None) -> Served:
    """The model of ``(name, reference)``: warm, no database; else in the thread pool."""
    state = request.app.state
    served = registry.cached(
        name=name,
        reference=reference,
        scope=scope,
        resolutions=state.resolutions,
        cache=state.model_cache,
    )
    if served is not None:
        return served

    def load() -> Served:
        with state.session_factory() as session:
            return registry.load(
                session=session,
                name=name,
                reference=reference,
                scope=scope,
                resolutions=state.resolutions,
                cache=state.model_cache,
            )

    return await run_in_threadpool(load)


async def predict_rows(entry: serving.LoadedModel, inputs: Any) -> serving.Prediction:
    """Inline on the event loop for small batches when the model is free."""
    if len(inputs) <= INLINE_PREDICT_ROWS:
        result = serving.try_predict(model=entry, inputs=inputs)
        if result is not None:
            return result
    return await run_in_threadpool(lambda: serving.predict(model=entry, inputs=inputs))


async def predict_by_reference(
    request: Request, name: str, reference: str, scope: str | None
) -> Response:
    parsed = predict_inputs(await request.body(), request.headers.get("content-type"))
    named: NamedInputs | None = None
    matrix: np.ndarray | None
    if isinstance(parsed, NamedInputs):
        named, matrix, rows = parsed, parsed.matrix, None
    else:
        matrix, rows = parsed
    serving.check_predict_rows(
        n_rows=len(matrix) if matrix is not None else len(rows or []),
        settings=request.app.state.settings,
    )
    served = await served_model(request, name, reference, scope)
    if named is not None:  # records or CSV: columns by name, in the model's order
        matrix = named.for_features(served.model.model.feature_names)
    inputs = serving.input_matrix(model=served.model, matrix=matrix, rows=rows)
    result = await predict_rows(served.model, inputs)
    return ORJSONResponse({"outputs": result.outputs, "predictions": result.predictions})
