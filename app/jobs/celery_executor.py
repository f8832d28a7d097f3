"""``ANNLAB_EXECUTOR=celery`` in the server: store runs, send them to the broker.

The server trains nothing. ``notify`` wakes a dispatcher thread, which sends a
task for every queued run not sent since it was queued (``runs.dispatched_at``
null) and records the sending; the API never waits for the broker. The same
thread sweeps, so that nothing is lost whatever dies:

- a killed server: runs committed but not sent have no dispatch; sent at the
  next start;
- a broker that lost its messages (Redis keeps nothing on disk here): when the
  broker holds fewer messages than there are sent, queued runs, those sent more
  than ANNLAB_REDISPATCH_SECONDS ago are sent again (a duplicate is a no-op);
- a dead worker: its run is requeued (attempt counted) once its lease
  (ANNLAB_LEASE_SECONDS) runs out, or at once if its process on this host is
  gone (``app.jobs.recovery``), then sent again.
"""

from __future__ import annotations

import logging
import threading
import time

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import dispatch
from app.db.engine import transaction
from app.jobs.base import SHUTDOWN_SECONDS, Executor
from app.jobs.celery_app import check_settings, make_celery, send_slice
from app.jobs.recovery import recover_orphans

log = logging.getLogger("annlab.dispatch")

#: Seconds between two sweeps when nothing wakes the dispatcher.
SWEEP_SECONDS = 1.0
#: Seconds between two looks for runs whose worker is gone.
RECOVER_SECONDS = 2.0


class CeleryExecutor(Executor):
    """Runs go to ``settings.broker_url``; ``annlab worker`` processes train them."""

    def __init__(self, *, settings: Settings, factory: sessionmaker[Session]) -> None:
        check_settings(settings)
        self.settings = settings
        self.factory = factory
        self.app: Celery = make_celery(settings)
        self.wake = threading.Event()
        self.closing = threading.Event()
        self.thread: threading.Thread | None = None
        self.last_recover = 0.0

    def start(self) -> None:
        recover_orphans(self.factory, stale_seconds=self.settings.lease_seconds)
        self.thread = threading.Thread(target=self._loop, name="annlab-dispatch", daemon=True)
        self.thread.start()

    def notify(self, run_id: str) -> None:
        self.wake.set()

    def shutdown(self, *, graceful: bool = True, timeout: float = SHUTDOWN_SECONDS) -> None:
        """Workers elsewhere keep training; runs not sent yet are sent by the next start."""
        self.closing.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout)
        self.app.close()

    # -- the dispatcher thread

    def _loop(self) -> None:
        while not self.closing.is_set():
            self.wake.clear()
            try:
                self.sweep()
            except Exception:
                log.exception("dispatch sweep failed; retrying")
            self.wake.wait(SWEEP_SECONDS)

    def sweep(self) -> list[str]:
        """One round: requeue runs of dead workers, send what must be sent; the ids sent."""
        now = time.monotonic()
        if now - self.last_recover >= RECOVER_SECONDS:
            self.last_recover = now
            recover_orphans(self.factory, stale_seconds=self.settings.lease_seconds, at_start=False)
        cutoff = dispatch.stale_before(self.settings.redispatch_seconds)
        limit = self.settings.resolved_max_running_runs_per_user
        with self.factory() as session:
            never = dispatch.to_dispatch(
                session=session, sent_before=None, max_running_per_user=limit
            )
            unsent = set(never)
            stale = [
                run_id
                for run_id in dispatch.to_dispatch(
                    session=session, sent_before=cutoff, max_running_per_user=limit
                )
                if run_id not in unsent
            ]
            if stale and not self._broker_lost_some(session):
                stale = []  # still waiting in the broker: the workers are just busy
        run_ids = never + stale
        sent: list[str] = []
        for run_id in run_ids:
            if self.closing.is_set():
                break
            try:
                send_slice(self.app, self.settings.celery_queue, run_id, limit)
            except Exception:
                log.exception("could not send run %s to the broker; will retry", run_id)
                break
            sent.append(run_id)
        if sent:
            with transaction(self.factory) as session:
                dispatch.mark_dispatched(session=session, run_ids=sent)
            log.info("sent %d run(s) to the broker", len(sent))
        return sent

    def _broker_lost_some(self, session: Session) -> bool:
        """Fewer messages wait in the broker than runs were sent and are still queued:
        some were lost (a broker restart) or are held by a dead worker."""
        expected = dispatch.count_dispatched_queued(session=session)
        if expected == 0:
            return False
        try:
            with self.app.connection_for_write() as connection:
                declared = connection.default_channel.queue_declare(
                    queue=self.settings.celery_queue, passive=True
                )
                waiting = int(declared.message_count)
        except Exception:  # Redis: an empty queue does not exist; or the broker is away
            return True
        return waiting < expected
