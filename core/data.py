"""Turning data into checked arrays: the ``Dataset`` every part of annlab trains on.

The dataclass is the contract between engine and service. Below it, the loaders
turn user data (parsed JSON, CSV bytes, stored ``.npz``) into a ``Dataset`` or
raise ``DatasetError`` with a message that names the problem and where it is.
"""

from __future__ import annotations

import csv
import io
import math
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import DatasetError, UnsafeFileError
from core.specs import DataShape, Task


@dataclass(frozen=True)
class Dataset:
    """A checked training set.

    ``features`` is float64 (n_samples, n_features), all finite. ``targets`` is
    int64 class indices (n_samples,) into ``class_names`` for classification,
    float64 (n_samples, n_outputs) for regression.
    """

    name: str
    task: Task
    features: np.ndarray
    targets: np.ndarray
    class_names: list[str] | None = None
    feature_names: list[str] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        return int(self.features.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])

    @property
    def n_classes(self) -> int | None:
        return len(self.class_names) if self.class_names is not None else None

    @property
    def n_outputs(self) -> int:
        """Width of the network output the data asks for: classes, or target columns."""
        if self.task == "classification":
            return len(self.class_names or [])
        return int(self.targets.shape[1])

    def shape(self) -> DataShape:
        return DataShape(
            task=self.task,
            n_features=self.n_features,
            n_outputs=self.n_outputs,
            n_classes=self.n_classes,
            n_samples=self.n_samples,
        )


# ----------------------------------------------------------------- user data loaders

TASKS: tuple[str, ...] = ("classification", "regression")

#: A finite decimal number as written in a CSV cell (ASCII digits only).
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
#: An integer class label in a CSV cell; at most 18 digits, so it always fits int64.
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

Where = Callable[[int], str]


def dataset_from_json(
    *,
    name: Any,
    task: Any,
    features: Any,
    targets: Any,
    feature_names: Any = None,
) -> Dataset:
    """Check user data given as parsed JSON and return it as a ``Dataset``.

    ``features`` is a list of rows, each a list of the same number (≥ 1) of finite
    numbers (booleans and numeric strings are not numbers). ``targets`` has one
    entry per row: for classification all integers (class names are the sorted
    integers as strings) or all strings (class names are the sorted strings), at
    least 2 classes; for regression all numbers (one output) or all lists of the
    same length k ≥ 1 (k outputs). ``feature_names`` defaults to ``x1 … xd``.

    Whatever the input, the only exception raised is ``DatasetError``; its message
    names the problem and, where there is one, the offending row and column.
    """
    name = _check_name(name)
    task = _check_task(task)
    matrix = _feature_matrix(features)
    n_samples, n_features = matrix.shape
    names = _check_feature_names(feature_names, n_features)
    values = _as_list(targets, "targets", "a list with one target per row")
    if len(values) != n_samples:
        raise DatasetError(
            f"{len(values)} targets for {n_samples} rows: one target per row is needed",
            "targets",
        )

    def where(index: int) -> str:
        return f"targets[{index}]"

    if task == "classification":
        labels, class_names = _class_targets(list(values), where)
        return Dataset(name, task, matrix, labels, class_names, names)
    outputs = _regression_targets(values, where)
    return Dataset(name, task, matrix, outputs, None, names)


