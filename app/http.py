"""HTTP plumbing: the body-size limit, the JSON depth guard, a fast JSON response."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
import orjson
from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def too_large_message(limit: int) -> str:
    return (
        f"request body larger than the limit of {limit} bytes (raise it with ANNLAB_MAX_BODY_BYTES)"
    )


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=too_large_message(limit))


class BodyLimitMiddleware:
    """413 for a body over ``limit`` bytes, before it is read whole.

    A ``Content-Length`` over the limit is refused without reading anything; a
    body without one (chunked) is counted as it streams in and refused as soon as
    the count passes the limit.
    """

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.limit:
                    await self._refuse(send)
                    return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
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
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = orjson.dumps({"detail": too_large_message(self.limit)})
        await send(
            {
                "type": "http.response.start",
                "status": 413,
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


async def check_json_depth(request: Request) -> None:
    """400 for a JSON body nested deeper than ``ANNLAB_MAX_JSON_DEPTH`` (POST, PUT, PATCH)."""
    content_type = request.headers.get("content-type", "")
    if request.method in ("POST", "PUT", "PATCH") and "json" in content_type:
        body = await request.body()
        depth_limit = request.app.state.settings.max_json_depth
        # The depth is at most the number of opening brackets (a C-speed count):
        # only a body with more of them than the limit needs the exact scan.
        if body.count(b"[") + body.count(b"{") > depth_limit and json_depth(body) > depth_limit:
            raise HTTPException(
                status_code=400,
                detail=f"JSON nested deeper than {depth_limit} levels "
                "(raise it with ANNLAB_MAX_JSON_DEPTH)",
            )


class GuardedRoute(APIRoute):
    """Refuses JSON nested deeper than the configured depth before it is parsed
    (Python's parser overflows its stack near depth 1,000: a 500 otherwise)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
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
            from app.errors import json_safe

            return orjson.dumps(json_safe(content))
