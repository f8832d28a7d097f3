"""Targets sent with a request (backprop, evaluate) → the engine's targets for one model.

A client sends targets as it would in a dataset upload: for classification, class
names (strings from the model's ``class_names``) or integer class indices into
``class_names``; for regression, numbers (one output) or lists of numbers (one list
per row, one number per output). The model's own class names decide what a string
means, so an integer is always an index: with class names ``["1", "2"]`` the
target ``1`` is the class ``"2"`` and the target ``"1"`` the class ``"1"``.

The encoding for the network is the engine's own (``core.network.encode_targets``):
one-hot rows for a K-unit output, the activation's two natural levels for a single
unit (0/1, or −1/+1 for tanh and arctan), the values themselves for regression.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core.errors import DatasetError
from core.network import encode_targets
from core.serialize import TrainedModel


@dataclass(frozen=True)
class ModelTargets:
    """Targets of ``n`` rows for one model: ``encoded`` (n, n_outputs) in the model's
    dtype as training sees them, and ``labels`` (n,) int64 class indices
    (classification) or None (regression)."""

    encoded: NDArray[Any]
    labels: NDArray[np.int64] | None


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def class_indices(
    targets: Sequence[Any] | NDArray[Any], class_names: Sequence[str]
) -> NDArray[np.int64]:
    """Class indices (n,) of class names or integer indices; DatasetError names the
    first target that is neither."""
    position = {name: index for index, name in enumerate(class_names)}
    n_classes = len(class_names)
    indices = np.empty(len(targets), dtype=np.int64)
    for row, value in enumerate(targets):
        where = f"targets[{row}]"
        if isinstance(value, str | np.str_):
            index = position.get(str(value))
            if index is None:
                raise DatasetError(
                    f"{where} is the class {str(value)!r}, which the model does not know: "
                    f"its classes are {list(class_names)}",
                    field="targets",
                )
        elif isinstance(value, bool | np.bool_):
            raise DatasetError(
                f"{where} is {_describe(value)}: give a class name or a class index",
                field="targets",
            )
        elif isinstance(value, int | np.integer) or (
            isinstance(value, float | np.floating)
            and math.isfinite(value)
            and float(value).is_integer()
        ):
            index = int(value)
            if not 0 <= index < n_classes:
                raise DatasetError(
                    f"{where} is the class index {index}, outside 0..{n_classes - 1} "
                    f"(the model's classes are {list(class_names)})",
                    field="targets",
                )
        else:
            raise DatasetError(
                f"{where} is {_describe(value)}: classification targets are class names "
                f"{list(class_names)} or class indices 0..{n_classes - 1}",
                field="targets",
            )
        indices[row] = index
    return indices


def regression_values(targets: Sequence[Any] | NDArray[Any], n_outputs: int) -> NDArray[np.float64]:
    """float64 (n, n_outputs) of numbers (one output) or lists of n_outputs numbers."""
    if isinstance(targets, np.ndarray) and targets.dtype.kind in "fiu":
        values = targets.astype(np.float64).reshape(len(targets), -1)
        if values.shape[1] != n_outputs:
            raise DatasetError(
                f"targets have {values.shape[1]} column(s), the model has {n_outputs} output(s)",
                field="targets",
            )
        if not np.isfinite(values).all():
            row = int(np.argwhere(~np.isfinite(values))[0][0])
            raise DatasetError(f"targets[{row}] is not a finite number", field="targets")
        return values
    values = np.empty((len(targets), n_outputs), dtype=np.float64)
    for row, value in enumerate(targets):
        where = f"targets[{row}]"
        is_list = isinstance(value, list | tuple | np.ndarray)
        items = list(value) if is_list else [value]
        if not is_list and n_outputs > 1:
            raise DatasetError(
                f"{where} is {_describe(value)}: the model has {n_outputs} outputs, "
                f"give a list of {n_outputs} numbers per row",
                field="targets",
            )
        if len(items) != n_outputs:
            raise DatasetError(
                f"{where} has {len(items)} numbers, the model has {n_outputs} output(s)",
                field="targets",
            )
        for column, item in enumerate(items):
            if isinstance(item, bool | np.bool_) or not isinstance(
                item, int | float | np.integer | np.floating
            ):
                raise DatasetError(
                    f"{where} holds {_describe(item)}: regression targets are numbers",
                    field="targets",
                )
            number = float(item)
            if not math.isfinite(number):
                raise DatasetError(f"{where} holds {number}, not a finite number", field="targets")
            values[row, column] = number
    return values


def model_targets(model: TrainedModel, targets: Sequence[Any] | NDArray[Any]) -> ModelTargets:
    """The targets of ``model`` for training's loss and for accuracy; DatasetError
    (field ``targets``) names the first bad one."""
    spec = model.spec
    last = spec.model.layers[-1]
    if model.task == "classification":
        labels = class_indices(targets, model.class_names or [])
        encoded = encode_targets(
            labels,
            task="classification",
            units=last.units,
            activation=last.activation,
            dtype=spec.dtype,
        )
        return ModelTargets(encoded=encoded, labels=labels)
    values = regression_values(targets, last.units)
    encoded = encode_targets(
        values, task="regression", units=last.units, activation=last.activation, dtype=spec.dtype
    )
    return ModelTargets(encoded=encoded, labels=None)
