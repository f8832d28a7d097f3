"""Query strings that reject what they do not know.

FastAPI ignores a query parameter no route declares, so ``?sort_by=`` or
``?stauts=running`` silently lists everything. ``StrictQuery`` (a route or router
dependency) answers such a request with FastAPI's 422 shape, naming the unknown
parameter and listing the known ones: the route's own query parameters, read
from the route itself, so the list never goes stale.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

_known_by_route: dict[int, frozenset[str]] = {}


def known_query_parameters(route: APIRoute) -> frozenset[str]:
    """The query parameter names (aliases) ``route`` and its dependencies declare."""
    known = _known_by_route.get(id(route))
    if known is None:
        known = frozenset(_query_names(route.dependant))
        _known_by_route[id(route)] = known
    return known


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def unknown_parameter_error(name: str, known: frozenset[str] | list[str]) -> RequestValidationError:
    listed = ", ".join(sorted(known)) or "none"
    return RequestValidationError(
        [
            {
                "type": "extra_forbidden",
                "loc": ("query", name),
                "msg": f"unknown query parameter {name!r}; this route knows: {listed}",
                "input": None,
            }
        ]
    )


async def reject_unknown_query(request: Request) -> None:
    """422 for a query parameter the matched route does not declare."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    known = known_query_parameters(route)
    for name in request.query_params:
        if name not in known:
            raise unknown_parameter_error(name, known)


def choice_error(name: str, value: Any, choices: list[str]) -> RequestValidationError:
    """FastAPI's 422 shape for a query value outside ``choices`` (listed)."""
    return RequestValidationError(
        [
            {
                "type": "enum",
                "loc": ("query", name),
                "msg": f"unknown {name} {value!r}; known: {', '.join(choices)}",
                "input": value,
            }
        ]
    )


#: ``dependencies=[StrictQuery]`` on a route (or router): unknown query parameters → 422.
StrictQuery = Depends(reject_unknown_query)
