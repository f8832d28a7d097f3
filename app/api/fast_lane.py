"""The fast lane of the hot routes (a run's predict, MLflow's ``/invocations``).

FastAPI's generic handler solves the route's dependencies and validates its
parameters on every request, and FastAPI (0.165) matches a route of an included
router through a wrapper per router on the way; for a warm 1-row prediction that
was over a third of the route's time (``docs/performance.md``). So each hot route
is two routes:

- its ``FastLaneRoute`` (an ``APIRoute``), included like every other route: it
  documents the route (OpenAPI) and answers what the lane leaves (FastAPI's 422s,
  405s);
- its ``FastLane`` (a plain Starlette ``Route``, not in OpenAPI), at the head of the
  app's routes (``app.api.main``): it takes the requests whose parameters need no
  validation and calls the endpoint directly.

The lane runs the guards the API's routes get, in the same order:
the caller (``get_current_user``: the local admin with auth off, else the bearer key
or a 401, from the headers before the body is read; all that the router-wide
``require_user`` does besides documenting the scheme), then the route's own body
checks (``check_body``), then the endpoint, called as
``endpoint(request=..., user=..., **fast_arguments(request))``. Errors raised on the
way are the app's exceptions, answered by the same handlers as on FastAPI's path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.routing import APIRoute
from starlette.routing import Match, Route
from starlette.types import Scope

from app.deps import get_current_user

#: Where a lane's match leaves the endpoint's arguments for its handler.
ARGUMENTS_KEY = "annlab.fast_arguments"


class FastLaneRoute(APIRoute):
    """A route whose endpoint takes ``request`` and ``user`` and reads its body itself.

    Subclasses say which requests take the lane (``fast_arguments``: the endpoint's
    other arguments, or None for FastAPI's handler) and what to check of the body
    before the endpoint runs (``check_body``). Put it before ``GuardedRoute`` in the
    bases to keep that route's guards on FastAPI's path (what the lane leaves)."""

    def fast_arguments(self, request: Request) -> dict[str, Any] | None:
        """The endpoint's arguments besides ``request`` and ``user`` when they need no
        validation, else None (FastAPI's handler answers, with its 422)."""
        raise NotImplementedError

    async def check_body(self, request: Request) -> None:
        """Checks of the body after the caller's and before the endpoint (none here)."""

    async def answer(self, request: Request, arguments: dict[str, Any]) -> Response:
        """The lane's answer: the caller, the body checks, the endpoint."""
        user = await get_current_user(request)  # from the headers: before the body
        await self.check_body(request)
        response: Response = await self.endpoint(request=request, user=user, **arguments)
        return response


class FastLane(Route):
    """A ``FastLaneRoute``'s lane: its full path and method, matched only by the
    requests its ``fast_arguments`` accepts (any other request, a wrong method
    included, goes on to the documented route)."""

    def __init__(self, path: str, documented: FastLaneRoute) -> None:
        self.documented = documented

        async def lane(request: Request) -> Response:
            return await documented.answer(request, request.scope[ARGUMENTS_KEY])

        super().__init__(
            path,
            lane,
            methods=list(documented.methods or ()),
            name=f"{documented.name}_lane",
            include_in_schema=False,
        )

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.FULL:
            return Match.NONE, {}
        arguments = self.documented.fast_arguments(Request({**scope, **child_scope}))
        if arguments is None:
            return Match.NONE, {}
        child_scope[ARGUMENTS_KEY] = arguments
        child_scope["route"] = self  # the template of the metrics' labels
        return match, child_scope


def fast_lanes(router: APIRouter, prefix: str = "") -> Iterator[FastLane]:
    """The lanes of a router's ``FastLaneRoute``s, for an ``include_router(router,
    prefix=prefix)`` of the same router."""
    for route in router.routes:
        if isinstance(route, FastLaneRoute):
            yield FastLane(prefix + route.path, route)


def include_hot(app: FastAPI, router: APIRouter, prefix: str = "", **include: Any) -> None:
    """Include a router of hot routes: their lanes first, then the router itself (its
    documented routes answer what the lanes leave)."""
    app.router.routes.extend(fast_lanes(router, prefix))
    app.include_router(router, prefix=prefix, **include)
