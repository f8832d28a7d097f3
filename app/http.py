"""HTTP plumbing: the body-size and Content-Encoding guard, auth and the JSON depth guard
before a body is read, a fast JSON response, and the one place that turns errors
(``app.errors``, ``core.errors``, 405s) into responses."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db.engine import DiskFull, is_disk_full
from app.errors import AppError, json_safe
from core.errors import DatasetError, SpecError


def too_large_message(limit: int, setting: str = "ANNLAB_MAX_BODY_BYTES") -> str:
    return f"request body larger than the limit of {limit} bytes (raise it with {setting})"


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int, setting: str = "ANNLAB_MAX_BODY_BYTES") -> None:
        super().__init__(status_code=413, detail=too_large_message(limit, setting))


#: Bytes a CSV upload's form may add to its file (boundaries, part headers, fields).
UPLOAD_FORM_BYTES = 1024 * 1024
#: Where CSV files are uploaded (``POST``, ``multipart/form-data``).
UPLOAD_PATH = "/api/v1/datasets"


#: Content-Encodings a request body may have (any other: 415, nothing decodes them).
ACCEPTED_ENCODINGS = ("", "identity")


class BodyLimitMiddleware:
    """413 for a body over ``limit`` bytes, before it is read whole; 415 for a body in
    a ``Content-Encoding`` the service does not decode (gzip, ...).

    A ``Content-Length`` over the limit is refused without reading anything; a
    body without one (chunked) is counted as it streams in and refused as soon as
    the count passes the limit.

    A CSV upload (``upload_limit``: ``POST /api/v1/datasets`` as a form) is bounded by
    the dataset limit plus ``UPLOAD_FORM_BYTES`` instead: the API process streams its
    file to disk and never holds it, while a JSON body is read whole and parsed into
    Python objects (many times its size), so the two have limits of their own.
    """

    def __init__(self, app: ASGIApp, *, limit: int, upload_limit: int | None = None) -> None:
        self.app = app
        self.body_limit = limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = self._limit(scope)
        for name, value in scope.get("headers", []):
            if name == b"content-encoding":
                encoding = value.decode("latin-1").strip().lower()
                if encoding not in ACCEPTED_ENCODINGS:
                    await _send_json(send, 415, {"detail": _encoding_message(encoding)})
                    return
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > limit:
                    await _send_json(send, 413, {"detail": too_large_message(limit, setting)})
                    return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, setting)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await _send_json(send, 413, {"detail": too_large_message(limit, setting)})

    def _limit(self, scope: Scope) -> tuple[int, str]:
        """The limit of this request, and the setting that raises it."""
        if (
            self.upload_limit is not None
            and scope.get("method") == "POST"
            and scope.get("path", "").rstrip("/") == UPLOAD_PATH
        ):
            for name, value in scope.get("headers", []):
                if name == b"content-type" and value.lower().startswith(b"multipart/form-data"):
                    return max(self.body_limit, self.upload_limit), "ANNLAB_MAX_DATASET_BYTES"
        return self.body_limit, "ANNLAB_MAX_BODY_BYTES"


def _encoding_message(encoding: str) -> str:
    return (
        f"Content-Encoding {encoding[:40]!r} is not supported: send the body uncompressed "
        "(no Content-Encoding, or identity)"
    )


async def _send_json(send: Send, status: int, content: Any) -> None:
    """A JSON response sent straight from a middleware (the connection is then closed:
    the body, if any, is not read)."""
    body = orjson.dumps(content)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


def json_depth(body: bytes) -> int:
    """Deepest bracket nesting of a JSON text (brackets inside strings ignored)."""
    if b"[" not in body and b"{" not in body:
        return 0
    if b'"' in body:
        # Blank out string contents: escaped quotes first, then each "..." span.
        data = np.frombuffer(body.replace(b"\\\\", b"  ").replace(b'\\"', b"  "), dtype=np.uint8)
        quotes = data == ord('"')
        inside = (np.cumsum(quotes) % 2 == 1) & ~quotes
        steps = np.where(inside, 0, _OPEN[data])
    else:
        steps = _OPEN[np.frombuffer(body, dtype=np.uint8)]
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


def nested_deeper_than(body: bytes, limit: int) -> bool:
    """Whether a JSON text nests deeper than ``limit``. The depth is at most the number
    of opening brackets (a C-speed count): only a body with more of them than the
    limit needs the exact scan."""
    return body.count(b"[") + body.count(b"{") > limit and json_depth(body) > limit


#: Bodies larger than this are scanned for their depth in the thread pool, not on the loop.
INLINE_SCAN_BYTES = 64 * 1024


async def check_json_depth(request: Request) -> None:
    """400 for a JSON body nested deeper than ``ANNLAB_MAX_JSON_DEPTH`` (POST, PUT, PATCH)."""
    content_type = request.headers.get("content-type", "")
    if request.method in ("POST", "PUT", "PATCH") and "json" in content_type:
        body = await request.body()
        depth_limit = request.app.state.settings.max_json_depth
        if len(body) > INLINE_SCAN_BYTES:
            deeper = await run_in_threadpool(nested_deeper_than, body, depth_limit)
        else:
            deeper = nested_deeper_than(body, depth_limit)
        if deeper:
            raise HTTPException(
                status_code=400,
                detail=f"JSON nested deeper than {depth_limit} levels "
                "(raise it with ANNLAB_MAX_JSON_DEPTH)",
            )


async def check_caller(request: Request) -> None:
    """With auth on, the API key of an ``/api/`` request, from its headers alone: a 401
    before any of the body is read (``app.deps.get_current_user``, which keeps the
    caller for the route's dependencies)."""
    if request.app.state.settings.auth and request.url.path.startswith("/api/"):
        from app.deps import get_current_user  # app.deps imports the services, which import us

        await get_current_user(request)


class GuardedRoute(APIRoute):
    """Checks the caller's key (auth on) before the body is read, then refuses JSON
    nested deeper than the configured depth before it is parsed (Python's parser
    overflows its stack near depth 1,000: a 500 otherwise)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            await check_caller(request)
            await check_json_depth(request)
            return await handler(request)

        return guarded


def _default(value: Any) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")


class ORJSONResponse(JSONResponse):
    """JSON via orjson; numpy arrays serialised natively (fast for weights, predictions)."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, default=_default, option=orjson.OPT_SERIALIZE_NUMPY)
        except orjson.JSONEncodeError:  # e.g. an integer past 64 bits echoed from a request
            return orjson.dumps(json_safe(content))


# ------------------------------------------------------------------------ errors

_LOC_PART = re.compile(r"[^.\[\]]+")


def _loc(field: str) -> list[str | int]:
    """``"features[1][0]"`` or ``"model.layers.1.units"`` → ``["body", "features", 1, 0]``, ..."""
    return ["body", *(int(part) if part.isdigit() else part for part in _LOC_PART.findall(field))]


async def app_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


#: A full disk: 507 Insufficient Storage (RFC 4918), the one 5xx that is not a bug —
#: the request was fine and is worth retrying once space is freed; nothing of it was
#: stored (its transaction rolled back whole).
DISK_FULL_STATUS = 507
DISK_FULL_RETRY_SECONDS = 60


async def database_error_handler(request: Request, exc: Exception) -> Response:
    """A write refused because the database's disk is full → 507 naming the disk;
    any other database error stays what it is (a 500: a bug)."""
    if not (isinstance(exc, DiskFull) or is_disk_full(exc)):
        raise exc
    detail = (
        f"{request.method} {request.url.path} was not stored: the disk holding annlab's "
        "database is full (ANNLAB_DATA_DIR, or the database server's disk). Nothing of this "
        "request was kept; retry once an admin has freed space"
    )
    return JSONResponse(
        {"detail": detail},
        status_code=DISK_FULL_STATUS,
        headers={"Retry-After": str(DISK_FULL_RETRY_SECONDS)},
    )


async def spec_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """A spec that does not fit its dataset: FastAPI's 422 list, ``loc`` naming the field."""
    assert isinstance(exc, SpecError)
    detail = [{"type": "spec_error", "loc": _loc(exc.field), "msg": str(exc), "input": None}]
    return JSONResponse({"detail": detail}, status_code=422)


async def dataset_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DatasetError)
    detail = [{"type": "dataset_error", "loc": _loc(exc.field), "msg": exc.message, "input": None}]
    return JSONResponse({"detail": detail}, status_code=422)


