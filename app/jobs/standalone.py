"""``annlab worker``: the local process pool run on its own, outside the server.

It claims runs from the same database as the server, so a server started with
``ANNLAB_EXECUTOR=none`` and any number of ``annlab worker`` processes (on this
machine or others sharing a PostgreSQL database) train the server's runs. SIGTERM
or Ctrl-C stops it gracefully: each running run pauses (an exact checkpoint) and
goes back to the queue, to resume on any worker, bit for bit.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from app.config import Settings
from app.db.engine import make_engine, make_session_factory
from app.db.migrate import upgrade_to_head
from app.jobs.local import LocalProcessExecutor

log = logging.getLogger("annlab.worker")


def run_pool(settings: Settings, *, stop: threading.Event | None = None) -> None:
    """Run ``settings.workers`` worker processes until SIGTERM/SIGINT (or ``stop``), then
    pause their runs and return. Call it from the main thread (it installs the
    signal handlers); the database is migrated to the latest revision first."""
    stop = stop or threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: pausing the running runs", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    engine = make_engine(settings.resolved_database_url)
    try:
        upgrade_to_head(engine)
        executor = LocalProcessExecutor(settings=settings, factory=make_session_factory(engine))
        executor.start()
        try:
            while not stop.wait(0.5):  # a timed wait: signals are handled between waits
                pass
        finally:
            executor.shutdown(graceful=True)
    finally:
        engine.dispose()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
