"""Typed errors of the service, raised by services and routers alike.

No FastAPI here (services import this module): the handlers that turn these into
responses are ``app.http.install_error_handlers``."""

from __future__ import annotations

import math
from typing import Any


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


def limit_message(what: str, value: int | float | str, limit: int | float, setting: str) -> str:
    return f"{what} is {value}, over the limit of {limit} (raise it with ANNLAB_{setting.upper()})"


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
