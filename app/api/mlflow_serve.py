"""MLflow's scoring protocol (API.md "Serving for MLflow clients").

``/serve/{name}/{version-or-alias}/{ping,health,version,invocations}`` on the main
server (no ``/api/v1`` prefix; the key is needed like everywhere else when auth is
on), and the same four routes at the root for ``annlab models serve``
(``serve_one_router``). A number is a version, anything else an alias. Errors are
MLflow's: ``{"error_code": ..., "message": ...}`` (400 BAD_REQUEST for a body it
cannot score, 415 for another content type, 404 RESOURCE_DOES_NOT_EXIST for an
unknown model, version or alias).

``/invocations`` is a hot route: its ``InvocationsRoute`` takes the fast lane of
``app.api.fast_lane`` (no dependency solving), and the main server mounts it first
(``invocations_router``), before the ≈ 40 API routes a request is matched against.
"""

from __future__ import annotations

from enum import Enum
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse

from app.api.fast_lane import FastLaneRoute
from app.api.models import predict_rows, served_model
from app.deps import CurrentUser
from app.errors import AppError
from app.http import ORJSONResponse
from app.services import serving
from app.services.mlflow_body import InvocationError, parse_invocation

ERROR_CODES = {
    400: "BAD_REQUEST",
    404: "RESOURCE_DOES_NOT_EXIST",
    409: "INVALID_STATE",
    413: "BAD_REQUEST",
    415: "BAD_REQUEST",
    422: "BAD_REQUEST",
}

#: The longest model name or reference FastAPI lets through (longer: its 422).
PATH_MAX_LENGTH = 64
NAME = Annotated[str, Path(max_length=PATH_MAX_LENGTH, description="The model's name.")]
REFERENCE = Annotated[
    str, Path(max_length=PATH_MAX_LENGTH, description="A version number, or else an alias.")
]
Output = Annotated[
    str | None,
    Query(description="`probabilities`: the raw outputs (class probabilities) per row."),
]


def _annlab_version() -> str:
    try:
        return version("annlab")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "0.1.0"


ANNLAB_VERSION = _annlab_version()

INVOCATIONS_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object"},
                "example": {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}},
            },
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": 'MLflow\'s error: `{"error_code": "BAD_REQUEST", "message"}`.'},
    404: {"description": "No such model, version or alias (MLflow's error shape)."},
    415: {"description": "Neither application/json nor text/csv (MLflow's error shape)."},
}


def mlflow_error(status: int, message: str) -> ORJSONResponse:
    code = ERROR_CODES.get(status, "INTERNAL_ERROR")
    return ORJSONResponse({"error_code": code, "message": message}, status_code=status)


async def ping(request: Request, name: str, reference: str, scope: str | None) -> Response:
    """200 when the model loads (MLflow answers an empty body)."""
    try:
        await served_model(request, name, reference, scope)
    except AppError as error:
        return mlflow_error(error.status_code, error.detail)
    return PlainTextResponse("\n")


async def invocations(
    request: Request, name: str, reference: str, scope: str | None, output: str | None
) -> Response:
    try:
        served = await served_model(request, name, reference, scope)
        features = (
            served.model.model.feature_names
            or served.resolved.feature_names
            or [f"x{index}" for index in range(served.model.n_features)]
        )
        body = await request.body()
        invocation = parse_invocation(body, request.headers.get("content-type"), features)
        serving.check_predict_rows(
            n_rows=len(invocation.inputs), settings=request.app.state.settings
        )
        inputs = serving.input_matrix(model=served.model, matrix=invocation.inputs, rows=None)
        result = await predict_rows(served.model, inputs)
    except InvocationError as error:
        return mlflow_error(error.status, error.message)
    except AppError as error:
        return mlflow_error(error.status_code, error.detail)
    if output is not None and output != "probabilities":
        return mlflow_error(
            400, f"output: unknown value {output!r}; the one known is probabilities"
        )
    probabilities = invocation.probabilities or output == "probabilities"
    return ORJSONResponse({"predictions": result.outputs if probabilities else result.predictions})