#: Characters of an invalid input echoed back in a 422 (at most; then "…").
EXCERPT_CHARS = 200
#: Items of a list or object echoed back in a 422 (at most).
EXCERPT_ITEMS = 8
#: Levels of nested lists and objects echoed back in a 422 (at most).
EXCERPT_DEPTH = 8


def excerpt(value: Any, budget: int = EXCERPT_CHARS, depth: int = 0) -> Any:
    """A short excerpt of an invalid input, for an error: strings and bytes cut at
    ``budget`` characters, lists and objects at ``EXCERPT_ITEMS`` items (each with a
    smaller budget) and ``EXCERPT_DEPTH`` levels. Never walks more than a few dozen
    values, however big or deep the input (orjson refuses to write past 255 levels:
    a deep body that Python's parser read would otherwise end in a 500)."""
    if isinstance(value, bytes | bytearray | memoryview):
        value = bytes(value[: budget + 1]).decode("utf-8", "replace")
    if isinstance(value, str):
        return value if len(value) <= budget else value[:budget] + "…"
    if isinstance(value, dict | list | tuple) and depth >= EXCERPT_DEPTH:
        return "… nested deeper"
    inner = max(8, budget // 4)
    if isinstance(value, dict):
        items = list(value.items())[:EXCERPT_ITEMS]
        short = {str(key)[:budget]: excerpt(item, inner, depth + 1) for key, item in items}
        if len(value) > EXCERPT_ITEMS:
            short["…"] = f"{len(value) - EXCERPT_ITEMS} more"
        return short
    if isinstance(value, list | tuple):
        head = [excerpt(item, inner, depth + 1) for item in value[:EXCERPT_ITEMS]]
        if len(value) > EXCERPT_ITEMS:
            head.append(f"… {len(value) - EXCERPT_ITEMS} more")
        return head
    return value


async def request_validation_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 list, rendered so that any input (NaN, huge integers) is valid JSON,
    each ``input`` cut to a short excerpt (a 50 MB body is not echoed back).

    A body that is not JSON at all is malformed, not invalid: API.md answers it 400
    (FastAPI would say 422), in the same list shape so clients parse one format.
    """
    assert isinstance(exc, RequestValidationError)
    errors = [
        {**error, "input": excerpt(error["input"])} if "input" in error else error
        for error in exc.errors()
    ]
    malformed = any(error.get("type") == "json_invalid" for error in errors)
    body = orjson.dumps({"detail": json_safe(errors)})
    return Response(body, status_code=400 if malformed else 422, media_type="application/json")


@functools.lru_cache(maxsize=512)
def _path_regex(path: str) -> re.Pattern[str]:
    return compile_path(path)[0]


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at the request's path (Starlette's 405 names only
    the first route that matched the path)."""
    methods: set[str] = set()
    path = request.scope.get("path", "")
    for context in iter_route_contexts(request.app.router.routes):
        route_methods = getattr(context.original_route, "methods", None)
        if route_methods and context.path and _path_regex(context.path).match(path):
            methods.update(route_methods)
    if "GET" in methods:  # app.api.docs.HeadAsGetMiddleware answers HEAD wherever GET works
        methods.add("HEAD")
    return sorted(methods)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's answer to an ``HTTPException``; a 405's ``Allow`` lists every method of
    the path."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        allow = ", ".join(allowed_methods(request))
        exc = StarletteHTTPException(405, detail=exc.detail, headers={"Allow": allow})
    return await http_exception_handler(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, request_validation_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(AppError, app_error_handler)
    app.add_exception_handler(SpecError, spec_error_handler)
    app.add_exception_handler(DatasetError, dataset_error_handler)
    app.add_exception_handler(OperationalError, database_error_handler)
    app.add_exception_handler(DiskFull, database_error_handler)
