"""Optimizer trajectories on 2-D test functions (the optimizer walk-through)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.http import GuardedRoute, ORJSONResponse
from app.schemas import Problem, TrajectoriesResponse
from core.specs import TrajectoryRequest

router = APIRouter(prefix="/optimizers", tags=["optimizers"], route_class=GuardedRoute)


@router.post(
    "/trajectories",
    response_model=TrajectoriesResponse,
    response_class=ORJSONResponse,
    responses={
        400: {"model": Problem, "description": "Malformed or too deeply nested JSON."},
        413: {"model": Problem, "description": "Body over ANNLAB_MAX_BODY_BYTES."},
        422: {"model": Problem, "description": "Unknown function, bad optimizer, bad start."},
    },
    summary="Run optimizers from one start point on a 2-D function",
)
def trajectories(request: TrajectoryRequest) -> Any:
    """Each point after `start` is one optimizer step on the exact gradient (float64);
    a trajectory stops at its first non-finite value (`diverged_at`)."""
    from core.surfaces import run_trajectories

    return ORJSONResponse(run_trajectories(request))
