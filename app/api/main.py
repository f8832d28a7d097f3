"""All routers of the API: ``/api/v1`` (with the auth guard when it is on) and the
health checks at the root. ``include_api`` is the one place routers are mounted."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI

from app.api import (
    datasets,
    evaluation,
    events,
    experiments,
    health,
    inspect,
    mlflow_serve,
    models,
    optimizers,
    plots,
    predict,
    runs,
)
from app.api.fast_lane import include_hot
from app.deps import require_user

API_PREFIX = "/api/v1"

UNAUTHORIZED = (
    "No `Authorization: Bearer KEY` header, or an unknown or revoked key "
    "(answered with `WWW-Authenticate: Bearer`)."
)

api_router = APIRouter(prefix=API_PREFIX)
api_router.include_router(datasets.router)
api_router.include_router(runs.router)
api_router.include_router(events.router)
api_router.include_router(evaluation.router)
api_router.include_router(predict.router)
api_router.include_router(inspect.router)
api_router.include_router(plots.router)
api_router.include_router(optimizers.router)
api_router.include_router(experiments.router)
api_router.include_router(models.router)

root_router = APIRouter()
root_router.include_router(health.router)


def include_api(app: FastAPI, *, auth: bool) -> None:
    """Mount every router; with ``auth`` every ``/api/v1`` route needs a valid key
    (``require_user``, which also documents the bearer scheme and the 401)."""
    guards: dict[str, Any] = {}
    if auth:
        guards = {
            "dependencies": [Depends(require_user)],
            # as JSON content, not "model": the plot routes' own media type is an image
            "responses": {
                401: {
                    "description": UNAUTHORIZED,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                    },
                }
            },
        }
    # The hot routes first: their lanes (plain routes, matched once each, no
    # dependency solving: app.api.fast_lane), then their documented routes. A warm
    # prediction takes a fraction of a millisecond; behind ≈ 40 API routes, or
    # through FastAPI's handler, a third of it went to matching and solving.
    for hot, prefix in (
        (predict.predict_router, API_PREFIX),
        (mlflow_serve.invocations_router, ""),
    ):
        include_hot(app, hot, prefix, **guards)
    app.include_router(root_router)
    app.include_router(api_router, **guards)
    app.include_router(mlflow_serve.router, **guards)  # MLflow's paths: no /api/v1
