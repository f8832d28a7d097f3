"""A dataset written back out: as CSV (a header row of names) or as the JSON body of an
upload, so that a download uploads again to the same dataset.

Numbers are written with ``repr`` (the shortest text that reads back to the same
float64), class targets as their names.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from core.data import Dataset


def target_columns(data: Dataset) -> list[str]:
    """The target column name(s): ``target`` (``target_1`` … for several outputs),
    with underscores added while a feature already has the name."""
    base = "target"
    while base in data.feature_names or any(
        name.startswith(base + "_") for name in data.feature_names
    ):
        base += "_"
    n = data.n_outputs if data.task == "regression" else 1
    return [base] if n == 1 else [f"{base}_{k + 1}" for k in range(n)]


def _targets(data: Dataset) -> list[Any]:
    if data.class_names is not None:
        return [data.class_names[int(index)] for index in data.targets]
    values = data.targets.reshape(data.n_samples, -1).tolist()
    return [row[0] for row in values] if data.targets.ndim == 1 or len(values[0]) == 1 else values


def dataset_to_json(data: Dataset) -> dict[str, Any]:
    """The body of ``POST /datasets`` that creates this dataset again."""
    return {
        "name": data.name,
        "task": data.task,
        "features": data.features.tolist(),
        "targets": _targets(data),
        "feature_names": list(data.feature_names),
    }


def dataset_to_csv(data: Dataset) -> bytes:
    """UTF-8 CSV: the feature columns, then the target column(s) (``target_columns``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*data.feature_names, *target_columns(data)])
    targets = _targets(data)
    for features, target in zip(data.features.tolist(), targets, strict=True):
        tail = target if isinstance(target, list) else [target]
        writer.writerow(
            [repr(value) for value in features]
            + [value if isinstance(value, str) else repr(value) for value in tail]
        )
    return buffer.getvalue().encode()
