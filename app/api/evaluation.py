"""A run's evaluation and its train/validation split."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from app.api.runs import NOT_FOUND
from app.deps import CurrentUser, ModelCacheDep, SessionDep, ValidRun
from app.http import GuardedRoute
from app.run_schemas import EvaluateRequest, EvaluationOut, SplitOut
from app.schemas import MALFORMED_JSON, TOO_LARGE, problem
from app.services import evaluation

router = APIRouter(prefix="/runs", tags=["runs"], route_class=GuardedRoute)


@router.post(
    "/{run_id}/evaluate",
    response_model=EvaluationOut,
    response_model_exclude_unset=True,
    responses={
        **NOT_FOUND,
        400: MALFORMED_JSON,
        409: problem("The run has not succeeded (or, without a body, its dataset is gone)."),
        413: TOO_LARGE,
        422: problem("Rows or targets that do not fit the model, or a run without validation."),
    },
    summary="Evaluate a run's model: confusion matrix and F1, or RMSE, MAE and R²",
    description='With `{"dataset": id}` the whole dataset, with `{"inputs", "targets"}` '
    "those rows, with no body the run's own validation rows (`GET /runs/{id}/split`).",
)
def evaluate_run(
    run: ValidRun,
    session: SessionDep,
    cache: ModelCacheDep,
    user: CurrentUser,
    body: Annotated[EvaluateRequest | None, Body()] = None,
) -> Any:
    request = body or EvaluateRequest()
    report = evaluation.evaluate_run(
        session=session,
        cache=cache,
        run=run,
        scope=user.scope,
        dataset_id=request.dataset,
        inputs=request.inputs,
        targets=request.targets,
    )
    return EvaluationOut(**report)


@router.get(
    "/{run_id}/split",
    response_model=SplitOut,
    responses={**NOT_FOUND, 409: problem("The run's dataset was deleted.")},
    summary="The rows a run trains and validates on",
    description="Row indices of the run's dataset, reproduced from the spec's seed with the "
    "same draws as training.",
)
def get_split(run: ValidRun, session: SessionDep) -> SplitOut:
    train, validation = evaluation.split(session=session, run=run)
    return SplitOut(train=train, validation=validation)
