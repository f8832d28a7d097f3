"""``ANNLAB_RATE_LIMIT``: requests per API key to ``/api/…`` and ``/serve/…``.

A pure ASGI middleware in front of everything else of the API, so a refused request
costs no key lookup, no body read and no database query. The counting is the
``limits`` library's moving window (exact: at most N requests in any window of the
given length), keyed by a SHA-256 of the ``Authorization`` header (the key itself is
not kept), or by the client's address for requests without one and whenever auth is
off (a header then proves nothing: anyone could send a new one per request). ``/healthz``,
``/readyz``, ``/metrics``, the dashboard's pages and static files are never limited.

The counters live in ``ANNLAB_RATE_LIMIT_STORAGE``: ``memory://`` (the default) is
this process's memory, so with several API replicas each one counts on its own and
a key gets up to N × replicas; point every replica at the same ``redis://`` URL (the
cluster's broker will do) to share one budget.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import cast

import orjson
from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage as AsyncStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from starlette.types import ASGIApp, Receive, Scope, Send

#: Paths the limit applies to (the API and MLflow-style serving).
LIMITED_PREFIXES = ("/api/", "/serve/")


def is_limited(path: str) -> bool:
    return path.startswith(LIMITED_PREFIXES)


def async_storage_uri(uri: str) -> str:
    """``limits``' asynchronous storage of the same URI (``redis://`` → ``async+redis://``)."""
    return uri if uri.startswith("async+") else f"async+{uri}"


def caller_key(scope: Scope, *, by_key: bool = True) -> str:
    """Who is counted: the presented credentials (hashed, with ``by_key``), else the
    client address."""
    for name, value in scope.get("headers", ()) if by_key else ():
        if name == b"authorization" and value.strip():
            return "key:" + hashlib.sha256(value.strip()).hexdigest()[:32]
    client = scope.get("client")
    return f"addr:{client[0] if client else 'unknown'}"


def describe(item: RateLimitItem) -> str:
    """``20 per 1 second`` → ``20 per second``; ``600 per 1 minute`` → ``600 per minute``."""
    amount = item.amount
    unit = item.GRANULARITY.name
    return (
        f"{amount} per {unit}" if item.multiples == 1 else f"{amount} per {item.multiples} {unit}s"
    )


class RateLimitMiddleware:
    def __init__(
        self, app: ASGIApp, *, rates: str, storage_uri: str = "memory://", by_key: bool = True
    ) -> None:
        self.app = app
        self.by_key = by_key
        self.items = parse_many(rates)
        options = {"implementation": "redispy"} if "redis" in storage_uri else {}
        storage = storage_from_string(async_storage_uri(storage_uri), **options)
        self.limiter = MovingWindowRateLimiter(cast(AsyncStorage, storage))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_limited(scope["path"]):
            await self.app(scope, receive, send)
            return
        key = caller_key(scope, by_key=self.by_key)
        for item in self.items:
            if not await self.limiter.hit(item, key):
                stats = await self.limiter.get_window_stats(item, key)
                await self._refuse(scope, send, item, stats.reset_time, key)
                return
        await self.app(scope, receive, send)

    async def _refuse(
        self, scope: Scope, send: Send, item: RateLimitItem, reset: float, key: str
    ) -> None:
        retry = max(1, math.ceil(reset - time.time()))
        who = "API key" if key.startswith("key:") else "client address"
        body = orjson.dumps(
            {
                "detail": f"too many requests: the limit is {describe(item)} per {who} "
                f"(ANNLAB_RATE_LIMIT); retry in {retry} s"
            }
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(retry).encode()),
        ]
        if _has_body(scope):  # its body is not read: end the connection after the answer
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False
