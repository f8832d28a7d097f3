"""`MetricsMiddleware`: every HTTP request counted and timed by method, route template
and status, and the predict routes' latency."""

from __future__ import annotations

import time
from typing import Any

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.metrics.registry import AppMetrics

UNMATCHED = "unmatched"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Route templates whose successful answers are predictions.
PREDICT_SUFFIXES = ("/predict", "/invocations")


class MetricsMiddleware:
    """Counts and times every HTTP request by route template and status (pure ASGI: no
    body buffering, streaming responses untouched); times the predict routes' 200s."""

    def __init__(self, app: ASGIApp, *, metrics: AppMetrics, routes: Any = None) -> None:
        """``routes``: the app's top-level route list (``app.router.routes``), where a
        plain Starlette ``Route`` is looked up by its endpoint: FastAPI's router does
        not put such a route in ``scope["route"]`` (only its own ``APIRoute``s)."""
        self.app = app
        self.metrics = metrics
        self.routes = routes if routes is not None else []
        self.by_endpoint: dict[Any, Any] = {}
        self.children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # an exception that escapes the app becomes a 500 outside it
        root_path = scope.get("root_path", "")

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - start
            if "route" not in scope and "endpoint" in scope:
                scope["route"] = self._route_of(scope["endpoint"])
            route = route_template(scope, root_path)
            method = scope.get("method", "GET")
            if method not in HTTP_METHODS:  # client-chosen: keep the label set bounded
                method = "other"
            children = self.children.get((method, route, status))
            if children is None:  # labels() takes a lock and builds a key: once per label set
                children = (
                    self.metrics.http_requests.labels(method, route, str(status)),
                    self.metrics.http_duration.labels(method, route),
                )
                self.children[(method, route, status)] = children
            children[0].inc()
            children[1].observe(elapsed)
            if status == 200 and method == "POST" and route.endswith(PREDICT_SUFFIXES):
                self.metrics.observe_predict(elapsed)

    def _route_of(self, endpoint: Any) -> Any:
        route = self.by_endpoint.get(endpoint)
        if route is None:  # routes are added after the middleware: look again
            self.by_endpoint = {
                getattr(r, "endpoint", None): r for r in self.routes if hasattr(r, "endpoint")
            }
            route = self.by_endpoint.get(endpoint)
        return route


def route_template(scope: Scope, root_path: str = "") -> str:
    """The path template of the route that answered (``/api/v1/runs/{run_id}``), with
    the prefixes of any mounts and included routers on the way; ``unmatched`` when no
    route matched.

    ``scope["route"]`` is the route that answered. FastAPI versions differ in whether
    a route of an included router carries its full path or only its own part
    (``/runs/{run_id}``); in the second case the router's prefix is the part of the
    request path before the route's own pattern matches, found here by trying each
    ``/`` in turn (a few regex matches, no route table walk)."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str):
        return UNMATCHED
    inner_root = scope.get("root_path", "")
    mounts = inner_root[len(root_path) :] if inner_root.startswith(root_path) else ""
    if isinstance(route, Mount):  # the mount's own prefix is in root_path already
        return mounts + "/{path}"
    regex = getattr(route, "path_regex", None)
    path: str = scope.get("path", "")
    relative = path[len(inner_root) :] if path.startswith(inner_root) else path
    if regex is None or regex.match(relative):
        return mounts + template
    for index, char in enumerate(relative):
        if char == "/" and index and regex.match(relative[index:]):
            return mounts + relative[:index] + template
    return mounts + template
