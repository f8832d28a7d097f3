"""The body of a predict request, parsed fast (orjson, NumPy) and answered as
FastAPI would answer the ``PredictRequest`` schema: the same 400 and 422 lists.

Three shapes: ``{"inputs": [[number, ...], ...]}`` (the fast lane, columns in the
model's order), ``{"records": [{feature_name: number}, ...]}`` and a ``text/csv``
body with a header row of feature names; the last two are matched to the model's
feature names by ``NamedInputs.for_features`` once the model is known."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app.errors import BadRequest, Unprocessable
from app.http import nested_deeper_than
from app.schemas import PredictRequest
from core.loaders import sniff_delimiter

#: orjson parses at most this many nested levels (its documented limit).
ORJSON_DEPTH = 1024

#: What the body shapes are, for the messages that name them.
SHAPES = (
    '{"inputs": [[number, ...], ...]} (columns in the model\'s order), '
    '{"records": [{"feature name": number, ...}, ...]}, or a text/csv body with a header '
    "row of feature names"
)


@dataclass(frozen=True)
class NamedInputs:
    """Rows whose columns are named (records or CSV), in the body's column order."""

    columns: tuple[str, ...]
    matrix: np.ndarray  # finite float64 (n, len(columns))

    def for_features(self, feature_names: list[str] | None) -> np.ndarray:
        """The matrix with its columns in the model's order; 422 naming a missing or
        unknown column (and listing the model's features)."""
        if feature_names is None:
            raise Unprocessable(
                "this model has no stored feature names (trained before they were kept): "
                'send {"inputs": [[...]]} with the columns in the training order'
            )
        listed = ", ".join(feature_names)
        missing = [name for name in feature_names if name not in self.columns]
        if missing:
            raise Unprocessable(
                f"missing feature column(s) {', '.join(map(repr, missing))}: the model's "
                f"features are {listed}"
            )
        unknown = [name for name in self.columns if name not in feature_names]
        if unknown:
            raise Unprocessable(
                f"unknown column(s) {', '.join(map(repr, unknown))}: the model's features "
                f"are {listed}"
            )
        order = [self.columns.index(name) for name in feature_names]
        return self.matrix[:, order]


def predict_inputs(
    body: bytes, content_type: str | None
) -> tuple[np.ndarray | None, list[list[float]] | None] | NamedInputs:
    """The checked inputs of a predict body: a finite float64 matrix (the fast path),
    validated rows of uneven widths (a 422 once the model's width is known), or
    ``NamedInputs`` (records, CSV).

    400 for malformed JSON (FastAPI's list shape), 422 as ``PredictRequest`` says; a
    flat row is one 422 that says to wrap it."""
    if content_type is not None and not _is_json(content_type):
        if _is_csv(content_type):
            return _csv_inputs(body)
        raise Unprocessable(
            f"Content-Type {content_type.partition(';')[0].strip()!r} is not accepted: send "
            f"application/json or text/csv. Bodies: {SHAPES}"
        )
    if not body:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        if content_type is None:
            raise BadRequest(
                "no Content-Type header, and the body is not JSON: send it with "
                "`Content-Type: application/json` (or `text/csv` for CSV rows)"
            ) from None
        # orjson refuses NaN, Infinity, 1e999 and huge integers, which Python's parser
        # reads (then the schema says 422 naming the number), and nesting past 1024,
        # which Python's parser reads or not depending on the interpreter's recursion
        # limit (raised by some libraries): refused here whatever that limit is.
        if nested_deeper_than(body, ORJSON_DEPTH):
            raise BadRequest(f"JSON nested deeper than {ORJSON_DEPTH} levels") from None
        try:
            document = json.loads(body)
        except RecursionError:
            raise BadRequest("JSON nested too deeply to parse") from None
        except ValueError as error:
            if not isinstance(error, json.JSONDecodeError):
                raise BadRequest(f"the body is not JSON: {error}") from None
            raise RequestValidationError(
                [
                    {
                        "type": "json_invalid",
                        "loc": ("body", error.pos),
                        "msg": "JSON decode error",
                        "input": {},
                        "ctx": {"error": error.msg},
                    }
                ]
            ) from None
    # JSON booleans are not numbers (NumPy would read them as 0 and 1): the schema
    # check below names them. A C-speed look at the bytes keeps the fast path fast.
    if (
        type(document) is dict
        and len(document) == 1
        and b"true" not in body
        and b"false" not in body
    ):
        inputs = document.get("inputs")
        if type(inputs) is list and inputs:
            try:
                matrix = np.array(inputs)
            except (ValueError, TypeError, OverflowError):  # e.g. ragged rows
                matrix = None
            if matrix is not None and matrix.ndim == 2 and matrix.dtype.kind in "fiu":
                matrix = np.asarray(matrix, dtype=np.float64)
                if np.isfinite(matrix).all():
                    return matrix, None
            elif matrix is not None and matrix.ndim == 1 and matrix.dtype.kind in "fiub":
                raise _flat_row(inputs)
    if type(document) is dict and "records" in document:
        if len(document) != 1:
            raise Unprocessable(f"give one of inputs or records, no other key. Bodies: {SHAPES}")
        return _records_inputs(document["records"])
    return None, _validation_error(document).inputs