class InvocationsRoute(FastLaneRoute):
    """``/invocations`` in the fast lane (``app.api.fast_lane``): the caller, then the
    endpoint, which parses its body and answers errors in MLflow's shape. A name or
    reference over ``PATH_MAX_LENGTH`` goes to FastAPI's handler, for its 422;
    ``?output=`` is a plain string (FastAPI has nothing to validate): read here the way
    FastAPI reads it, the last value when it is repeated."""

    def fast_arguments(self, request: Request) -> dict[str, Any] | None:
        arguments: dict[str, Any] = dict(request.path_params)  # none at the root
        if any(len(value) > PATH_MAX_LENGTH for value in arguments.values()):
            return None
        if request.scope.get("query_string"):
            arguments["output"] = request.query_params.get("output")
        return arguments


TAGS: list[str | Enum] = ["serving (MLflow)"]
router = APIRouter(prefix="/serve/{name}/{reference}", tags=TAGS)
#: ``/invocations`` alone (``InvocationsRoute``), mounted first (``app.api.main``).
invocations_router = APIRouter(
    prefix="/serve/{name}/{reference}", tags=TAGS, route_class=InvocationsRoute
)


@router.get("/ping", responses=RESPONSES, response_class=PlainTextResponse, summary="Ping")
async def serve_ping(
    name: NAME, reference: REFERENCE, request: Request, user: CurrentUser
) -> Response:
    """200 when the model loads."""
    return await ping(request, name, reference, user.scope)


@router.get("/health", responses=RESPONSES, response_class=PlainTextResponse, summary="Health")
async def serve_health(
    name: NAME, reference: REFERENCE, request: Request, user: CurrentUser
) -> Response:
    """200 when the model loads (as `ping`)."""
    return await ping(request, name, reference, user.scope)


@router.get(
    "/version", responses=RESPONSES, response_class=PlainTextResponse, summary="annlab's version"
)
async def serve_version(
    name: NAME, reference: REFERENCE, request: Request, user: CurrentUser
) -> Response:
    """annlab's version (404 when the model does not exist, as for `ping`)."""
    try:
        await served_model(request, name, reference, user.scope)
    except AppError as error:
        return mlflow_error(error.status_code, error.detail)
    return PlainTextResponse(ANNLAB_VERSION)


@invocations_router.post(
    "/invocations",
    responses=RESPONSES,
    openapi_extra=INVOCATIONS_BODY,
    summary="Score rows (MLflow's scoring protocol)",
)
async def serve_invocations(
    name: NAME, reference: REFERENCE, request: Request, user: CurrentUser, output: Output = None
) -> Response:
    """JSON with exactly one of `dataframe_split`, `dataframe_records`, `instances`,
    `inputs` (and optionally `params`), or CSV with a header row → `{"predictions"}`."""
    return await invocations(request, name, reference, user.scope, output)


def serve_one_router(name: str, reference: str) -> APIRouter:
    """The four routes at the root, for one model (``annlab models serve``)."""
    one = APIRouter(tags=TAGS)

    @one.get("/ping", responses=RESPONSES, response_class=PlainTextResponse)
    async def root_ping(request: Request, user: CurrentUser) -> Response:
        return await ping(request, name, reference, user.scope)

    @one.get("/health", responses=RESPONSES, response_class=PlainTextResponse)
    async def root_health(request: Request, user: CurrentUser) -> Response:
        return await ping(request, name, reference, user.scope)

    @one.get("/version", response_class=PlainTextResponse)
    async def root_version() -> Response:
        return PlainTextResponse(ANNLAB_VERSION)

    async def root_invocations(
        request: Request, user: CurrentUser, output: Output = None
    ) -> Response:
        return await invocations(request, name, reference, user.scope, output)

    one.add_api_route(
        "/invocations",
        root_invocations,
        methods=["POST"],
        responses=RESPONSES,
        openapi_extra=INVOCATIONS_BODY,
        route_class_override=InvocationsRoute,
    )
    return one
