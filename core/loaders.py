"""Loaders: user data (parsed JSON, CSV bytes, stored ``.npz``) into a checked ``Dataset``.

Every loader raises ``DatasetError`` (or ``UnsafeFileError`` for a pickled
``.npz``) with a message that names the problem and where it is, whatever the
input: the service passes untrusted data straight in.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import math
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from core.csv_fast import fast_csv
from core.data import Dataset
from core.errors import DatasetError, UnsafeFileError
from core.specs import NAME_MAX_LENGTH, Task
from core.value_checks import (
    MAX_FEATURES,
    TASKS,
    as_list,
    check_class_names,
    check_feature_count,
    check_feature_names,
    check_name,
    check_task,
    class_targets,
    describe,
    feature_matrix,
    regression_targets,
)

__all__ = [
    "DELIMITERS",
    "MAX_FEATURES",
    "TASKS",
    "dataset_from_csv",
    "dataset_from_json",
    "dataset_from_npz_bytes",
    "dataset_from_npz_file",
    "dataset_to_npz_bytes",
    "sniff_delimiter",
    "write_dataset_npz",
]

#: The CSV delimiters recognised: comma, semicolon (spreadsheets in many locales), tab.
DELIMITERS = (",", ";", "\t")

#: A finite decimal number as written in a CSV cell (ASCII digits only).
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
#: An integer class label in a CSV cell; at most 18 digits, so it always fits int64.
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")


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
    name = check_name(name)
    task = check_task(task)
    matrix = feature_matrix(features)
    n_samples, n_features = matrix.shape
    names = check_feature_names(feature_names, n_features)
    values = as_list(targets, "targets", "a list with one target per row")
    if len(values) != n_samples:
        raise DatasetError(
            f"{len(values)} targets for {n_samples} rows: one target per row is needed",
            "targets",
        )

    def where(index: int) -> str:
        return f"targets[{index}]"

    if task == "classification":
        labels, class_names = class_targets(list(values), where)
        _check_class_count(len(class_names), n_samples)
        return Dataset(name, task, matrix, labels, class_names, names)
    outputs = regression_targets(values, where)
    return Dataset(name, task, matrix, outputs, None, names)


def sniff_delimiter(text: str) -> str:
    """The delimiter of a CSV text: of ``DELIMITERS``, the one its first non-blank line
    (the header) holds most often outside quotes; a comma when it holds none."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    unquoted = re.sub(r'"[^"]*"', "", header)
    counts = {delimiter: unquoted.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] > 0 else ","


def _check_delimiter(delimiter: Any) -> str | None:
    if delimiter is None or delimiter == "":
        return None
    if delimiter in ("tab", "\\t"):
        return "\t"
    if delimiter not in DELIMITERS:
        raise DatasetError(
            f"delimiter {describe(delimiter)} is not one of ',', ';', tab (or leave it out: "
            "it is detected from the header row)",
            "delimiter",
        )
    return str(delimiter)


def _check_class_count(n_classes: int, n_rows: int) -> None:
    """More classes than half the rows is almost surely a numeric target uploaded as a
    classification (every distinct value a class of one or two rows). Two classes
    never are (a toy set such as XOR has as many rows as it needs)."""
    if n_classes > 2 and n_classes > n_rows / 2:
        raise DatasetError(
            f"{n_classes} classes for {n_rows} rows: more classes than half the rows leaves "
            "about one example per class. If the target is a number to predict, upload with "
            "task=regression",
            "task",
        )


def dataset_from_csv(
    *,
    content: Any,
    target: Any,
    task: Any,
    name: Any,
    delimiter: Any = None,
    arrow: bool = True,
) -> Dataset:
    """Parse a UTF-8 CSV file with a header row into a ``Dataset``.

    ``delimiter`` is ``,``, ``;`` or tab (``"\\t"`` or ``"tab"``); None: detected from
    the header row (``sniff_delimiter``).

    ``target`` names the target column; every other column is a feature and must
    hold finite numbers in every row. Classification targets are class names, or
    integers (then the class names are the sorted integers as strings). Regression
    targets are numbers; for several outputs ``target`` may list several columns
    separated by commas (``"y1,y2"``) when no single column has that exact name.
    Blank lines are skipped; a UTF-8 byte-order mark is allowed. Errors raise
    ``DatasetError`` naming the line and column. ``arrow=False`` skips the Arrow
    reader (same bits; for a file so small that importing pyarrow costs more).

    ``content`` is the file's bytes, or a ``Path`` to it: then a plain file is parsed as
    Arrow reads it, in blocks, and only a file for the slow path is read whole.
    """
    name = check_name(name)
    task = check_task(task)
    path = content if isinstance(content, Path) else None
    if path is None:
        content = _file_bytes(content, "the CSV file")
    if not isinstance(target, str) or not target.strip():
        raise DatasetError("the target column name must be a non-empty string", "target")
    chosen = _check_delimiter(delimiter)
    fast = _fast(content, chosen, target.strip(), task, name) if arrow else None
    if fast is not None:
        return fast
    if path is not None:
        content = path.read_bytes()
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"the CSV file is not UTF-8 text (invalid byte at offset {exc.start})", "file"
        ) from None

    delimiter = chosen or sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
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
        targets, class_names = class_targets(labels, where)
        _check_class_count(len(class_names), len(body))
        return Dataset(name, task, features, targets, class_names, feature_names)

    outputs = np.empty((len(body), len(target_columns)), dtype=np.float64)
    for i, (line, row) in enumerate(body):
        for k, j in enumerate(target_columns):
            outputs[i, k] = _csv_number(row[j], line, header[j])
    return Dataset(name, task, features, outputs, None, feature_names)