def _flat_row(row: list[Any]) -> RequestValidationError:
    shown = json.dumps(row[:8])[:-1] + (", ...]" if len(row) > 8 else "]")
    return RequestValidationError(
        [
            {
                "type": "list_of_rows",
                "loc": ("body", "inputs"),
                "msg": f"inputs must be a list of rows: wrap one row in a list, "
                f'{{"inputs": [{shown}]}}',
                "input": None,
            }
        ]
    )


def _number(value: Any) -> float | None:
    if type(value) in (int, float):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _records_inputs(records: Any) -> NamedInputs:
    """``{"records": [{name: number}, ...]}``: every record with the first one's names."""
    if type(records) is not list or not records or type(records[0]) is not dict:
        raise Unprocessable('records must be a non-empty list of objects {"feature": number}')
    columns = tuple(records[0])
    matrix = np.empty((len(records), len(columns)), dtype=np.float64)
    for i, record in enumerate(records):
        if type(record) is not dict or set(record) != set(columns):
            missing = [name for name in columns if type(record) is dict and name not in record]
            what = f"lacks {', '.join(map(repr, missing))}" if missing else "has other keys"
            raise Unprocessable(f"records[{i}] {what}: every record needs the same features")
        for j, name in enumerate(columns):
            number = _number(record[name])
            if number is None:
                raise Unprocessable(
                    f"records[{i}][{name!r}] is {json.dumps(record[name])[:40]}: a finite "
                    "number is needed"
                )
            matrix[i, j] = number
    return NamedInputs(columns=columns, matrix=matrix)


def _csv_inputs(body: bytes) -> NamedInputs:
    """A CSV body: a header row of feature names, then rows of finite numbers."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise Unprocessable(f"the CSV body is not UTF-8 (byte {error.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text))
    try:
        rows = [row for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as error:
        raise Unprocessable(f"the CSV body cannot be parsed: {error}") from None
    if len(rows) < 2:
        raise Unprocessable("the CSV body needs a header row of feature names and a row")
    columns = tuple(cell.strip() for cell in rows[0])
    if len(set(columns)) != len(columns):
        raise Unprocessable("the CSV header names a column twice")
    matrix = np.empty((len(rows) - 1, len(columns)), dtype=np.float64)
    for i, row in enumerate(rows[1:]):
        if len(row) != len(columns):
            raise Unprocessable(f"CSV row {i + 1} has {len(row)} fields, the header {len(columns)}")
        for j, cell in enumerate(row):
            try:
                number = float(cell)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                raise Unprocessable(
                    f"CSV row {i + 1}, column {columns[j]!r}: {cell.strip()[:30]!r} is not a "
                    "finite number"
                )
            matrix[i, j] = number
    return NamedInputs(columns=columns, matrix=matrix)


def _validation_error(document: Any) -> PredictRequest:
    """``PredictRequest`` for what the fast check did not accept: FastAPI's 422 list
    (``loc`` from ``body``), or the validated rows."""
    try:
        return PredictRequest.model_validate(document)
    except ValidationError as error:
        raise RequestValidationError(
            [
                {**detail, "loc": ("body", *detail["loc"])}
                for detail in error.errors(include_url=False)
            ]
        ) from None


def _is_csv(content_type: str) -> bool:
    return content_type.partition(";")[0].strip().lower() == "text/csv"


def _is_json(content_type: str) -> bool:
    subtype = content_type.partition(";")[0].strip().lower().partition("/")[2]
    return subtype == "json" or subtype.endswith("+json")
