"""How well a run's model does (``POST /runs/{id}/evaluate``) and which rows it trained
and validated on (``GET /runs/{id}/split``).

The numbers are ``core.evaluate``'s; the validation rows are ``core.preparation.
run_split``'s, the same draws as training, reproduced from the seed, so "evaluate
with no body" scores exactly the rows the run's ``val_loss`` was measured on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from app.db.tables import RunRow
from app.errors import Conflict, Unprocessable
from app.services import datasets, serving
from core.data import Dataset
from core.evaluate import evaluate
from core.preparation import run_split
from core.specs import RunSpec


def _run_dataset(*, session: Session, run: RunRow) -> Dataset:
    data = datasets.find_dataset(session=session, dataset_id=run.dataset_id, owner_id=None)
    if data is None:
        raise Conflict(
            f"run {run.id!r}: its dataset {run.dataset_id!r} was deleted, so its rows are gone "
            "(evaluate with a dataset id or inline inputs and targets)"
        )
    return data


def split(*, session: Session, run: RunRow) -> tuple[list[int], list[int]]:
    """(train rows, validation rows) of the run's dataset; 409 if it was deleted."""
    train, validation = run_split(
        RunSpec.model_validate(run.spec), _run_dataset(session=session, run=run)
    )
    return train.tolist(), validation.tolist()


def _targets_of(data: Dataset) -> Any:
    """A dataset's targets as an upload gives them: class names (the model maps names
    to its own classes, whatever order this dataset lists them in) or numbers."""
    if data.class_names is not None:
        return [data.class_names[int(index)] for index in data.targets]
    return data.targets


def evaluate_run(
    *,
    session: Session,
    cache: serving.ModelCache,
    run: RunRow,
    scope: str | None,
    dataset_id: str | None = None,
    inputs: list[list[float]] | None = None,
    targets: list[Any] | None = None,
) -> dict[str, Any]:
    """The report of the run's final model on a dataset (``dataset_id``), on inline
    ``inputs`` and ``targets``, or (neither) on the run's own validation rows.
    409 until the run has succeeded; 422 for a mix, half an inline body, rows that
    do not fit the model, or a run without validation rows."""
    model = serving.model_of(session=session, cache=cache, run=run).model
    inline = inputs is not None or targets is not None
    if dataset_id is not None and inline:
        raise Unprocessable("give either `dataset` or `inputs` with `targets`, not both")
    if inline:
        if inputs is None or targets is None:
            raise Unprocessable("inline evaluation needs both `inputs` and `targets`")
        report = evaluate(model, features=inputs, targets=targets)
    elif dataset_id is not None:
        data = datasets.load_dataset(session=session, dataset_id=dataset_id, owner_id=scope)
        report = evaluate(model, features=data.features, targets=_targets_of(data))
    else:
        data = _run_dataset(session=session, run=run)
        _, validation = run_split(RunSpec.model_validate(run.spec), data)
        if validation.size == 0:
            raise Unprocessable(
                f"run {run.id!r} has no validation rows (validation_split 0): evaluate with "
                "a dataset id or inline inputs and targets"
            )
        targets_all = _targets_of(data)
        picked = (
            [targets_all[int(i)] for i in validation]
            if isinstance(targets_all, list)
            else np.asarray(targets_all)[validation]
        )
        report = evaluate(model, features=data.features[validation], targets=picked)
    return report.as_dict()