def dataset_to_npz_bytes(ds: Dataset) -> bytes:
    """The arrays of ``ds`` (``features``, ``targets``) as an ``.npz`` file, no pickle."""
    buffer = io.BytesIO()
    write_dataset_npz(ds, buffer)
    return buffer.getvalue()


def write_dataset_npz(ds: Dataset, out: IO[bytes]) -> None:
    """:func:`dataset_to_npz_bytes` written into ``out``: NumPy writes each array in
    blocks, so a big upload is never held twice (arrays and their encoding)."""
    np.savez(out, features=ds.features, targets=ds.targets)


def dataset_from_npz_bytes(
    b: bytes,
    *,
    name: str,
    task: Task,
    class_names: list[str] | None,
    feature_names: list[str],
    copy: bool = True,
) -> Dataset:
    """Load the arrays written by :func:`dataset_to_npz_bytes` and check them again.

    Array headers are read before any data: an object array (which would need
    pickle) raises ``UnsafeFileError`` and nothing is unpickled or executed. Any
    other unreadable or inconsistent file raises ``DatasetError``.

    ``copy`` False (a file this service wrote, e.g. read back from its database):
    arrays stored uncompressed are read-only views into ``b`` rather than copies,
    so decoding needs no second dataset's worth of memory (no CRC check then).
    """
    b = _file_bytes(b, "an .npz file")
    arrays = _read_npz(b, ("features", "targets"), copy=copy)
    return _checked_dataset(arrays, name, task, class_names, feature_names)


def dataset_from_npz_file(
    f: IO[bytes],
    *,
    name: str,
    task: Task,
    class_names: list[str] | None,
    feature_names: list[str],
) -> Dataset:
    """:func:`dataset_from_npz_bytes` from a seekable file object (an SQLite blob handle):
    NumPy reads each array in 256 KiB pieces into its own buffer, so the file's bytes
    are never held whole beside the arrays. The arrays come back read-only, as views
    into a stored blob would."""
    with _npz_errors(), np.load(f, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in ("features", "targets")}
    for array in arrays.values():
        array.flags.writeable = False
    return _checked_dataset(arrays, name, task, class_names, feature_names)


def _checked_dataset(
    arrays: dict[str, np.ndarray],
    name: str,
    task: Task,
    class_names: list[str] | None,
    feature_names: list[str],
) -> Dataset:
    """The stored arrays checked again (shapes, dtypes, finite values, class indices)."""
    name = check_name(name)
    task = check_task(task)
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
    names = check_feature_names(feature_names, features.shape[1])
    n_samples = features.shape[0]
    if targets.shape[:1] != (n_samples,):
        raise DatasetError(
            f"targets has shape {targets.shape} for {n_samples} rows of features", "targets"
        )

    if task == "classification":
        if targets.ndim != 1 or targets.dtype != np.int64:
            raise DatasetError("classification targets must be int64 class indices", "targets")
        classes = check_class_names(class_names)
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


# ------------------------------------------------------------------------- CSV


def _file_bytes(content: object, what: str) -> bytes:
    """An uploaded file's bytes, whichever buffer type it came in; anything else is a
    ``DatasetError`` on the ``file`` field (a 422, never a crash further down)."""
    if isinstance(content, bytearray | memoryview):
        content = bytes(content)
    if not isinstance(content, bytes):
        raise DatasetError(f"{what} must be bytes, got {describe(content)}", "file")
    return content


