"""`RunsCollector`: the gauges read from the database at each scrape, and the run
events fed from it into `AppMetrics`' counters (the workers that train runs cannot
reach this process' registry)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, or_, select

from app.db.tables import RunRow
from core.stopping import TERMINAL_STATUSES, RunStatus

if TYPE_CHECKING:
    from app.metrics.registry import AppMetrics

#: How far back each scrape looks again for runs it may not have seen: a row whose
#: timestamp was taken before a commit that lands after the previous scrape.
LOOKBACK = timedelta(seconds=120)

SessionFactory = Callable[[], Any]


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
            queued_since = _aware(oldest) if status == RunStatus.QUEUED else None
            if queued_since is not None:
                oldest_queued = (
                    queued_since if oldest_queued is None else min(oldest_queued, queued_since)
                )
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
    """SQLite hands back naive datetimes (they were stored as UTC): make them comparable."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
