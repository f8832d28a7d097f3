"""The body of an MLflow scoring-protocol ``/invocations`` request, as a matrix.

MLflow's ``mlflow models serve`` accepts JSON with exactly one of
``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs`` (plus an
optional ``params`` dict), or CSV with a header row. Columns given by name are
matched to the model's ``feature_names`` in any order (a missing or unknown one
is an error naming it); ``instances``/``inputs`` rows are in the dataset's column
order. Every problem is an ``InvocationError`` whose ``status`` is 400 (415 for
another content type) and whose ``message`` says what to fix: the route answers
it in MLflow's shape, ``{"error_code": "BAD_REQUEST", "message": ...}``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
CONTENT_TYPES = ("application/json", "text/csv")


class InvocationError(ValueError):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Invocation:
    #: float64 (n, n_features), finite, in the model's column order.
    inputs: np.ndarray
    #: ``params`` said ``{"output": "probabilities"}``.
    probabilities: bool


def parse_invocation(
    body: bytes, content_type: str | None, feature_names: Sequence[str]
) -> Invocation:
    """The rows of an ``/invocations`` body (``InvocationError`` for anything wrong)."""
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime == "text/csv":
        return Invocation(_csv(body, feature_names), probabilities=False)
    if mime != "application/json":
        raise InvocationError(
            f"This predictor only supports the following content types: {list(CONTENT_TYPES)}. "
            f"Got {content_type or 'none'!r}.",
            status=415,
        )
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvocationError(f"the body is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise InvocationError(
            "Invalid input. The input must be a JSON dictionary with exactly one of the input "
            f"fields {list(FORMATS)}; got a {type(document).__name__}"
        )
    given = [key for key in document if key in FORMATS]
    unknown = [key for key in document if key not in FORMATS and key != "params"]
    if len(given) != 1 or unknown:
        raise InvocationError(
            "Invalid input. The input must be a JSON dictionary with exactly one of the input "
            f"fields {list(FORMATS)} (and optionally 'params'). Received dictionary with input "
            f"fields: {list(document)}"
        )
    probabilities = _params(document.get("params"))
    key = given[0]
    value = document[key]
    # JSON booleans are not numbers, but NumPy reads [true, 1, 2] as [1, 1, 2]: the fast
    # path is taken only when a C-speed look at the bytes finds no boolean at all.
    fast = b"true" not in body and b"false" not in body
    if key == "dataframe_split":
        matrix = _split(value, feature_names, fast)
    elif key == "dataframe_records":
        matrix = _records(value, feature_names)
    else:
        matrix = _instances(key, value, feature_names, fast)
    return Invocation(matrix, probabilities)


def _params(params: Any) -> bool:
    if params is None:
        return False
    if not isinstance(params, dict):
        raise InvocationError(f"'params' must be a dictionary, got {type(params).__name__}")
    return bool(params.get("output") == "probabilities")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvocationError(f"{where}: expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise InvocationError(f"{where}: the number is not finite")
    return number


def _matrix(rows: Any, width: int, where: str, fast: bool = True) -> np.ndarray:
    """Rows of numbers, each ``width`` long, as float64; the fast way when it fits
    (``fast``: the body holds no boolean NumPy would take for a number)."""
    if not isinstance(rows, list) or not rows:
        raise InvocationError(f"{where}: expected a non-empty list of rows")
    matrix = None
    if fast:
        try:
            matrix = np.array(rows)
        except (ValueError, TypeError, OverflowError):
            matrix = None
    if (
        matrix is not None
        and matrix.ndim == 2
        and matrix.dtype.kind in "fiu"
        and matrix.shape[1] == width
    ):
        matrix = matrix.astype(np.float64, copy=False)
        if np.isfinite(matrix).all():
            return matrix
    checked = []
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise InvocationError(f"{where}[{i}]: each row must be a list of numbers")
        if len(row) != width:
            raise InvocationError(
                f"{where}[{i}]: has {len(row)} values; the model takes {width} features"
            )
        checked.append([_number(value, f"{where}[{i}][{j}]") for j, value in enumerate(row)])
    return np.array(checked, dtype=np.float64)


def _order(columns: Sequence[Any], feature_names: Sequence[str]) -> list[int]:
    """For each feature, the index of its column; 400 naming a missing or unknown one."""
    names = [str(column) for column in columns]
    unknown = [name for name in names if name not in feature_names]
    if unknown:
        raise InvocationError(
            f"unknown column {unknown[0]!r}: the model's features are {list(feature_names)}"
        )
    missing = [name for name in feature_names if name not in names]
    if missing:
        raise InvocationError(
            f"missing column {missing[0]!r}: the model's features are {list(feature_names)}"
        )
    if len(set(names)) != len(names):
        raise InvocationError(f"a column is given twice: {names}")
    return [names.index(name) for name in feature_names]


def _split(value: Any, feature_names: Sequence[str], fast: bool) -> np.ndarray:
    if not isinstance(value, dict) or "data" not in value:
        raise InvocationError('dataframe_split: expected {"columns": [...], "data": [[...]]}')
    extra = set(value) - {"columns", "data", "index"}
    if extra:
        raise InvocationError(f"dataframe_split: unknown key {sorted(extra)[0]!r}")
    columns = value.get("columns")
    if columns is None:
        return _matrix(value["data"], len(feature_names), "dataframe_split.data", fast)
    if not isinstance(columns, list):
        raise InvocationError("dataframe_split.columns: expected a list of column names")
    order = _order(columns, feature_names)
    matrix = _matrix(value["data"], len(columns), "dataframe_split.data", fast)
    return matrix if order == list(range(len(order))) else matrix[:, order]


def _records(value: Any, feature_names: Sequence[str]) -> np.ndarray:
    if not isinstance(value, list) or not value:
        raise InvocationError("dataframe_records: expected a non-empty list of {column: value}")
    rows = []
    for i, record in enumerate(value):
        if not isinstance(record, dict):
            raise InvocationError(f"dataframe_records[{i}]: expected an object {{column: value}}")
        _order(list(record), feature_names)
        rows.append(
            [_number(record[name], f"dataframe_records[{i}].{name}") for name in feature_names]
        )
    return np.array(rows, dtype=np.float64)


def _instances(key: str, value: Any, feature_names: Sequence[str], fast: bool) -> np.ndarray:
    if isinstance(value, dict):  # columns: {name: [values]}
        _order(list(value), feature_names)
        lengths = {len(v) if isinstance(v, list) else -1 for v in value.values()}
        if len(lengths) != 1 or -1 in lengths or 0 in lengths:
            raise InvocationError(f"{key}: every column must be a non-empty list of one length")
        columns = [
            [_number(x, f"{key}.{name}[{i}]") for i, x in enumerate(value[name])]
            for name in feature_names
        ]
        return np.array(columns, dtype=np.float64).T.copy()
    return _matrix(value, len(feature_names), key, fast)


def _csv(body: bytes, feature_names: Sequence[str]) -> np.ndarray:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvocationError("the CSV body is not UTF-8") from None
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as error:  # e.g. a field over csv's 128 KiB limit
        raise InvocationError(f"the CSV body cannot be parsed: {error}") from None
    if len(rows) < 2:
        raise InvocationError("the CSV body needs a header row and at least one row of numbers")
    header = [name.strip() for name in rows[0]]
    order = _order(header, feature_names)
    values = []
    for i, row in enumerate(rows[1:], start=1):
        if len(row) != len(header):
            raise InvocationError(
                f"CSV row {i}: has {len(row)} values; the header has {len(header)}"
            )
        try:
            numbers = [float(cell) for cell in row]
        except ValueError:
            raise InvocationError(f"CSV row {i}: every value must be a number") from None
        if not all(math.isfinite(number) for number in numbers):
            raise InvocationError(f"CSV row {i}: the numbers must be finite")
        values.append([numbers[j] for j in order])
    return np.array(values, dtype=np.float64)