def _check_header(cells: list[str]) -> list[str]:
    # at most MAX_FEATURES features plus the target column(s) they leave room for
    check_feature_count(len(cells) - 1, "file")
    header: list[str] = []
    seen: set[str] = set()
    for j, cell in enumerate(cells):
        column = cell.strip()
        if not column:
            raise DatasetError(
                f"column {j + 1} of the header row has no name: every column needs one", "file"
            )
        if len(column) > NAME_MAX_LENGTH:
            raise DatasetError(
                f"column {j + 1} of the header row has a name of {len(column)} characters, at "
                f"most {NAME_MAX_LENGTH} are allowed",
                "file",
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


def _fast(
    content: bytes | Path, chosen: str | None, target: str, task: Task, name: str
) -> Dataset | None:
    """``core.csv_fast`` for a plain file whose first line is its header, read from the
    bytes or the file (no decoded copy of the text); None: parse it the slow way (which
    also raises every error, with its line and column). A file the fast path accepts is
    UTF-8: its numbers are ASCII, and Arrow checks its class names."""
    if isinstance(content, bytes):
        head = content
    else:
        with content.open("rb") as f:
            head = f.readline()
    start = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
    end = head.find(b"\n", start)
    try:
        first = head[start : end if end >= 0 else len(head)].decode("utf-8").rstrip("\r")
    except UnicodeDecodeError:
        return None
    # the slow path's header is the first line of text.splitlines() that is not blank
    if not first.strip() or len(first.splitlines()) != 1:
        return None
    delimiter = chosen or sniff_delimiter(first)
    try:
        header = _check_header(next(csv.reader([first], delimiter=delimiter)))
        target_columns = _target_columns(header, target, task)
    except (DatasetError, csv.Error, StopIteration):
        return None
    feature_columns = [j for j in range(len(header)) if j not in target_columns]
    if not feature_columns:
        return None
    parsed = fast_csv(
        content, start, delimiter, len(header), feature_columns, target_columns, task, _INTEGER
    )
    if parsed is None:
        return None
    features, targets, class_names = parsed
    feature_names = [header[j] for j in feature_columns]
    if class_names is not None:
        try:
            _check_class_count(len(class_names), features.shape[0])
        except DatasetError:
            return None
    return Dataset(name, task, features, targets, class_names, feature_names)


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
    raise DatasetError(f"{where}: {describe(cell)} is not a number", "file")


def _read_npz(b: bytes, keys: tuple[str, ...], copy: bool = True) -> dict[str, np.ndarray]:
    """The named arrays of an ``.npz``; object arrays are refused before loading.
    ``copy`` False: views into ``b`` of the arrays stored uncompressed."""
    views: dict[str, np.ndarray] = {}
    with _npz_errors():
        with zipfile.ZipFile(io.BytesIO(b)) as archive:
            for key in keys:
                info = archive.getinfo(f"{key}.npy")
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
                    else:
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
                    if dtype.hasobject:
                        raise UnsafeFileError(
                            f"{key}: object arrays need pickle to load and are refused"
                        )
                    if not copy and info.compress_type == zipfile.ZIP_STORED:
                        view = _stored_view(b, info, member.tell(), shape, fortran, dtype)
                        if view is not None:
                            views[key] = view
        if len(views) == len(keys):
            return views
        with np.load(io.BytesIO(b), allow_pickle=False) as npz:
            return {key: npz[key] for key in keys}


@contextlib.contextmanager
def _npz_errors() -> Iterator[None]:
    """What reading an ``.npz`` may raise, as the ``DatasetError`` (or, for a file that
    needs pickle, the ``UnsafeFileError``) that names it."""
    try:
        yield
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


def _stored_view(
    b: bytes,
    info: zipfile.ZipInfo,
    header_bytes: int,
    shape: tuple[int, ...],
    fortran: bool,
    dtype: np.dtype[Any],
) -> np.ndarray | None:
    """The array of an uncompressed member as a read-only view into ``b``; None when
    its local header or size does not add up (then it is read the usual way)."""
    local = info.header_offset
    if b[local : local + 4] != b"PK\x03\x04":
        return None
    name_length = int.from_bytes(b[local + 26 : local + 28], "little")
    extra_length = int.from_bytes(b[local + 28 : local + 30], "little")
    start = local + 30 + name_length + extra_length + header_bytes
    count = int(np.prod(shape, dtype=np.int64))
    if (
        header_bytes + count * dtype.itemsize != info.file_size
        or start + count * dtype.itemsize > len(b)
    ):
        return None
    array = np.frombuffer(b, dtype=dtype, count=count, offset=start)
    return array.reshape(shape, order="F" if fortran else "C")
