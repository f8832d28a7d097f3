"""Seeing training (API.md): a run's snapshots, its decision boundary, one backward pass.

Plain ``def`` routes: FastAPI runs them in its thread pool, so a 400 × 400 grid or a
backward pass of 10,000 rows never blocks the event loop (nor predictions).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.api.predict import NO_SNAPSHOT, SnapshotEpoch
from app.api.runs import NOT_FOUND
from app.deps import ModelCacheDep, SessionDep, SettingsDep, ValidRun
from app.http import GuardedRoute, ORJSONResponse
from app.schemas import Problem
from app.schemas_inspect import (
    BackpropOut,
    BackpropRequest,
    DecisionBoundaryOut,
    FittedCurveOut,
    SnapshotsOut,
)
from app.services import inspection
from app.services.inspection import DEFAULT_RESOLUTION, MAX_RESOLUTION, MIN_RESOLUTION

router = APIRouter(prefix="/runs", tags=["runs"], route_class=GuardedRoute)

NO_MODEL: dict[int | str, dict[str, Any]] = {
    409: {
        "model": Problem,
        "description": "No `epoch` given and the run has neither a final model nor a snapshot "
        "yet (queued, or before its first snapshot); or its dataset was deleted since.",
    }
}


@router.get(
    "/{run_id}/snapshots",
    response_model=SnapshotsOut,
    responses=NOT_FOUND,
    summary="The epochs with a weight snapshot",
)
def get_snapshots(run: ValidRun, session: SessionDep) -> SnapshotsOut:
    """Those taken so far: also while the run is running (`training.snapshots`)."""
    return SnapshotsOut(epochs=inspection.snapshot_epochs(session=session, run=run))


@router.get(
    "/{run_id}/decision-boundary",
    response_model=DecisionBoundaryOut | FittedCurveOut,
    responses={
        **NO_SNAPSHOT,
        **NO_MODEL,
        422: {
            "model": Problem,
            "description": "The dataset has not exactly two features (a one-feature regression "
            "set gives the fitted curve), or a resolution outside 10..400.",
        },
    },
    summary="The model's classes over a grid of the two features (or the fitted curve)",
)
def get_decision_boundary(
    run: ValidRun,
    session: SessionDep,
    cache: ModelCacheDep,
    epoch: SnapshotEpoch = None,
    resolution: Annotated[
        int,
        Query(
            ge=MIN_RESOLUTION,
            le=MAX_RESOLUTION,
            description="Grid points per axis (10..400).",
        ),
    ] = DEFAULT_RESOLUTION,
) -> ORJSONResponse:
    """The grid spans the dataset's range of each feature padded by 10 % on each side,
    in original units; `predictions[j][i]` is the class `POST /predict` gives at
    (`x[i]`, `y[j]`). Without `epoch`: the final model, or the latest snapshot of a
    run that has none (yet). A one-feature regression: `{"epoch", "x", "values"}`."""
    return ORJSONResponse(
        inspection.decision_boundary(
            session=session, cache=cache, run=run, epoch=epoch, resolution=resolution
        )
    )


@router.post(
    "/{run_id}/backprop",
    response_model=BackpropOut,
    responses={
        **NO_SNAPSHOT,
        **NO_MODEL,
        400: {"model": Problem, "description": "Malformed or too deeply nested JSON."},
        413: {"model": Problem, "description": "Body over ANNLAB_MAX_BODY_BYTES."},
        422: {
            "model": Problem,
            "description": "Wrong feature count, targets that do not fit the model (unknown "
            "class names, wrong count or width), non-finite numbers, or more rows than "
            "ANNLAB_MAX_PREDICT_ROWS.",
        },
    },
    summary="One forward and one backward pass of the engine on given rows",
)
def post_backprop(
    run: ValidRun,
    body: BackpropRequest,
    session: SessionDep,
    cache: ModelCacheDep,
    settings: SettingsDep,
) -> ORJSONResponse:
    """Per layer, in the lecture's names: `inputs`, `net` = inputs @ weights + biases,
    `outputs` = f(net), `dvalues` = ∂L/∂outputs, `dnet` = ∂L/∂net, `dweights` =
    inputsᵀ · dnet, `dbiases` = Σ dnet, `dinputs` = dnet · weightsᵀ; computed by the
    engine's own forward and backward code. The gradients are those of the data loss
    (`loss`, the mean over the rows); `penalty` is the L1/L2 term."""
    return ORJSONResponse(
        inspection.backprop(session=session, cache=cache, run=run, body=body, settings=settings)
    )
