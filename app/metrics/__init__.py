"""Prometheus metrics (API.md "Metrics for monitoring"): ``GET /metrics``.

Each app gets its own ``CollectorRegistry`` (never the process-wide default), so
tests that build several apps in one process do not clash over metric names.

Where the numbers come from:

- **the database, at scrape time** (``RunsCollector``): runs by status, queue depth,
  running runs, the age of the oldest queued run, and workers busy/idle (this
  server's workers that hold a running run). One ``GROUP BY status, claimed_by``
  query per scrape: the truth, whichever process or host trains the runs.
- **events** — ``AppMetrics.observe_run_submitted()``, ``observe_run_started(wait_s)``,
  ``observe_run_finished(duration_s, epochs, status)``, ``observe_predict(seconds)``.
  Runs are trained in worker processes (or on other hosts) that cannot reach this
  registry, so by default (``feed_from_database=True``) the collector itself makes
  the run observations: each scrape reads the runs created, started or finished
  since the previous scrape (one more query, on the indexed timestamps) and feeds
  each one once. Code that does so must not call the run observers as well. (Every
  API server on one database counts every run: aggregate over one of them.)
  Prediction latency is observed by ``MetricsMiddleware`` for the predict routes.
- **HTTP**: ``MetricsMiddleware`` (pure ASGI) counts requests by method, route
  *template* (``/api/v1/runs/{run_id}``, never the raw path, so the label set stays
  bounded) and status; paths that match no route share the label ``unmatched``.
- **the process**: CPU, memory, open files, GC (prometheus-client's collectors).

Modules: ``registry`` (`AppMetrics`), ``collector`` (`RunsCollector`), ``middleware``
(`MetricsMiddleware`, `route_template`); `install_metrics` here wires them into an app.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.metrics.collector import RunsCollector, SessionFactory
from app.metrics.middleware import MetricsMiddleware, route_template
from app.metrics.registry import AppMetrics


def install_metrics(app: FastAPI) -> AppMetrics:
    """``/metrics``, the middleware and ``app.state.metrics`` (call from ``create_app``)."""

    def session_factory() -> SessionFactory | None:
        return getattr(app.state, "session_factory", None)

    def worker_ids() -> list[str] | None:
        return executor_worker_ids(getattr(app.state, "executor", None))

    metrics = AppMetrics(session_factory=session_factory, worker_ids=worker_ids)
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=app.router.routes)

    @app.get(
        "/metrics",
        tags=["health"],
        summary="Prometheus metrics (text exposition format)",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    )
    def prometheus_metrics(request: Request) -> Response:
        # A plain def: FastAPI runs it in a thread, so the scrape's queries never block
        # the event loop.
        return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return metrics


def executor_worker_ids(executor: Any) -> list[str] | None:
    """The ids of the local executor's workers (as ``runs.claimed_by`` holds them), or
    None for an executor without local workers (``NoExecutor``, a remote one)."""
    if executor is None:
        return None
    slots = getattr(executor, "slots", None)
    if slots is not None:
        return [slot.worker_id for slot in list(slots)]
    ids = getattr(executor, "worker_ids", None)
    return list(ids) if ids is not None else None


__all__ = [
    "AppMetrics",
    "MetricsMiddleware",
    "RunsCollector",
    "executor_worker_ids",
    "install_metrics",
    "route_template",
]
