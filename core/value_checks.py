"""Checks shared by every loader: numbers, names, class labels and regression targets.

Each function takes untrusted, already-parsed values (JSON, CSV cells, ``.npz``
metadata) and returns them checked or raises ``DatasetError`` naming the problem
and where it is. Numbers are strict: a boolean or a numeric string is not a
number. Names (dataset, features, classes) are at most ``NAME_MAX_LENGTH``
characters and a set has at most ``MAX_FEATURES`` feature columns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from core.errors import DatasetError
from core.specs import NAME_MAX_LENGTH, Task

TASKS: tuple[str, ...] = ("classification", "regression")
#: Feature columns of one dataset at most (a 28 × 28 image has 784).
MAX_FEATURES = 1000
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

#: Where an entry sits, for messages: index → "targets[3]" or "line 4, column 'y'".
Where = Callable[[int], str]


def describe(value: Any) -> str:
    """A short description of any value, safe for huge or deeply nested input."""
    if value is None:
        return "null"
    if isinstance(value, bool | np.bool_):
        return "a boolean"
    if isinstance(value, str):
        shown = value if len(value) <= 30 else value[:27] + "..."
        return f"the string {shown!r}"
    if isinstance(value, float | np.floating):
        return repr(float(value))
    if isinstance(value, int | np.integer):
        return "an integer" if abs(int(value)) > 10**30 else str(int(value))
    if isinstance(value, list | tuple | np.ndarray):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def is_number(value: Any) -> bool:
    """int or float, but never a boolean (``True`` is not the number 1 here)."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def as_list(value: Any, where: str, expected: str) -> list[Any] | tuple[Any, ...]:
    if isinstance(value, np.ndarray) and value.ndim > 0:
        value = value.tolist()
    if isinstance(value, list | tuple):
        return value
    raise DatasetError(f"{where} must be {expected}, got {describe(value)}", where)


def to_float(value: Any, where: str) -> float:
    """A finite float from a JSON number, or ``DatasetError``."""
    if not is_number(value):
        raise DatasetError(f"{where} is {describe(value)}, not a number", where)
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise DatasetError(
            f"{where} is {describe(value)}: non-finite values (NaN, ±Inf) are not allowed",
            where,
        )
    return number


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise DatasetError("the dataset name must be a non-empty string", "name")
    checked: str = name.strip()
    if len(checked) > NAME_MAX_LENGTH:
        raise DatasetError(
            f"the dataset name has {len(checked)} characters, at most {NAME_MAX_LENGTH} are "
            "allowed",
            "name",
        )
    return checked


def check_feature_count(n_features: int, where: str) -> None:
    """At most ``MAX_FEATURES`` feature columns (checked before the rows are read)."""
    if n_features > MAX_FEATURES:
        raise DatasetError(
            f"{n_features} feature columns: at most {MAX_FEATURES} are supported", where
        )


def check_task(task: Any) -> Task:
    if not isinstance(task, str) or task not in TASKS:
        raise DatasetError(
            f"task must be 'classification' or 'regression', got {describe(task)}", "task"
        )
    return task  # type: ignore[return-value]


def feature_matrix(features: Any) -> np.ndarray:
    rows = as_list(features, "features", "a list of rows (lists of numbers)")
    if len(rows) < 2:
        raise DatasetError(f"at least 2 rows are needed, got {len(rows)}", "features")
    width = len(as_list(rows[0], "features[0]", "a list of numbers"))
    if width == 0:
        raise DatasetError(
            "zero feature columns: each row needs at least one number", "features[0]"
        )
    check_feature_count(width, "features[0]")
    matrix = np.empty((len(rows), width), dtype=np.float64)
    for i, row in enumerate(rows):
        row = as_list(row, f"features[{i}]", "a list of numbers")
        if len(row) != width:
            raise DatasetError(
                f"features[{i}] has {len(row)} values but features[0] has {width} (ragged rows)",
                f"features[{i}]",
            )
        matrix[i] = [to_float(value, f"features[{i}][{j}]") for j, value in enumerate(row)]
    return matrix


def check_feature_names(feature_names: Any, n_features: int) -> list[str]:
    if feature_names is None:
        return [f"x{j + 1}" for j in range(n_features)]
    names = as_list(feature_names, "feature_names", "a list of strings")
    if len(names) != n_features:
        raise DatasetError(
            f"{len(names)} feature names for {n_features} feature columns", "feature_names"
        )
    return check_column_names(names, "feature_names")


def check_column_names(names: Sequence[Any], where: str) -> list[str]:
    checked: list[str] = []
    seen: set[str] = set()
    for j, raw in enumerate(names):
        if not isinstance(raw, str):
            raise DatasetError(f"{where}[{j}] is {describe(raw)}, not a string", f"{where}[{j}]")
        column = raw.strip()
        if not column:
            raise DatasetError(f"{where}[{j}] is empty: every column needs a name", where)
        if len(column) > NAME_MAX_LENGTH:
            raise DatasetError(
                f"{where}[{j}] has {len(column)} characters, at most {NAME_MAX_LENGTH} are allowed",
                f"{where}[{j}]",
            )
        if column in seen:
            raise DatasetError(f"{where}: duplicate column name {column!r}", where)
        seen.add(column)
        checked.append(column)
    return checked


