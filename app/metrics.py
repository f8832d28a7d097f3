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
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, or_, select
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db.tables import RunRow
from core.stopping import TERMINAL_STATUSES, RunStatus

#: Training takes seconds to hours: buckets up to a day.
RUN_SECONDS_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400)
QUEUE_SECONDS_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600)
PREDICT_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
HTTP_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
UNMATCHED = "unmatched"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: How far back each scrape looks again for runs it may not have seen: a row whose
#: timestamp was taken before a commit that lands after the previous scrape.
LOOKBACK = timedelta(seconds=120)
#: Route templates whose successful answers are predictions.
PREDICT_SUFFIXES = ("/predict", "/invocations")

SessionFactory = Callable[[], Any]


class AppMetrics:
    """The metrics of one app; stored as ``app.state.metrics``."""

    def __init__(
        self,
        *,
        session_factory: Callable[[], SessionFactory | None] | None = None,
        worker_ids: Callable[[], list[str] | None] | None = None,
        feed_from_database: bool = True,
        process_metrics: bool = True,
    ) -> None:
        """``session_factory`` and ``worker_ids`` are getters, called at scrape time:
        the app's session factory and executor exist only once its lifespan started
        (a getter answering None leaves those metrics out of that scrape)."""
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # First: a scrape collects in registration order, and this collector feeds the
        # run events into the counters below, which must come after it to show them.
        self.collector = RunsCollector(
            self,
            session_factory=session_factory or (lambda: None),
            worker_ids=worker_ids or (lambda: None),
            feed=feed_from_database,
        )
        r.register(self.collector)
        self.runs_submitted = Counter(
            "annlab_runs_submitted", "Runs submitted (queued).", registry=r
        )
        self.runs_finished = Counter(
            "annlab_runs_finished",
            "Runs that reached a terminal status.",
            ["status"],
            registry=r,
        )
        self.run_duration = Histogram(
            "annlab_run_duration_seconds",
            "Wall-clock time from a run's start to its end.",
            buckets=RUN_SECONDS_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "annlab_run_queue_wait_seconds",
            "Time a run waited in the queue before it started.",
            buckets=QUEUE_SECONDS_BUCKETS,
            registry=r,
        )
        self.epochs_trained = Counter(
            "annlab_epochs_trained", "Epochs trained by finished runs.", registry=r
        )
        self.predict_latency = Histogram(
            "annlab_predict_latency_seconds",
            "Time to answer a successful prediction request.",
            buckets=PREDICT_SECONDS_BUCKETS,
            registry=r,
        )
        self.http_requests = Counter(
            "annlab_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "annlab_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method", "route"],
            buckets=HTTP_SECONDS_BUCKETS,
            registry=r,
        )
        if process_metrics:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)

    # What the services call (or the collector, fed from the database).
    def observe_run_submitted(self, count: int = 1) -> None:
        self.runs_submitted.inc(count)

    def observe_run_started(self, queue_wait_s: float) -> None:
        self.queue_wait.observe(max(0.0, queue_wait_s))

    def observe_run_finished(
        self, duration_s: float | None, epochs: int, status: str = "succeeded"
    ) -> None:
        if duration_s is not None:
            self.run_duration.observe(max(0.0, duration_s))
        self.epochs_trained.inc(max(0, epochs))
        self.runs_finished.labels(status=status).inc()

    def observe_predict(self, seconds: float) -> None:
        self.predict_latency.observe(max(0.0, seconds))

    def render(self) -> bytes:
        """The text exposition (runs the collector's queries)."""
        return generate_latest(self.registry)


