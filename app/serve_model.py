"""``annlab models serve NAME@ALIAS|NAME/VERSION``: one registry model served at the
root with MLflow's scoring protocol, like ``mlflow models serve -m models:/name@alias``.

The app reads the same database as ``annlab serve`` (same settings), trains nothing
and writes nothing. It does not see the main server's alias moves as they happen,
so it looks up where the alias points again after ``ALIAS_REFRESH_SECONDS``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import typer
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from app.config import Settings
from app.db.engine import make_engine, make_session_factory
from app.db.migrate import is_at_head
from app.http import BodyLimitMiddleware, install_error_handlers
from app.services.registry import Resolutions
from app.services.serving import ModelCache

#: How stale an alias's target may be in a ``models serve`` process.
ALIAS_REFRESH_SECONDS = 1.0


def create_serving_app(settings: Settings, name: str, reference: str) -> FastAPI:
    """An app with ``/ping``, ``/health``, ``/version``, ``/invocations`` for one model."""
    from app.api.fast_lane import include_hot
    from app.api.mlflow_serve import serve_one_router

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.resolved_database_url)
        if not await run_in_threadpool(is_at_head, engine):
            raise RuntimeError(
                "the database is not at the latest migration: run `annlab serve` once"
            )
        app.state.engine = engine
        app.state.session_factory = make_session_factory(engine)
        try:
            yield
        finally:
            engine.dispose()

    app = FastAPI(title=f"annlab: {name}/{reference}", lifespan=lifespan)
    app.state.settings = settings
    app.state.model_cache = ModelCache(settings.predict_cache_size)
    app.state.resolutions = Resolutions(
        ttl_seconds=None if reference.isdigit() else ALIAS_REFRESH_SECONDS
    )
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    install_error_handlers(app)
    include_hot(app, serve_one_router(name, reference))  # /invocations' lane first
    return app


def serve_model(
    model: Annotated[str, typer.Argument(help="NAME@ALIAS or NAME/VERSION.", metavar="MODEL")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 5001,
) -> None:
    """Serve one model with MLflow's scoring protocol at the root (/invocations, /ping)."""
    import uvicorn

    from app.cli_input import parse_model_ref

    name, version, alias = parse_model_ref(model)
    reference = str(version) if version is not None else str(alias)
    settings = Settings()
    typer.echo(f"annlab serving {model} on http://{host}:{port}/invocations")
    uvicorn.run(
        create_serving_app(settings, name, reference),
        host=host,
        port=port,
        timeout_graceful_shutdown=3,
        log_level="warning",
    )
