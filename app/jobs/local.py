"""The local executors: a pool of worker processes on this machine, or threads.

Workers claim runs from the database themselves; an executor only keeps its pool
full (a dead worker is replaced and its run requeued, counting the attempt),
wakes workers when a run is queued, and stops them on shutdown. The same pool
runs inside the server (``ANNLAB_EXECUTOR=process``) or on its own
(``annlab worker``, ``app.jobs.standalone``).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import threading
import time
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event as ProcessEvent

from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.jobs.base import SHUTDOWN_SECONDS, Executor
from app.jobs.recovery import recover_orphans, requeue_worker_runs
from app.jobs.worker import Worker, WorkerConfig, new_worker_id
from app.jobs.worker_process import process_main

log = logging.getLogger("annlab.executor")

SUPERVISE_SECONDS = 0.5
#: Seconds between two looks for orphaned runs (other processes' dead workers).
REAP_SECONDS = 10.0
#: Keep BLAS single-threaded in workers: one run per core, and bit-for-bit results.
_SINGLE_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


#: How long the pool's start waits for its workers to be ready to claim runs.
READY_SECONDS = 30.0


@dataclass
class _Slot:
    process: SpawnProcess
    worker_id: str
    wake: ProcessEvent
    #: Set by the worker once it can claim runs (imports done, heap frozen).
    ready: ProcessEvent


class LocalProcessExecutor(Executor):
    """``settings.workers`` worker processes (spawned), supervised by a thread."""

    def __init__(self, *, settings: Settings, factory: sessionmaker[Session]) -> None:
        self.settings = settings
        self.factory = factory
        self.context = multiprocessing.get_context("spawn")
        self.stop_event: ProcessEvent | None = self.context.Event()
        self.slots: list[_Slot] = []
        self.closing = threading.Event()
        self.lock = threading.Lock()
        self.supervisor: threading.Thread | None = None

    def start(self) -> None:
        recover_orphans(self.factory)
        for name in _SINGLE_THREAD_ENV:
            os.environ.setdefault(name, "1")
        with self.lock:
            self.slots = [self._spawn() for _ in range(self.settings.workers)]
        self._wait_ready(self.slots)
        self.supervisor = threading.Thread(
            target=self._supervise, name="annlab-supervisor", daemon=True
        )
        self.supervisor.start()

    def _wait_ready(self, slots: list[_Slot], timeout: float = READY_SECONDS) -> None:
        """Return once every worker can claim runs (or has died, or ``timeout``): a
        server that answers can then train at once. A spawned worker imports the app
        and NumPy first (about a second on a busy machine): the first runs submitted
        after start waited that long, queued."""
        deadline = time.monotonic() + timeout
        for slot in slots:
            while not slot.ready.wait(0.05):
                if not slot.process.is_alive() or time.monotonic() > deadline:
                    log.warning("worker %s is not ready yet; starting anyway", slot.worker_id)
                    return

    def _spawn(self) -> _Slot:
        assert self.stop_event is not None, "spawned after shutdown"
        worker_id = new_worker_id()
        wake = self.context.Event()
        ready = self.context.Event()
        process = self.context.Process(
            target=process_main,
            args=(
                self.settings.resolved_database_url,
                WorkerConfig.from_settings(worker_id, self.settings),
                wake,
                self.stop_event,
                self.settings.worker_nice,
                ready,
            ),
            name=f"annlab-worker-{worker_id}",
            daemon=True,
        )
        process.start()
        return _Slot(process=process, worker_id=worker_id, wake=wake, ready=ready)

    def notify(self, run_id: str) -> None:
        self._wake_all()

    def _wake_all(self) -> None:
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
                    requeue_worker_runs(self.factory, slot.worker_id, crashed=True)
                    self.slots[index] = self._spawn()
                    self._wake_all()
            if time.monotonic() - last_reap > REAP_SECONDS:
                last_reap = time.monotonic()
                try:
                    if recover_orphans(self.factory, at_start=False):
                        self._wake_all()
                except Exception:
                    log.exception("could not recover orphaned runs")

    def shutdown(self, *, graceful: bool = True, timeout: float = SHUTDOWN_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        self.closing.set()
        # Tell the workers first: they pause (checkpoint, requeue) while the supervisor ends.
        if self.stop_event is not None:
            self.stop_event.set()
        self._wake_all()
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
                requeue_worker_runs(self.factory, slot.worker_id, crashed=False)
            for slot in self.slots:
                with contextlib.suppress(Exception):
                    slot.process.close()
            self.slots = []
            # Drop the events now so their semaphores are released before exit.
            self.stop_event = None
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
                config=WorkerConfig.from_settings(worker_id, self.settings),
                stop_requested=self.stop_event.is_set,
            )
            thread = threading.Thread(target=worker.loop, args=(wake,), daemon=True)
            thread.start()
            self.wakes.append(wake)
            self.threads.append(thread)
            self.worker_ids.append(worker_id)

    def notify(self, run_id: str) -> None:
        for wake in self.wakes:
            wake.set()

    def shutdown(self, *, graceful: bool = True, timeout: float = SHUTDOWN_SECONDS) -> None:
        self.stop_event.set()
        for wake in self.wakes:
            wake.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for worker_id in self.worker_ids:
            requeue_worker_runs(self.factory, worker_id, crashed=False)
