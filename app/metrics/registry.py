"""`AppMetrics`: one app's ``CollectorRegistry``, its counters and histograms, and the
observers the services (or the database feed) call."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from app.metrics.collector import RunsCollector, SessionFactory

#: Training takes seconds to hours: buckets up to a day.
RUN_SECONDS_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400)
QUEUE_SECONDS_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600)
PREDICT_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
HTTP_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


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
