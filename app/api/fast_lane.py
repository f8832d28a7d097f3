"""The fast lane of the hot routes (a run's predict, MLflow's ``/invocations``).

FastAPI's generic handler solves the route's dependencies and validates its
parameters on every request; for a warm 1-row prediction that is a third of the
route's time (``docs/performance.md``). A ``FastLaneRoute`` answers the requests
whose parameters need no validation with the endpoint called directly, and leaves
every other request to FastAPI's handler (its 422s, its OpenAPI document).

The fast handler runs the guards the API's routes get, in the same order: the
caller (``get_current_user``: the local admin with auth off, else the bearer key or
a 401, from the headers before the body is read; all that the router-wide
``require_user`` does besides documenting the scheme), then the route's own body
checks (``check_body``), then the endpoint, called as
``endpoint(request=..., user=..., **fast_arguments(request))``. Errors raised on the
way are the app's exceptions, answered by the same handlers as on FastAPI's path.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from app.deps import get_current_user


class FastLaneRoute(APIRoute):
    """A route whose endpoint takes ``request`` and ``user`` and reads its body itself.

    Subclasses say which requests take the lane (``fast_arguments``: the endpoint's
    other arguments, or None for FastAPI's handler) and what to check of the body
    before the endpoint runs (``check_body``). Put it before ``GuardedRoute`` in the
    bases to keep that route's guards on FastAPI's path too."""

    def fast_arguments(self, request: Request) -> dict[str, Any] | None:
        """The endpoint's arguments besides ``request`` and ``user`` when they need no
        validation, else None (FastAPI's handler answers, with its 422)."""
        raise NotImplementedError

    async def check_body(self, request: Request) -> None:
        """Checks of the body after the caller's and before the endpoint (none here)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        documented = super().get_route_handler()
        endpoint = self.endpoint
        fast_arguments = self.fast_arguments
        check_body = self.check_body

        async def fast(request: Request) -> Response:
            arguments = fast_arguments(request)
            if arguments is None:
                return await documented(request)
            user = await get_current_user(request)  # from the headers: before the body
            await check_body(request)
            response: Response = await endpoint(request=request, user=user, **arguments)
            return response

        return fast
