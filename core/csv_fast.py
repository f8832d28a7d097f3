"""The fast path of a CSV upload: NumPy's C parser instead of one ``float()`` per cell.

``core.loaders.dataset_from_csv`` reads cells with the ``csv`` module and checks
each one in Python: clear errors naming the line and column, but ~17× the time of
``pandas.read_csv`` and ~18× the dataset's float64 size in memory at 10⁵ rows (a
Python string per cell). Most uploads are plain: no quotes, no blank cells, finite
numbers. For those, ``numpy.loadtxt`` parses the feature columns (and the targets)
in C, and every check is made on whole arrays. Anything unusual (a quote, an empty
or non-numeric cell, a ragged row, a whitespace-only line, a non-finite number, a
class-label problem) makes ``fast_csv`` return None, and the caller parses the
file the slow way, whose error then names the line and column. The result is the
slow path's, bit for bit (tests/core/test_csv_fast.py compares them).
"""

from __future__ import annotations

import io
import re
import warnings
from typing import Any

import numpy as np

from core.errors import DatasetError
from core.value_checks import class_targets


def fast_csv(
    text: str,
    delimiter: str,
    n_columns: int,
    feature_columns: list[int],
    target_columns: list[int],
    task: str,
    integer: re.Pattern[str],
) -> tuple[np.ndarray, np.ndarray, list[str] | None] | None:
    """(features, targets, class names or None) of a plain CSV whose first line is the
    header of ``n_columns`` columns; None when the slow path must decide."""
    if '"' in text:
        return None
    try:
        numbers = None
        if task == "classification" and _plain_integers(text, delimiter, target_columns[0]):
            # one pass: the features and the integer class column together
            table = _load(text, delimiter, [*feature_columns, target_columns[0]], np.float64)
            features, numbers = np.ascontiguousarray(table[:, :-1]), table[:, -1]
            del table
        else:
            features = _load(text, delimiter, feature_columns, np.float64)
        if features.ndim != 2 or features.shape[0] < 2 or not np.isfinite(features).all():
            return None
        # No row is short (loadtxt raised) and, with the delimiter count, none is long.
        if text.count(delimiter) != (features.shape[0] + 1) * (n_columns - 1):
            return None
        if task == "regression":
            outputs = _load(text, delimiter, target_columns, np.float64)
            if outputs.shape[0] != features.shape[0] or not np.isfinite(outputs).all():
                return None
            return features, outputs, None
        if numbers is not None and np.isfinite(numbers).all() and (numbers % 1 == 0).all():
            unique, inverse = np.unique(numbers.astype(np.int64), return_inverse=True)
            labels: list[Any] = [int(v) for v in unique.tolist()]
        else:
            cells = _load(text, delimiter, target_columns, str)[:, 0]
            if cells.shape[0] != features.shape[0]:
                return None
            unique, inverse = np.unique(cells, return_inverse=True)
            labels = [str(u).strip() for u in unique.tolist()]
            if all(integer.fullmatch(cell) for cell in labels):
                labels = [int(cell) for cell in labels]
        indices, class_names = class_targets(labels, lambda index: f"class {index}")
    except (ValueError, DatasetError):
        return None
    return features, np.asarray(indices, dtype=np.int64)[inverse.reshape(-1)], class_names


def _plain_integers(text: str, delimiter: str, column: int) -> bool:
    """Whether every cell of the class column is a plain integer of at most 18 digits
    (the slow path's integer labels; '1.0', '1e0' or 19 digits are class names there),
    so that it can be parsed with the features as numbers."""
    body = text.split("\n", 1)[1] if "\n" in text else ""
    d = re.escape(delimiter)
    cell = rf"^(?:[^{d}\n]*{d}){{{column}}}"
    return not re.search(cell + rf"[^{d}\n]*(?:[^0-9+\-{d}\n\r ]|[0-9]{{19}})", body, re.M)


def _load(text: str, delimiter: str, columns: list[int], dtype: Any) -> np.ndarray:
    with warnings.catch_warnings():  # "no data", "blank line not counted": we check rows
        warnings.simplefilter("ignore", UserWarning)
        return _loadtxt(text, delimiter, columns, dtype)


def _loadtxt(text: str, delimiter: str, columns: list[int], dtype: Any) -> np.ndarray:
    return np.loadtxt(
        io.StringIO(text),
        delimiter=delimiter,
        skiprows=1,
        usecols=columns,
        dtype=dtype,
        ndmin=2,
        comments=None,
        quotechar=None,
        encoding=None,
    )
