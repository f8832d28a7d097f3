"""A worker process's entry point (spawned by ``LocalProcessExecutor``): signals, the
CPU priority, and the loop of ``app.jobs.worker.Worker``."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
import time
from types import FrameType
from typing import Protocol

from app.db.engine import make_engine, make_session_factory
from app.jobs.worker import EventLike, Worker, WorkerConfig

log = logging.getLogger("annlab.worker")

#: Seconds between two looks at the pool's stop event and at the parent process.
STOP_CHECK_SECONDS = 0.05


class Alive(Protocol):
    def is_alive(self) -> bool: ...


class StopRequested:
    """The worker process's "stop?", asked after every mini-batch of training.

    SIGTERM is seen at once; the pool's stop event (a semaphore) and whether the
    parent is alive (a ``select()``) took 5.6 µs to ask, 4.5 ms of an iris run's 800
    mini-batches (45 ms of training), so they are looked at every
    ``STOP_CHECK_SECONDS``: a shutdown waits at most that much longer. Both only ever
    turn true, so a yes is kept."""

    def __init__(self, stop: EventLike, parent: Alive | None) -> None:
        self.stop = stop
        self.parent = parent
        self.terminated = False
        self.stopped = False
        self.next_look = 0.0

    def __call__(self) -> bool:
        if self.terminated or self.stopped:
            return True
        now = time.monotonic()
        if now < self.next_look:
            return False
        self.next_look = now + STOP_CHECK_SECONDS
        parent_gone = self.parent is not None and not self.parent.is_alive()
        self.stopped = self.stop.is_set() or parent_gone
        return self.stopped


def process_main(
    database_url: str,
    config: WorkerConfig,
    wake: EventLike,
    stop: EventLike,
    niceness: int = 0,
    ready: EventLike | None = None,
) -> None:
    """Entry point of a worker process (spawned by ``LocalProcessExecutor``).

    ``niceness`` (ANNLAB_WORKER_NICE) lowers the process's CPU priority so that
    training, which uses every cycle it gets, does not starve the server's
    requests (predictions) on a busy machine; it costs training nothing when
    there are idle cores. The process stops (pausing its run) on ``stop``, on
    SIGTERM, or when its parent is gone."""
    if niceness > 0:
        try:
            os.nice(niceness)
        except OSError:  # not permitted here: train at the normal priority
            log.warning("could not lower the worker's priority (nice %d)", niceness)
    # Ctrl-C reaches the whole process group: the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop_requested = StopRequested(stop, multiprocessing.parent_process())

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        stop_requested.terminated = True

    signal.signal(signal.SIGTERM, on_term)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s %(message)s")
    engine = make_engine(database_url)
    worker = Worker(
        factory=make_session_factory(engine), config=config, stop_requested=stop_requested
    )
    # Everything alive now (the app's, SQLAlchemy's and NumPy's modules: ~150,000
    # objects) lives as long as the process: frozen, out of the collector's sight, so
    # its full collections during training do not walk them all (a W1 epoch in a
    # process with such a heap: 0.63 ms, frozen 0.48, in a bare process 0.30).
    gc.collect()
    gc.freeze()
    if ready is not None:  # the pool's start waits for this: the server then can train
        ready.set()
    try:
        worker.loop(wake)
    finally:
        engine.dispose()