def check_class_names(class_names: Any) -> list[str]:
    if class_names is None:
        raise DatasetError("a classification set needs class names", "class_names")
    names = as_list(class_names, "class_names", "a list of strings")
    if len(names) < 2:
        raise DatasetError("a classification set needs at least 2 classes", "class_names")
    if not all(isinstance(item, str) for item in names) or len(set(names)) != len(names):
        raise DatasetError("class names must be distinct strings", "class_names")
    return list(names)


def class_targets(values: list[Any], where: Where) -> tuple[np.ndarray, list[str]]:
    """Class indices into the sorted class names; labels all integers or all strings."""
    labels: list[Any] = []
    first_kind = ""
    label: str | int
    for index, value in enumerate(values):
        if isinstance(value, str):
            if not value.strip():
                raise DatasetError(f"{where(index)} is an empty class name", "targets")
            if len(value) > NAME_MAX_LENGTH:
                raise DatasetError(
                    f"{where(index)} is a class name of {len(value)} characters, at most "
                    f"{NAME_MAX_LENGTH} are allowed",
                    "targets",
                )
            kind, label = "string", value
        elif is_number(value):
            kind, label = "integer", integer_label(value, where(index))
        else:
            raise DatasetError(
                f"{where(index)} is {describe(value)}: classification targets are class "
                "names (strings) or integers",
                "targets",
            )
        if not first_kind:
            first_kind = kind
        elif kind != first_kind:
            raise DatasetError(
                f"{where(index)} is {describe(value)} but earlier targets are {first_kind}s: "
                "use all integers or all class names, not a mix",
                "targets",
            )
        labels.append(label)
    unique = sorted(set(labels))
    if len(unique) < 2:
        only = describe(unique[0]) if unique else "none"
        raise DatasetError(
            f"a classification set needs at least 2 classes, found one class ({only})",
            "targets",
        )
    position = {label: k for k, label in enumerate(unique)}
    indices = np.fromiter((position[label] for label in labels), dtype=np.int64, count=len(labels))
    return indices, [str(label) for label in unique]


def integer_label(value: Any, where: str) -> int:
    if isinstance(value, int | np.integer):
        label = int(value)
    else:
        number = float(value)
        if not math.isfinite(number) or not number.is_integer():
            raise DatasetError(
                f"{where} is {describe(value)}: classification targets are class names "
                "(strings) or integers",
                "targets",
            )
        label = int(number)
    if not _INT64_MIN <= label <= _INT64_MAX:
        raise DatasetError(f"{where}: integer class labels must fit in 64 bits", "targets")
    return label


def regression_targets(values: Sequence[Any], where: Where) -> np.ndarray:
    """float64 (n, k): all numbers (k = 1) or all lists of k ≥ 1 numbers."""
    first = values[0]
    several = isinstance(first, list | tuple | np.ndarray)
    width = len(as_list(first, where(0), "a list of numbers")) if several else 1
    if width == 0:
        raise DatasetError(f"{where(0)} is an empty list: give at least one output", "targets")
    outputs = np.empty((len(values), width), dtype=np.float64)
    for index, value in enumerate(values):
        if several:
            if not isinstance(value, list | tuple | np.ndarray):
                raise DatasetError(
                    f"{where(index)} is {describe(value)} but {where(0)} is a list: "
                    f"regression targets are all numbers or all lists of {width} numbers",
                    "targets",
                )
            row = as_list(value, where(index), "a list of numbers")
            if len(row) != width:
                raise DatasetError(
                    f"{where(index)} has {len(row)} outputs but {where(0)} has {width} "
                    "(ragged targets)",
                    "targets",
                )
            outputs[index] = [to_float(item, f"{where(index)}[{k}]") for k, item in enumerate(row)]
        else:
            if isinstance(value, list | tuple | np.ndarray):
                raise DatasetError(
                    f"{where(index)} is a list but {where(0)} is a number: regression targets "
                    "are all numbers or all lists of the same length",
                    "targets",
                )
            outputs[index, 0] = to_float(value, where(index))
    return outputs


def check_fits_dtype(data: Any, *, dtype: str, standardize: bool) -> None:
    """``DatasetError`` naming the row, column and value when a feature cannot be fed to a
    network of ``dtype``: the same conversion the trainer does (``core.data.network_inputs``),
    so a run that would fail on its first epoch is refused when it is submitted.

    Standardisation uses the whole dataset's statistics here; the trainer uses the
    training rows', which differ only by the validation rows. A column whose values fit
    after either is accepted, so only a feature far out of range is refused (e.g. 1e39
    in a float32 run without standardisation); the trainer's own check stays."""
    from core.data import network_inputs, standardization

    mean, std = standardization(data.features) if standardize else (None, None)
    network_inputs(data, mean, std, np.dtype(dtype))
