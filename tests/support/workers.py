"""A worker thread that a test owns: the claim loop of ``app.jobs.worker`` against an
app started without an executor, stopped (and joined) when the block ends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session, sessionmaker

from app.jobs.worker import Worker, WorkerConfig


@contextmanager
def worker_thread(
    factory: sessionmaker[Session], config: WorkerConfig
) -> Iterator[threading.Event]:
    """Yields the worker's wake event (set it after a submission)."""
    stop, wake = threading.Event(), threading.Event()
    worker = Worker(factory=factory, config=config, stop_requested=stop.is_set)
    thread = threading.Thread(target=worker.loop, args=(wake,), daemon=True)
    thread.start()
    try:
        yield wake
    finally:
        stop.set()
        wake.set()
        thread.join(timeout=30)
