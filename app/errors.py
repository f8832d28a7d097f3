"""Typed errors of the service and the one place that turns them into responses."""

from __future__ import annotations

import math
import re
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from core.errors import DatasetError, SpecError


class AppError(Exception):
    """An error with an HTTP status; ``detail`` is what the client reads."""

    status_code = 500

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class BadRequest(AppError):
    status_code = 400


class Unauthorized(AppError):
    """No API key, or one that is unknown or revoked; answered with ``WWW-Authenticate``."""

    status_code = 401


class Forbidden(AppError):
    status_code = 403


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    status_code = 409


class PayloadTooLarge(AppError):
    status_code = 413


class UnsupportedMediaType(AppError):
    status_code = 415


class LimitExceeded(AppError):
    """A configured limit (spec, data, predict rows): 422 naming the ANNLAB_ setting."""

    status_code = 422


class Unprocessable(AppError):
    status_code = 422


class TooMany(AppError):
    status_code = 429


class NotReady(AppError):
    status_code = 503


def limit_message(what: str, value: int | float, limit: int | float, setting: str) -> str:
    return f"{what} is {value}, over the limit of {limit} (raise it with ANNLAB_{setting.upper()})"


_LOC_PART = re.compile(r"[^.\[\]]+")


def _loc(field: str) -> list[str | int]:
    """``"features[1][0]"`` or ``"model.layers.1.units"`` → ``["body", "features", 1, 0]``, ..."""
    return ["body", *(int(part) if part.isdigit() else part for part in _LOC_PART.findall(field))]


async def app_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def spec_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """A spec that does not fit its dataset: FastAPI's 422 list, ``loc`` naming the field."""
    assert isinstance(exc, SpecError)
    detail = [{"type": "spec_error", "loc": _loc(exc.field), "msg": str(exc), "input": None}]
    return JSONResponse({"detail": detail}, status_code=422)


async def dataset_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DatasetError)
    detail = [{"type": "dataset_error", "loc": _loc(exc.field), "msg": exc.message, "input": None}]
    return JSONResponse({"detail": detail}, status_code=422)


async def request_validation_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 list, rendered so that any input (NaN, huge integers) is valid JSON.

    A body that is not JSON at all is malformed, not invalid: API.md answers it 400
    (FastAPI would say 422), in the same list shape so clients parse one format.
    """
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    malformed = any(error.get("type") == "json_invalid" for error in errors)
    body = orjson.dumps({"detail": json_safe(errors)})
    return Response(body, status_code=400 if malformed else 422, media_type="application/json")


def json_safe(value: Any) -> Any:
    """Plain JSON values only: non-finite floats and integers past 64 bits become strings."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _valid_utf8(value)
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {_valid_utf8(str(key)): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return json_safe(value.tolist())
    return str(value)


def _valid_utf8(text: str) -> str:
    """Lone surrogates (legal in JSON escapes, not in UTF-8) become '?'."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, request_validation_handler)
    app.add_exception_handler(AppError, app_error_handler)
    app.add_exception_handler(SpecError, spec_error_handler)
    app.add_exception_handler(DatasetError, dataset_error_handler)