def dataset_from_csv(*, content: Any, target: Any, task: Any, name: Any) -> Dataset:
    """Parse a UTF-8 CSV file with a header row into a ``Dataset``.

    ``target`` names the target column; every other column is a feature and must
    hold finite numbers in every row. Classification targets are class names, or
    integers (then the class names are the sorted integers as strings). Regression
    targets are numbers; for several outputs ``target`` may list several columns
    separated by commas (``"y1,y2"``) when no single column has that exact name.
    Blank lines are skipped; a UTF-8 byte-order mark is allowed. Errors raise
    ``DatasetError`` naming the line and column.
    """
    name = _check_name(name)
    task = _check_task(task)
    if isinstance(content, bytearray | memoryview):
        content = bytes(content)
    if not isinstance(content, bytes):
        raise DatasetError(f"the CSV file must be bytes, got {_describe(content)}", "file")
    if not isinstance(target, str) or not target.strip():
        raise DatasetError("the target column name must be a non-empty string", "target")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"the CSV file is not UTF-8 text (invalid byte at offset {exc.start})", "file"
        ) from None

    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise DatasetError(
            f"the CSV file cannot be parsed at line {reader.line_num}: {exc}", "file"
        ) from None
    if not rows:
        raise DatasetError("the CSV file is empty: a header row and at least 2 rows are needed")

    header = _check_header(rows[0][1])
    target_columns = _target_columns(header, target.strip(), task)
    feature_columns = [j for j in range(len(header)) if j not in target_columns]
    if not feature_columns:
        raise DatasetError(
            "the CSV has zero feature columns: every column but the target is a feature",
            "file",
        )
    body = rows[1:]
    if len(body) < 2:
        raise DatasetError(f"at least 2 data rows are needed, the CSV has {len(body)}", "file")
    for line, row in body:
        if len(row) != len(header):
            raise DatasetError(
                f"line {line} has {len(row)} fields but the header has {len(header)} (ragged rows)",
                "file",
            )

    features = np.empty((len(body), len(feature_columns)), dtype=np.float64)
    for i, (line, row) in enumerate(body):
        for k, j in enumerate(feature_columns):
            features[i, k] = _csv_number(row[j], line, header[j])
    feature_names = [header[j] for j in feature_columns]
    lines = [line for line, _ in body]

    if task == "classification":
        column = target_columns[0]

        def where(index: int) -> str:
            return f"line {lines[index]}, column {header[column]!r}"

        cells = [row[column].strip() for _, row in body]
        labels: list[Any] = list(cells)
        if all(_INTEGER.fullmatch(cell) for cell in cells):
            labels = [int(cell) for cell in cells]
        targets, class_names = _class_targets(labels, where)
        return Dataset(name, task, features, targets, class_names, feature_names)

    outputs = np.empty((len(body), len(target_columns)), dtype=np.float64)
    for i, (line, row) in enumerate(body):
        for k, j in enumerate(target_columns):
            outputs[i, k] = _csv_number(row[j], line, header[j])
    return Dataset(name, task, features, outputs, None, feature_names)


def dataset_to_npz_bytes(ds: Dataset) -> bytes:
    """The arrays of ``ds`` (``features``, ``targets``) as an ``.npz`` file, no pickle."""
    buffer = io.BytesIO()
    np.savez(buffer, features=ds.features, targets=ds.targets)
    return buffer.getvalue()


def dataset_from_npz_bytes(
    b: bytes,
    *,
    name: str,
    task: Task,
    class_names: list[str] | None,
    feature_names: list[str],
) -> Dataset:
    """Load the arrays written by :func:`dataset_to_npz_bytes` and check them again.

    Array headers are read before any data: an object array (which would need
    pickle) raises ``UnsafeFileError`` and nothing is unpickled or executed. Any
    other unreadable or inconsistent file raises ``DatasetError``.
    """
    name = _check_name(name)
    task = _check_task(task)
    if isinstance(b, bytearray | memoryview):
        b = bytes(b)
    if not isinstance(b, bytes):
        raise DatasetError(f"an .npz file must be bytes, got {_describe(b)}", "file")
    arrays = _read_npz(b, ("features", "targets"))
    features, targets = arrays["features"], arrays["targets"]

    if features.ndim != 2 or features.dtype != np.float64:
        raise DatasetError("features must be a float64 matrix", "features")
    if features.shape[0] < 2 or features.shape[1] < 1:
        raise DatasetError(
            f"features has shape {features.shape}: at least 2 rows and 1 column are needed",
            "features",
        )
    if not np.isfinite(features).all():
        raise DatasetError("features contains NaN or ±Inf", "features")
    names = _check_feature_names(feature_names, features.shape[1])
    n_samples = features.shape[0]
    if targets.shape[:1] != (n_samples,):
        raise DatasetError(
            f"targets has shape {targets.shape} for {n_samples} rows of features", "targets"
        )

    if task == "classification":
        if targets.ndim != 1 or targets.dtype != np.int64:
            raise DatasetError("classification targets must be int64 class indices", "targets")
        classes = _check_class_names(class_names)
        if targets.min() < 0 or targets.max() >= len(classes):
            raise DatasetError(
                f"class indices must lie in [0, {len(classes)}), the number of class names",
                "targets",
            )
        return Dataset(name, task, np.ascontiguousarray(features), targets, classes, names)

    if class_names is not None:
        raise DatasetError("a regression set has no class names", "class_names")
    if targets.ndim != 2 or targets.shape[1] < 1 or targets.dtype != np.float64:
        raise DatasetError("regression targets must be a float64 (n, k) matrix", "targets")
    if not np.isfinite(targets).all():
        raise DatasetError("targets contains NaN or ±Inf", "targets")
    return Dataset(name, task, np.ascontiguousarray(features), targets, None, names)


# ------------------------------------------------------------------------- helpers


def _describe(value: Any) -> str:
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


