"""Looking into a run's model: its snapshots, the decision boundary, one backward pass.

The numbers come from ``core.inspect`` (the engine's own predict, forward and
backward code); this module picks the model (``serving.model_at``: a snapshot, the
final model, or the latest snapshot of a run still going), the run's dataset
(the grid's range, the points of a plot) and turns the results into API.md's
JSON shapes (NumPy arrays kept: ``ORJSONResponse`` writes them natively).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import snapshots as snapshot_store
from app.db.tables import RunRow
from app.errors import Conflict, LimitExceeded, Unprocessable, limit_message
from app.schemas_inspect import BackpropRequest
from app.services import serving
from app.services.datasets import find_dataset
from app.services.serving import ModelCache
from core.data import Dataset
from core.inspect import InspectError, backward_pass, decision_grid, fitted_curve
from core.serialize import TrainedModel

#: Grid points per axis of ``GET /decision-boundary`` (API.md).
MIN_RESOLUTION, MAX_RESOLUTION, DEFAULT_RESOLUTION = 10, 400, 100


def snapshot_epochs(*, session: Session, run: RunRow) -> list[int]:
    return snapshot_store.epochs(session=session, run_id=run.id)


def run_dataset(*, session: Session, run: RunRow) -> Dataset:
    """The run's dataset (the grid spans its range); 409 when it was deleted since."""
    data = find_dataset(session=session, dataset_id=run.dataset_id, owner_id=run.owner_id)
    if data is None:
        raise Conflict(
            f"run {run.id!r}'s dataset {run.dataset_id!r} no longer exists: the grid's range "
            "and the points come from it"
        )
    return data


def check_boundary_shape(data: Dataset) -> None:
    """422 unless the dataset has two features (classification) or one (regression)."""
    if data.task == "classification" and data.n_features == 2:
        return
    if data.task == "regression" and data.n_features == 1:
        return
    raise Unprocessable(
        "a decision boundary needs a classification dataset with exactly two features (or a "
        f"regression dataset with one: the fitted curve); {data.name!r} is a {data.task} set "
        f"with {data.n_features} feature(s)"
    )


def boundary(model: TrainedModel, data: Dataset, *, epoch: int, resolution: int) -> dict[str, Any]:
    """API.md's decision-boundary answer (or the fitted curve of a regression)."""
    try:
        if data.task == "regression":
            curve = fitted_curve(model, features=data.features, resolution=resolution)
            return {"epoch": epoch, "x": curve.x, "values": curve.values}
        grid = decision_grid(model, features=data.features, resolution=resolution)
    except InspectError as error:
        raise Unprocessable(error.message) from None
    return {
        "epoch": epoch,
        "x": grid.x,
        "y": grid.y,
        "class_names": list(grid.class_names),
        "predictions": grid.predictions,
        "confidence": grid.confidence,
    }


def decision_boundary(
    *, session: Session, cache: ModelCache, run: RunRow, epoch: int | None, resolution: int
) -> dict[str, Any]:
    """``GET /runs/{id}/decision-boundary``: 422 for a dataset of another shape, 404 no
    snapshot at ``epoch``, 409 no model yet."""
    data = run_dataset(session=session, run=run)
    check_boundary_shape(data)
    at = serving.model_at(session=session, cache=cache, run=run, epoch=epoch)
    return boundary(at.model.model, data, epoch=at.epoch, resolution=resolution)


def backprop(
    *, session: Session, cache: ModelCache, run: RunRow, body: BackpropRequest, settings: Settings
) -> dict[str, Any]:
    """``POST /runs/{id}/backprop``: one forward and backward pass on the body's rows."""
    if len(body.inputs) > settings.max_predict_rows:
        raise LimitExceeded(
            "inputs: "
            + limit_message(
                "the number of rows",
                len(body.inputs),
                settings.max_predict_rows,
                "max_predict_rows",
            )
        )
    at = serving.model_at(session=session, cache=cache, run=run, epoch=body.epoch)
    model = at.model.model
    widths = sorted({len(row) for row in body.inputs})
    if widths != [model.n_features]:
        raise Unprocessable(
            f"inputs: each row must have {model.n_features} numbers (the model's input width); "
            f"got rows of {widths}"
        )
    result = backward_pass(model, inputs=body.inputs, targets=body.targets)  # DatasetError: 422
    layers = [
        {
            "inputs": layer.inputs,
            "net": layer.net,
            "outputs": layer.outputs,
            "dvalues": layer.dvalues,
            "dnet": layer.dnet,
            "dweights": layer.dweights,
            "dbiases": layer.dbiases,
            "dinputs": layer.dinputs,
        }
        for layer in result.layers
    ]
    finite = np.isfinite([result.loss, result.penalty]).all() and all(
        np.isfinite(array).all() for layer in layers for array in layer.values()
    )
    if not finite:  # JSON has no NaN/Inf: say why instead of answering null
        raise Unprocessable(
            f"inputs: the pass is not finite for these rows (the numbers overflow "
            f"{model.spec.dtype}); send smaller inputs"
        )
    return {"epoch": at.epoch, "loss": result.loss, "penalty": result.penalty, "layers": layers}
