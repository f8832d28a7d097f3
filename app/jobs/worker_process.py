"""A worker process's entry point (spawned by ``LocalProcessExecutor``): signals, the
CPU priority, and the loop of ``app.jobs.worker.Worker``."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
from types import FrameType

from app.db.engine import make_engine, make_session_factory
from app.jobs.worker import EventLike, Worker, WorkerConfig

log = logging.getLogger("annlab.worker")


def process_main(
    database_url: str, config: WorkerConfig, wake: EventLike, stop: EventLike, niceness: int = 0
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
    terminated = False

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        nonlocal terminated
        terminated = True

    signal.signal(signal.SIGTERM, on_term)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s %(message)s")
    parent = multiprocessing.parent_process()
    engine = make_engine(database_url)

    def stop_requested() -> bool:
        return terminated or stop.is_set() or (parent is not None and not parent.is_alive())

    worker = Worker(
        factory=make_session_factory(engine), config=config, stop_requested=stop_requested
    )
    # Everything alive now (the app's, SQLAlchemy's and NumPy's modules: ~150,000
    # objects) lives as long as the process: frozen, out of the collector's sight, so
    # its full collections during training do not walk them all (a W1 epoch in a
    # process with such a heap: 0.63 ms, frozen 0.48, in a bare process 0.30).
    gc.collect()
    gc.freeze()
    try:
        worker.loop(wake)
    finally:
        engine.dispose()
