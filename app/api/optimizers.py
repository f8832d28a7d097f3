"""Optimizer trajectories on 2-D test functions (the optimizer walk-through).

Both routes are plain ``def``: FastAPI runs them in its thread pool, so a long
trajectory request never blocks the event loop; ``ANNLAB_MAX_TRAJECTORY_WORK``
bounds the steps × optimizers of one request before any work is done.
"""

from __future__ import annotations

from fastapi import APIRouter

from app.config import Settings
from app.deps import SettingsDep
from app.errors import LimitExceeded, limit_message
from app.http import GuardedRoute, ORJSONResponse
from app.schemas import FunctionOut, FunctionsResponse, Problem, TrajectoriesResponse
from core.specs import TrajectoryRequest
from core.surfaces import SURFACES, run_trajectories

router = APIRouter(prefix="/optimizers", tags=["optimizers"], route_class=GuardedRoute)


@router.post(
    "/trajectories",
    response_model=TrajectoriesResponse,
    response_class=ORJSONResponse,
    responses={
        400: {"model": Problem, "description": "Malformed or too deeply nested JSON."},
        413: {"model": Problem, "description": "Body over ANNLAB_MAX_BODY_BYTES."},
        422: {
            "model": Problem,
            "description": "Unknown function, bad optimizer, bad start, or steps × optimizers "
            "over ANNLAB_MAX_TRAJECTORY_WORK.",
        },
    },
    summary="Run optimizers from one start point on a 2-D function",
)
def trajectories(request: TrajectoryRequest, settings: SettingsDep) -> ORJSONResponse:
    """Each point after `start` is one optimizer step on the exact gradient (float64);
    a trajectory stops at its first non-finite value (`diverged_at`). `values` are the
    objective each optimizer minimises: f plus its L1/L2 term."""
    check_work(request, settings)
    return ORJSONResponse(TrajectoriesResponse.body(run_trajectories(request)))


def check_work(request: TrajectoryRequest, settings: Settings) -> None:
    """422 when steps × optimizers is over ``ANNLAB_MAX_TRAJECTORY_WORK`` (before any work)."""
    if request.work > settings.max_trajectory_work:
        raise LimitExceeded(
            "steps: "
            + limit_message(
                "steps × optimizers",
                request.work,
                settings.max_trajectory_work,
                "max_trajectory_work",
            )
        )


@router.get(
    "/functions",
    response_model=FunctionsResponse,
    summary="The 2-D test functions: formula, minima and a plotting window",
)
def functions() -> FunctionsResponse:
    """Every function `/optimizers/trajectories` accepts, with all its minima and a
    window (`{"x": [lo, hi], "y": [lo, hi]}`) that shows them."""
    return FunctionsResponse(
        functions=[FunctionOut.from_surface(surface) for surface in SURFACES.values()]
    )
