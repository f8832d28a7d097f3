"""The executor interface: what the API needs from whatever trains its runs.

The API stores a queued run, commits, then calls ``notify(run_id)``; everything
else goes through the database. Executors are built by name from
``ANNLAB_EXECUTOR`` (``app.jobs.registry``): the local process pool, threads (tests),
or none (workers elsewhere, e.g. ``annlab worker``, claim from the same database).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

#: How long ``shutdown`` may take. The server's whole stop must stay under 10 s
#: (what container runtimes wait after SIGTERM before SIGKILL): uvicorn's
#: ``timeout_graceful_shutdown`` (3 s, for open requests and event streams) comes
#: first, then this, then disposing the engine. A pausing worker needs one poll
#: (≤ 50 ms of training plus one mini-batch) and a checkpoint write.
SHUTDOWN_SECONDS = 5.0


class Executor(ABC):
    @abstractmethod
    def start(self) -> None:
        """Recover runs left behind by a crash (``app.jobs.recovery``), then take work."""

    @abstractmethod
    def notify(self, run_id: str) -> None:
        """``run_id`` was queued (and committed): start it now rather than at the next
        poll. A pool wakes an idle worker; a task queue would send the id."""

    @abstractmethod
    def shutdown(self, *, graceful: bool = True, timeout: float = SHUTDOWN_SECONDS) -> None:
        """Stop taking work. Graceful: running runs pause at once (a checkpoint of the
        exact state, between two mini-batches), go back to the queue (``queued``,
        ``stop_reason`` null, no attempt counted) and resume later from there, bit for
        bit; returns within ``timeout``."""


class NoExecutor(Executor):
    """Queue only: runs wait for workers started elsewhere (``annlab worker``)."""

    def start(self) -> None:
        pass

    def notify(self, run_id: str) -> None:
        pass

    def shutdown(self, *, graceful: bool = True, timeout: float = SHUTDOWN_SECONDS) -> None:
        pass
