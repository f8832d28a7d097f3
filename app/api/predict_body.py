"""The body of a predict request, parsed fast (orjson, NumPy) and answered as
FastAPI would answer the ``PredictRequest`` schema: the same 400 and 422 lists."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app.errors import BadRequest
from app.schemas import PredictRequest


def predict_inputs(
    body: bytes, content_type: str | None
) -> tuple[np.ndarray | None, list[list[float]] | None]:
    """The checked inputs of a predict body: a finite float64 matrix (the fast path),
    or validated rows of uneven widths (a 422 once the model's width is known).

    400 for malformed JSON (FastAPI's list shape), 422 as ``PredictRequest`` says."""
    if content_type is not None and not _is_json(content_type):
        _validation_error(body)  # FastAPI validates the raw bytes: a 422
    if not body:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        # orjson refuses NaN, Infinity, 1e999 and huge integers, which Python's parser
        # reads (then the schema says 422 naming the number), and nesting past 1024.
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
    return None, _validation_error(document).inputs


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


def _is_json(content_type: str) -> bool:
    subtype = content_type.partition(";")[0].strip().lower().partition("/")[2]
    return subtype == "json" or subtype.endswith("+json")
