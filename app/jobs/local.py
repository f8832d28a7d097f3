"""The local executor: a pool of worker processes on this machine.

Workers claim runs from the database themselves; this class only keeps the
pool full (a dead worker is replaced and its run requeued, counting the
attempt), wakes workers when a run is queued, and stops them on shutdown.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import runs as run_store
from app.db.engine import transaction
from app.jobs.base import SHUTDOWN_SECONDS, Executor
from app.jobs.worker import Worker, new_worker_id, process_main

log = logging.getLogger("annlab.executor")

#: A running run whose worker has not written for this long is considered orphaned.
STALE_SECONDS = 60.0
SUPERVISE_SECONDS = 0.5
#: Keep BLAS single-threaded in workers: one run per core, and bit-for-bit results.
_SINGLE_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_orphans(
    factory: sessionmaker[Session], *, stale_seconds: float = STALE_SECONDS, at_start: bool = True
) -> list[str]:
    """Requeue runs left ``running`` by a server or worker that is gone.

    A run is orphaned when its worker belonged to a server on this host that no
    longer runs (or to an earlier life of this very process, e.g. PID 1 in a
    container), or when its heartbeat is older than ``stale_seconds`` (any host).
    Each recovery counts as a crash attempt.
    """
    host = socket.gethostname()
    me = os.getpid()
    with transaction(factory) as session:
        orphans: list[str] = []
        for run_id in run_store.running_run_ids(session=session):
            row = run_store.get_run(session=session, run_id=run_id, owner_id=None)
            if row is None:
                continue
            claimed = (row.claimed_by or "").split(":")
            stale = row.heartbeat_at is None or row.heartbeat_at < run_store.stale_cutoff(
                stale_seconds
            )
            local_dead = (
                len(claimed) == 3
                and claimed[0] == host
                and claimed[1].isdigit()
                # our own pid means an earlier life of this process only at start: later,
                # the runs claimed in our name are our live workers' (the supervisor
                # handles those that die)
                and ((at_start and int(claimed[1]) == me) or not _pid_alive(int(claimed[1])))
            )
            if stale or local_dead or row.claimed_by is None:
                orphans.append(run_id)
        return run_store.requeue(session=session, run_ids=orphans, crashed=True)


@dataclass
class _Slot:
    process: Any
    worker_id: str
    wake: Any


class LocalProcessExecutor(Executor):
    def __init__(self, *, settings: Settings, factory: sessionmaker[Session]) -> None:
        self.settings = settings
        self.factory = factory
        self.context = multiprocessing.get_context("spawn")
        self.stop_event = self.context.Event()
        self.slots: list[_Slot] = []
        self.closing = threading.Event()
        self.lock = threading.Lock()
        self.supervisor: threading.Thread | None = None

    def start(self) -> None:
        recovered = recover_orphans(self.factory)
        if recovered:
            log.info("requeued %d interrupted run(s): %s", len(recovered), ", ".join(recovered))
        for name in _SINGLE_THREAD_ENV:
            os.environ.setdefault(name, "1")
        with self.lock:
            self.slots = [self._spawn() for _ in range(self.settings.workers)]
        self.supervisor = threading.Thread(
            target=self._supervise, name="annlab-supervisor", daemon=True
        )
        self.supervisor.start()

    def _spawn(self) -> _Slot:
        worker_id = new_worker_id()
        wake = self.context.Event()
        process = self.context.Process(
            target=process_main,
            args=(
                self.settings.resolved_database_url,
                worker_id,
                self.settings.checkpoint_seconds,
                self.settings.max_run_seconds,
                wake,
                self.stop_event,
                self.settings.resolved_max_running_runs_per_user,
                self.settings.worker_nice,
            ),
            name=f"annlab-worker-{worker_id}",
            daemon=True,
        )
        process.start()
        return _Slot(process=process, worker_id=worker_id, wake=wake)

    def notify(self) -> None:
        for slot in list(self.slots):
            slot.wake.set()

    def _supervise(self) -> None:
        last_reap = time.monotonic()
        while not self.closing.wait(SUPERVISE_SECONDS):
            with self.lock:
                if self.closing.is_set():
                    return
                for index, slot in enumerate(self.slots):
                    if slot.process.is_alive():
                        continue
                    log.warning(
                        "worker %s exited with %s; starting a new one",
                        slot.worker_id,
                        slot.process.exitcode,
                    )
                    self._requeue_of(slot.worker_id, crashed=True)
                    self.slots[index] = self._spawn()
                    self.notify()
            if time.monotonic() - last_reap > 10:
                last_reap = time.monotonic()
                try:
                    if recover_orphans(self.factory, at_start=False):
                        self.notify()
                except Exception:
                    log.exception("could not recover orphaned runs")

    def _requeue_of(self, worker_id: str, *, crashed: bool) -> None:
        try:
            with transaction(self.factory) as session:
                ids = run_store.running_run_ids(session=session, claimed_by=worker_id)
                run_store.requeue(
                    session=session, run_ids=ids, crashed=crashed, only_worker=worker_id
                )
        except Exception:
            log.exception("could not requeue the runs of worker %s", worker_id)

    def shutdown(self, *, graceful: bool = True, timeout: float = SHUTDOWN_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        self.closing.set()
        # Tell the workers first: they pause (checkpoint, requeue) while the supervisor ends.
        if self.stop_event is not None:
            self.stop_event.set()
        self.notify()
        if self.supervisor is not None:
            self.supervisor.join(timeout=SUPERVISE_SECONDS * 2)
        with self.lock:
            if not graceful:
                for slot in self.slots:
                    slot.process.kill()
            for slot in self.slots:  # one shared deadline, whatever the number of workers
                slot.process.join(max(0.0, deadline - time.monotonic() - 1.0))
            stragglers = [slot for slot in self.slots if slot.process.is_alive()]
            for slot in stragglers:
                log.warning("worker %s did not stop in time; killing it", slot.worker_id)
                slot.process.kill()
            for slot in stragglers:
                slot.process.join(max(0.1, deadline - time.monotonic()))
            for slot in self.slots:
                # Whatever a worker could not hand back itself goes back to the queue.
                self._requeue_of(slot.worker_id, crashed=False)
            for slot in self.slots:
                with contextlib.suppress(Exception):
                    slot.process.close()
            self.slots = []
            # Drop the events now so their semaphores are released before exit.
            self.stop_event = None  # type: ignore[assignment]
        gc.collect()


class ThreadExecutor(Executor):
    """The same worker code in threads of this process: for tests and tiny setups."""

    def __init__(self, *, settings: Settings, factory: sessionmaker[Session]) -> None:
        self.settings = settings
        self.factory = factory
        self.stop_event = threading.Event()
        self.wakes: list[threading.Event] = []
        self.threads: list[threading.Thread] = []
        self.worker_ids: list[str] = []

    def start(self) -> None:
        recover_orphans(self.factory)
        for _ in range(self.settings.workers):
            wake = threading.Event()
            worker_id = new_worker_id()
            worker = Worker(
                factory=self.factory,
                worker_id=worker_id,
                checkpoint_seconds=self.settings.checkpoint_seconds,
                max_run_seconds=self.settings.max_run_seconds,
                stop_requested=self.stop_event.is_set,
                max_running_per_user=self.settings.resolved_max_running_runs_per_user,
            )
            thread = threading.Thread(target=worker.loop, args=(wake,), daemon=True)
            thread.start()
            self.wakes.append(wake)
            self.threads.append(thread)
            self.worker_ids.append(worker_id)

    def notify(self) -> None:
        for wake in self.wakes:
            wake.set()

    def shutdown(self, *, graceful: bool = True, timeout: float = SHUTDOWN_SECONDS) -> None:
        self.stop_event.set()
        self.notify()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with transaction(self.factory) as session:
            for worker_id in self.worker_ids:
                ids = run_store.running_run_ids(session=session, claimed_by=worker_id)
                run_store.requeue(
                    session=session, run_ids=ids, crashed=False, only_worker=worker_id
                )