def _is_number(value: Any) -> bool:
    """int or float, but never a boolean (``True`` is not the number 1 here)."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _as_list(value: Any, where: str, expected: str) -> list[Any] | tuple[Any, ...]:
    if isinstance(value, np.ndarray) and value.ndim > 0:
        value = value.tolist()
    if isinstance(value, list | tuple):
        return value
    raise DatasetError(f"{where} must be {expected}, got {_describe(value)}", where)


def _to_float(value: Any, where: str) -> float:
    """A finite float from a JSON number, or ``DatasetError``."""
    if not _is_number(value):
        raise DatasetError(f"{where} is {_describe(value)}, not a number", where)
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise DatasetError(
            f"{where} is {_describe(value)}: non-finite values (NaN, ±Inf) are not allowed",
            where,
        )
    return number


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise DatasetError("the dataset name must be a non-empty string", "name")
    return name.strip()


def _check_task(task: Any) -> Task:
    if not isinstance(task, str) or task not in TASKS:
        raise DatasetError(
            f"task must be 'classification' or 'regression', got {_describe(task)}", "task"
        )
    return task  # type: ignore[return-value]


def _feature_matrix(features: Any) -> np.ndarray:
    rows = _as_list(features, "features", "a list of rows (lists of numbers)")
    if len(rows) < 2:
        raise DatasetError(f"at least 2 rows are needed, got {len(rows)}", "features")
    width = len(_as_list(rows[0], "features[0]", "a list of numbers"))
    if width == 0:
        raise DatasetError(
            "zero feature columns: each row needs at least one number", "features[0]"
        )
    matrix = np.empty((len(rows), width), dtype=np.float64)
    for i, row in enumerate(rows):
        row = _as_list(row, f"features[{i}]", "a list of numbers")
        if len(row) != width:
            raise DatasetError(
                f"features[{i}] has {len(row)} values but features[0] has {width} (ragged rows)",
                f"features[{i}]",
            )
        matrix[i] = [_to_float(value, f"features[{i}][{j}]") for j, value in enumerate(row)]
    return matrix


def _check_feature_names(feature_names: Any, n_features: int) -> list[str]:
    if feature_names is None:
        return [f"x{j + 1}" for j in range(n_features)]
    names = _as_list(feature_names, "feature_names", "a list of strings")
    if len(names) != n_features:
        raise DatasetError(
            f"{len(names)} feature names for {n_features} feature columns", "feature_names"
        )
    return _check_column_names(names, "feature_names")


def _check_column_names(names: Sequence[Any], where: str) -> list[str]:
    checked: list[str] = []
    seen: set[str] = set()
    for j, raw in enumerate(names):
        if not isinstance(raw, str):
            raise DatasetError(f"{where}[{j}] is {_describe(raw)}, not a string", f"{where}[{j}]")
        column = raw.strip()
        if not column:
            raise DatasetError(f"{where}[{j}] is empty: every column needs a name", where)
        if column in seen:
            raise DatasetError(f"{where}: duplicate column name {column!r}", where)
        seen.add(column)
        checked.append(column)
    return checked


def _check_class_names(class_names: Any) -> list[str]:
    if class_names is None:
        raise DatasetError("a classification set needs class names", "class_names")
    names = _as_list(class_names, "class_names", "a list of strings")
    if len(names) < 2:
        raise DatasetError("a classification set needs at least 2 classes", "class_names")
    if not all(isinstance(item, str) for item in names) or len(set(names)) != len(names):
        raise DatasetError("class names must be distinct strings", "class_names")
    return list(names)


def _class_targets(values: list[Any], where: Where) -> tuple[np.ndarray, list[str]]:
    """Class indices into the sorted class names; labels all integers or all strings."""
    labels: list[Any] = []
    first_kind = ""
    for index, value in enumerate(values):
        if isinstance(value, str):
            if not value.strip():
                raise DatasetError(f"{where(index)} is an empty class name", "targets")
            kind, label = "string", value
        elif _is_number(value):
            kind, label = "integer", _integer_label(value, where(index))
        else:
            raise DatasetError(
                f"{where(index)} is {_describe(value)}: classification targets are class "
                "names (strings) or integers",
                "targets",
            )
        if not first_kind:
            first_kind = kind
        elif kind != first_kind:
            raise DatasetError(
                f"{where(index)} is {_describe(value)} but earlier targets are {first_kind}s: "
                "use all integers or all class names, not a mix",
                "targets",
            )
        labels.append(label)
    unique = sorted(set(labels))
    if len(unique) < 2:
        only = _describe(unique[0]) if unique else "none"
        raise DatasetError(
            f"a classification set needs at least 2 classes, found one class ({only})",
            "targets",
        )
    position = {label: k for k, label in enumerate(unique)}
    indices = np.fromiter((position[label] for label in labels), dtype=np.int64, count=len(labels))
    return indices, [str(label) for label in unique]


def _integer_label(value: Any, where: str) -> int:
    if isinstance(value, int | np.integer):
        label = int(value)
    else:
        number = float(value)
        if not math.isfinite(number) or not number.is_integer():
            raise DatasetError(
                f"{where} is {_describe(value)}: classification targets are class names "
                "(strings) or integers",
                "targets",
            )
        label = int(number)
    if not _INT64_MIN <= label <= _INT64_MAX:
        raise DatasetError(f"{where}: integer class labels must fit in 64 bits", "targets")
    return label


def _regression_targets(values: Sequence[Any], where: Where) -> np.ndarray:
    """float64 (n, k): all numbers (k = 1) or all lists of k ≥ 1 numbers."""
    first = values[0]
    several = isinstance(first, list | tuple | np.ndarray)
    width = len(_as_list(first, where(0), "a list of numbers")) if several else 1
    if width == 0:
        raise DatasetError(f"{where(0)} is an empty list: give at least one output", "targets")
    outputs = np.empty((len(values), width), dtype=np.float64)
    for index, value in enumerate(values):
        if several:
            if not isinstance(value, list | tuple | np.ndarray):
                raise DatasetError(
                    f"{where(index)} is {_describe(value)} but {where(0)} is a list: "
                    f"regression targets are all numbers or all lists of {width} numbers",
                    "targets",
                )
            row = _as_list(value, where(index), "a list of numbers")
            if len(row) != width:
                raise DatasetError(
                    f"{where(index)} has {len(row)} outputs but {where(0)} has {width} "
                    "(ragged targets)",
                    "targets",
                )
            outputs[index] = [_to_float(item, f"{where(index)}[{k}]") for k, item in enumerate(row)]
        else:
            if isinstance(value, list | tuple | np.ndarray):
                raise DatasetError(
                    f"{where(index)} is a list but {where(0)} is a number: regression targets "
                    "are all numbers or all lists of the same length",
                    "targets",
                )
            outputs[index, 0] = _to_float(value, where(index))
    return outputs


def _check_header(cells: list[str]) -> list[str]:
    header: list[str] = []
    seen: set[str] = set()
    for j, cell in enumerate(cells):
        column = cell.strip()
        if not column:
            raise DatasetError(
                f"column {j + 1} of the header row has no name: every column needs one", "file"
            )
        if column in seen:
            raise DatasetError(f"duplicate column name {column!r} in the header row", "file")
        seen.add(column)
        header.append(column)
    return header


def _target_columns(header: list[str], target: str, task: Task) -> list[int]:
    if target in header:
        return [header.index(target)]
    wanted = [part.strip() for part in target.split(",")]
    if task == "regression" and len(wanted) > 1:
        if len(set(wanted)) != len(wanted):
            raise DatasetError(f"target {target!r} names a column twice", "target")
        missing = [column for column in wanted if column not in header]
        if not missing:
            return [header.index(column) for column in wanted]
        target = missing[0]
    shown = ", ".join(repr(column) for column in header[:20])
    more = ", ..." if len(header) > 20 else ""
    raise DatasetError(
        f"target column {target!r} is not in the CSV header (columns: {shown}{more})", "target"
    )


def _csv_number(cell: str, line: int, column: str) -> float:
    text = cell.strip()
    where = f"line {line}, column {column!r}"
    if not text:
        raise DatasetError(f"{where}: empty value (missing values are not supported)", "file")
    if _NUMBER.fullmatch(text):
        number = float(text)
        if math.isfinite(number):
            return number
        raise DatasetError(f"{where}: {text[:30]!r} overflows float64 (non-finite)", "file")
    try:
        number = float(text)
    except ValueError:
        number = 0.0
    if not math.isfinite(number):
        raise DatasetError(f"{where}: {text!r} is non-finite (NaN, ±Inf are not allowed)", "file")
    raise DatasetError(f"{where}: {_describe(cell)} is not a number", "file")


def _read_npz(b: bytes, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The named arrays of an ``.npz``; object arrays are refused before loading."""
    try:
        with zipfile.ZipFile(io.BytesIO(b)) as archive:
            for key in keys:
                with archive.open(f"{key}.npy") as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        _, _, dtype = np.lib.format.read_array_header_1_0(member)
                    else:
                        _, _, dtype = np.lib.format.read_array_header_2_0(member)
                    if dtype.hasobject:
                        raise UnsafeFileError(
                            f"{key}: object arrays need pickle to load and are refused"
                        )
        with np.load(io.BytesIO(b), allow_pickle=False) as npz:
            return {key: npz[key] for key in keys}
    except UnsafeFileError:
        raise
    except KeyError as exc:
        raise DatasetError(f"the .npz file has no array {exc}", "file") from None
    except ValueError as exc:
        if "pickle" in str(exc):
            raise UnsafeFileError(f"the .npz file needs pickle to load: {exc}") from None
        raise DatasetError(f"the .npz file cannot be read: {exc}", "file") from None
    except (OSError, EOFError, zipfile.BadZipFile, RuntimeError) as exc:
        raise DatasetError(f"the .npz file cannot be read: {exc}", "file") from None
