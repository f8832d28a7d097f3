"""A worker: claims queued runs from the database and trains them with ``core``.

The same ``Worker`` runs in a worker process (``process_main``, production) or
in a thread (tests). It never speaks HTTP: everything goes through the database.
What happens to one run it trains is ``app.jobs.job``.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import runs as run_store
from app.db.engine import transaction
from app.jobs.job import (
    CANCEL_POLL_SECONDS,
    FLUSH_SECONDS,
    HEARTBEAT_SECONDS,
    STOP_FOR_CAUSE,
    Cause,
    Job,
)
from app.jobs.overhead import DatasetCache

#: What other modules and tests imported from here before ``app.jobs.job`` held them.
_Job = Job
__all__ = [
    "CANCEL_POLL_SECONDS",
    "FLUSH_SECONDS",
    "HEARTBEAT_SECONDS",
    "IDLE_POLL_SECONDS",
    "STOP_FOR_CAUSE",
    "Cause",
    "EventLike",
    "Job",
    "Worker",
    "WorkerConfig",
    "_Job",
    "new_worker_id",
]

log = logging.getLogger("annlab.worker")

#: Idle poll of the queue when no wake-up signal comes.
IDLE_POLL_SECONDS = 0.3


class EventLike(Protocol):
    """A ``threading.Event`` or a ``multiprocessing`` one."""

    def wait(self, timeout: float | None = None) -> bool: ...
    def set(self) -> None: ...
    def clear(self) -> None: ...
    def is_set(self) -> bool: ...


def new_worker_id() -> str:
    """``host:pid:token`` — the host and pid of the process that owns the worker."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker needs to know, passed to worker processes (picklable)."""

    worker_id: str
    checkpoint_seconds: float
    max_run_seconds: float
    max_running_per_user: int = 0
    #: ANNLAB_MAX_SNAPSHOT_BYTES: the byte budget of one run's snapshots.
    max_snapshot_bytes: int | None = None
    #: ANNLAB_SLICE_SECONDS: training time before a run yields to another user's (0: never).
    slice_seconds: float = 0.0
    #: Every slice ends, whoever waits (a task queue's tasks must stay short:
    #: ``app.jobs.slices``); False: only when another user's run waits.
    slice_always: bool = False

    @classmethod
    def from_settings(cls, worker_id: str, settings: Settings) -> WorkerConfig:
        return cls(
            worker_id=worker_id,
            checkpoint_seconds=settings.checkpoint_seconds,
            max_run_seconds=settings.resolved_max_run_seconds,
            max_running_per_user=settings.resolved_max_running_runs_per_user,
            max_snapshot_bytes=settings.max_snapshot_bytes,
            slice_seconds=settings.slice_seconds,
        )


class Worker:
    def __init__(
        self,
        *,
        factory: sessionmaker[Session],
        config: WorkerConfig,
        stop_requested: Callable[[], bool],
    ) -> None:
        self.factory = factory
        self.config = config
        self.worker_id = config.worker_id
        self.stop_requested = stop_requested
        self.datasets = DatasetCache()

    def loop(self, wake: EventLike) -> None:
        """Claim and train runs until ``stop_requested``; wait for ``wake`` when idle."""
        while not self.stop_requested():
            try:
                with transaction(self.factory) as session:
                    run_id = run_store.claim_next(
                        session=session,
                        worker_id=self.worker_id,
                        max_running_per_user=self.config.max_running_per_user,
                    )
            except Exception:
                log.exception("worker %s could not claim a run", self.worker_id)
                run_id = None
                time.sleep(1.0)
            if run_id is None:
                wake.wait(IDLE_POLL_SECONDS)
                wake.clear()
                continue
            self.train_claimed(run_id)

    def train_claimed(self, run_id: str) -> None:
        """Train a run this worker has claimed (``claim_next`` here; an executor told
        which run to train claims it with ``app.db.runs.claim``), to its end or a pause."""
        try:
            Job(self, run_id).run()
        except Exception:
            log.exception("worker %s failed while handling run %s", self.worker_id, run_id)
            time.sleep(0.5)
