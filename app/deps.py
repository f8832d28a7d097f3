"""The dependencies routes declare, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.config import Settings
from app.db import runs as run_store
from app.db.engine import write_session
from app.db.tables import RunRow
from app.errors import NotFound, Unauthorized
from app.jobs.base import Executor
from app.services.auth import LOCAL_ADMIN, Caller, authenticate
from app.services.runs import InFlightKeys
from app.services.serving import ModelCache


async def get_settings(request: Request) -> Settings:
    """The app's settings (``create_app``'s). Not a ``dependency_overrides`` entry: with
    any override FastAPI rebuilds every dependency's signature on every request."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(request: Request) -> Iterator[Session]:
    """The route's session, closed (what is left of its transaction rolled back) when
    the route function returns, before the response is sent (``scope="function"``):
    no transaction (SQLite: the write lock) outlives the route. It never commits:
    the service functions that write do (``app.services``), so a 2xx always
    follows their commit.

    A GET's (HEAD's) session only reads: on SQLite a deferred ``BEGIN``, which never
    takes the write lock; every other method's takes it when its transaction starts
    (``write_session``), so that concurrent writers queue instead of failing."""
    factory = request.app.state.session_factory
    reads = request.method in ("GET", "HEAD")
    with factory() if reads else write_session(factory) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


#: Only documents the scheme in OpenAPI (when auth is on); ``get_current_user`` checks.
bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An API key from `annlab users create NAME`, sent as `Authorization: Bearer KEY`.",
)


def _unauthorized(message: str, *, error: str | None = None) -> Unauthorized:
    challenge = "Bearer" if error is None else f'Bearer error="{error}"'
    return Unauthorized(message, headers={"WWW-Authenticate": challenge})


async def get_current_user(request: Request) -> Caller:
    """The caller. With auth off (the default) every request is the local admin; with
    ``ANNLAB_AUTH=on`` the ``Authorization: Bearer KEY`` of an active user, else 401.

    ``async`` so that auth off costs no thread-pool hop. With auth on the key is
    looked up once per request (no cache across requests: a revoked key is refused at
    once, even when ``annlab users revoke`` ran in another process), in a read
    session of its own in the thread pool, from the headers alone: the route class
    (``app.http.GuardedRoute``) calls this before the body is read, and the caller
    is kept on ``request.state`` for the route's dependencies."""
    settings: Settings = request.app.state.settings
    if not settings.auth:  # first: the hot routes' fast lane calls this on every request
        return LOCAL_ADMIN
    known: Caller | None = getattr(request.state, "caller", None)
    if known is not None:
        return known
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise _unauthorized("an API key is required: send the header `Authorization: Bearer KEY`")
    factory = request.app.state.session_factory

    def lookup() -> Caller | None:
        with factory() as session:
            return authenticate(session=session, key=key)

    caller = await run_in_threadpool(lookup)
    if caller is None:
        raise _unauthorized("unknown or revoked API key", error="invalid_token")
    request.state.caller = caller
    return caller


CurrentUser = Annotated[Caller, Depends(get_current_user)]


async def require_user(
    user: CurrentUser,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> None:
    """The router-wide dependency of ``/api/v1`` when auth is on (also puts the
    HTTPBearer scheme in OpenAPI); routes that need the caller declare ``CurrentUser``."""


async def get_executor(request: Request) -> Executor:
    executor: Executor = request.app.state.executor
    return executor


ExecutorDep = Annotated[Executor, Depends(get_executor)]


async def get_model_cache(request: Request) -> ModelCache:
    cache: ModelCache = request.app.state.model_cache
    return cache


ModelCacheDep = Annotated[ModelCache, Depends(get_model_cache)]


async def get_in_flight(request: Request) -> InFlightKeys:
    in_flight: InFlightKeys = request.app.state.in_flight
    return in_flight


InFlightDep = Annotated[InFlightKeys, Depends(get_in_flight)]

#: The longest run id a path accepts (longer: FastAPI's 422).
RUN_ID_MAX_LENGTH = 200

RunId = Annotated[str, Path(description="Run id.", max_length=RUN_ID_MAX_LENGTH)]


def valid_run(run_id: RunId, session: SessionDep, user: CurrentUser) -> RunRow:
    """The run, if it exists and the caller may see it; else 404."""
    row = run_store.get_run(session=session, run_id=run_id, owner_id=user.scope)
    if row is None:
        raise NotFound(f"run {run_id!r} not found")
    return row


ValidRun = Annotated[RunRow, Depends(valid_run)]
