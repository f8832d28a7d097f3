"""The application factory: ``create_app(settings)``."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]  # no stubs, no py.typed

from app import offload
from app.api.docs import HeadAsGetMiddleware, install_docs
from app.api.main import include_api
from app.config import Settings
from app.db.engine import make_engine, make_session_factory, transaction
from app.db.migrate import upgrade_to_head
from app.db.users import ensure_local_user
from app.http import UPLOAD_FORM_BYTES, BodyLimitMiddleware, install_error_handlers
from app.jobs.registry import make_executor
from app.metrics import install_metrics
from app.rate_limit import RateLimitMiddleware
from app.run_schemas import PredictRecordsRequest
from app.schemas import PredictRequest
from app.services.plot_pool import PlotRenderer
from app.services.registry import Resolutions
from app.services.runs import InFlightKeys
from app.services.serving import ModelCache
from app.web.routes import mount_web
from app.web_security import install_web_security
from core.blas_threads import set_process_threads

log = logging.getLogger("annlab")

DESCRIPTION = """\
Train small neural networks (dense layers, NumPy) on built-in or uploaded datasets,
follow them live, and serve their predictions.

Errors are `{"detail": ...}` with the status saying what kind: 400 malformed,
401 no valid API key (only when the server runs with `ANNLAB_AUTH=on`), 403 a
built-in dataset cannot be deleted, 404 unknown id (also another user's data),
409 wrong state, 413 body too large, 422 invalid values or over a limit (the
message names the `ANNLAB_` setting that raises it), 429 too many queued runs or
too many requests (`ANNLAB_RATE_LIMIT`; `Retry-After` says when to retry),
503 not ready.

With `ANNLAB_AUTH=on` every `/api/v1` call needs `Authorization: Bearer KEY`
(a key from `annlab users create NAME`). Datasets and runs belong to the user
who created them: other users get 404 for them and do not see them in lists;
admins see and manage everything; the built-in datasets are everyone's.
"""


BEARER_HELP = (
    "An API key from `annlab users create NAME`, sent as `Authorization: Bearer KEY` "
    "(needed only when the server runs with `ANNLAB_AUTH=on`)."
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(_start, app, settings)
        try:
            yield
        finally:
            await run_in_threadpool(_stop, app)

    app = FastAPI(
        title="annlab",
        version="0.1.0",
        summary="A self-hosted REST service that trains small neural networks with NumPy.",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # install_docs: the same pages with their scripts served by annlab
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.in_flight = InFlightKeys()
    app.state.resolutions = Resolutions()  # model name → version → run, warm
    app.state.plot_renderer = PlotRenderer(  # its pool starts with the first plot
        kind=settings.plot_executor,
        max_workers=settings.plot_workers,
        max_pending=max(settings.plot_queue, settings.plot_workers),
    )
    app.add_middleware(
        BodyLimitMiddleware,
        limit=settings.max_body_bytes,
        upload_limit=settings.max_dataset_bytes + UPLOAD_FORM_BYTES,
    )
    app.add_middleware(HeadAsGetMiddleware)
    if settings.rate_limit:  # before the body limit, the key lookup and the routes
        app.add_middleware(
            RateLimitMiddleware,
            rates=settings.rate_limit,
            storage_uri=settings.rate_limit_storage,
            by_key=settings.auth,  # with auth off a header proves nothing: by address
        )
    if settings.metrics:
        install_metrics(app)  # GET /metrics and the HTTP middleware (outermost)
    install_error_handlers(app)
    include_api(app, auth=settings.auth)
    install_docs(app)
    _finish_openapi(app)
    mount_web(app)  # the dashboard (app/web): pages, /static, /vendor
    install_web_security(app, settings)  # CORS, CSP, nosniff (outermost: every response)
    return app


def _finish_openapi(app: FastAPI) -> None:
    """Corrections to FastAPI's document, applied once when it is built.

    Routes that parse their body themselves (predict: orjson and NumPy) declare it
    with ``openapi_extra`` as a ``$ref``; the schemas it names are added here. And
    FastAPI lists every ``Enum`` it meets in an annotation as a schema, even where the
    field documents its values inline (``app.schemas.RunStatusField``): schemas that
    nothing refers to are dropped."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for model in (PredictRequest, PredictRecordsRequest):
                schemas.setdefault(
                    model.__name__,
                    model.model_json_schema(ref_template="#/components/schemas/{model}"),
                )
            _drop_unreferenced(document, schemas)
            # Always declared, so /docs has its Authorize button; with auth on the
            # routes also require it (``require_user``).
            document["components"].setdefault("securitySchemes", {}).setdefault(
                "HTTPBearer", {"type": "http", "scheme": "bearer", "description": BEARER_HELP}
            )
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


_REF = "#/components/schemas/"


def _drop_unreferenced(document: dict[str, Any], schemas: dict[str, Any]) -> None:
    def refs(value: Any) -> set[str]:
        text = json.dumps(value)
        return {part.split('"', 1)[0] for part in text.split(_REF)[1:]}

    reachable = refs({key: item for key, item in document.items() if key != "components"})
    todo = list(reachable)
    while todo:
        for name in refs(schemas.get(todo.pop(), {})) - reachable:
            reachable.add(name)
            todo.append(name)
    for name in set(schemas) - reachable:
        del schemas[name]


def _start(app: FastAPI, settings: Settings) -> None:
    # The API process's NumPy work (predict, decision grids, backprop) is many small
    # GEMMs from concurrent requests: OpenBLAS threads only add hand-over cost there
    # (a 400 × 400 grid of a 64-64 network: 1.6 s on 2 threads, 0.5 s on 1, measured
    # on this 2-core machine). Training threads are set per run in the workers.
    # A plain threadpool_limits would keep this thread in control of OpenBLAS's pool and
    # silently ignore the training.threads of runs trained in other threads (the thread
    # executor): core.blas_threads sets the count and lets go.
    set_process_threads(ThreadpoolController(), 1)
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    upgrade_to_head(engine)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        ensure_local_user(session=session)
    app.state.engine = engine
    app.state.session_factory = factory
    app.state.model_cache = ModelCache(settings.predict_cache_size)
    executor = make_executor(settings, factory)
    executor.start()
    app.state.executor = executor


def _stop(app: FastAPI) -> None:
    app.state.plot_renderer.shutdown()
    offload.shutdown()
    executor = getattr(app.state, "executor", None)
    if executor is not None:
        executor.shutdown(graceful=True)
    engine = getattr(app.state, "engine", None)
    if engine is not None:
        engine.dispose()