class RunsCollector(Collector):
    """Gauges computed from the database at each scrape, and the run events fed from it."""

    def __init__(
        self,
        metrics: AppMetrics,
        *,
        session_factory: Callable[[], SessionFactory | None],
        worker_ids: Callable[[], list[str] | None],
        feed: bool,
    ) -> None:
        self.metrics = metrics
        self.session_factory = session_factory
        self.worker_ids = worker_ids
        self.feed = feed
        self.born = self.since = datetime.now(UTC)  # runs before the app are not events
        self.window = self.since
        self.seen: dict[tuple[str, str], datetime] = {}  # (event, run id) → its time
        self.lock = threading.Lock()

    def describe(self) -> Iterator[Metric]:
        return iter(())  # computed per scrape; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        factory = self.session_factory()
        if factory is None:
            return
        with factory() as session:
            if self.feed:
                self._feed(session)
            rows = session.execute(
                select(
                    RunRow.status, RunRow.claimed_by, func.count(), func.min(RunRow.created_at)
                ).group_by(RunRow.status, RunRow.claimed_by)
            ).all()
        by_status = {status.value: 0 for status in RunStatus}
        oldest_queued: datetime | None = None
        busy_by: dict[str, int] = {}
        for status, claimed_by, count, oldest in rows:
            by_status[status] = by_status.get(status, 0) + count
            if status == RunStatus.QUEUED and oldest is not None:
                oldest = _aware(oldest)
                oldest_queued = oldest if oldest_queued is None else min(oldest_queued, oldest)
            if status == RunStatus.RUNNING and claimed_by:
                busy_by[claimed_by] = busy_by.get(claimed_by, 0) + count

        runs = GaugeMetricFamily(
            "annlab_runs", "Runs in the database by status.", labels=["status"]
        )
        for status, count in sorted(by_status.items()):
            runs.add_metric([status], count)
        yield runs
        yield GaugeMetricFamily(
            "annlab_queue_depth",
            "Runs queued, waiting for a worker.",
            value=by_status[RunStatus.QUEUED],
        )
        yield GaugeMetricFamily(
            "annlab_runs_running", "Runs being trained now.", value=by_status[RunStatus.RUNNING]
        )
        age = 0.0 if oldest_queued is None else (datetime.now(UTC) - oldest_queued).total_seconds()
        yield GaugeMetricFamily(
            "annlab_queue_oldest_age_seconds",
            "How long the oldest queued run has waited (0: none queued).",
            value=max(0.0, age),
        )
        workers = self.worker_ids()
        if workers is not None:
            busy = sum(1 for w in workers if busy_by.get(w))
            yield GaugeMetricFamily(
                "annlab_workers_busy", "This server's workers training a run.", value=busy
            )
            yield GaugeMetricFamily(
                "annlab_workers_idle",
                "This server's workers waiting for a run.",
                value=len(workers) - busy,
            )

    def _feed(self, session: Any) -> None:
        """Observe each run created, started or finished since the last scrape, once."""
        with self.lock:
            now = datetime.now(UTC)
            since = self.window = self.since - LOOKBACK
            rows = session.execute(
                select(
                    RunRow.id,
                    RunRow.status,
                    RunRow.created_at,
                    RunRow.started_at,
                    RunRow.finished_at,
                    RunRow.epoch,
                ).where(
                    or_(
                        RunRow.created_at >= since,
                        RunRow.started_at >= since,
                        RunRow.finished_at >= since,
                    )
                )
            ).all()
            m = self.metrics
            for run_id, status, created, started, finished, epoch in rows:
                created, started, finished = _aware(created), _aware(started), _aware(finished)
                if created is not None and self._first("created", run_id, created):
                    m.observe_run_submitted()
                if (
                    started is not None
                    and created is not None
                    and self._first("started", run_id, started)
                ):
                    m.observe_run_started((started - created).total_seconds())
                if (
                    finished is not None
                    and status in TERMINAL_STATUSES
                    and self._first("finished", run_id, finished)
                ):
                    duration = (finished - started).total_seconds() if started else None
                    m.observe_run_finished(duration, int(epoch or 0), status)
            self.since = now
            cutoff = now - 2 * LOOKBACK
            self.seen = {k: t for k, t in self.seen.items() if t >= cutoff}

    def _first(self, event: str, run_id: str, at: datetime) -> bool:
        """True the first time an event is seen, and only if it happened after the app
        started (earlier ones belong to another life of the counters)."""
        if at < self.window or (event, run_id) in self.seen:
            return False  # older: a previous scrape's window held it
        self.seen[(event, run_id)] = at
        return at >= self.born


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


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
