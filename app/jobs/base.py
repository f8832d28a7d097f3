"""The executor interface: what the API needs from whatever trains its runs.

The local process pool (``local.py``) is one implementation; a distributed
backend (workers on other machines claiming runs from the same database) can
replace it without touching the API.
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
        """Recover runs left behind by a crash, then start taking work."""

    @abstractmethod
    def notify(self) -> None:
        """A run was queued: wake an idle worker now rather than at its next poll."""

    @abstractmethod
    def shutdown(self, *, graceful: bool = True, timeout: float = SHUTDOWN_SECONDS) -> None:
        """Stop taking work. Graceful: running runs pause at once (a checkpoint of the
        exact state, between two mini-batches), go back to the queue (``queued``,
        ``stop_reason`` null, no attempt counted) and resume later from there, bit for
        bit; returns within ``timeout``."""


class NoExecutor(Executor):
    """Queue only: runs wait for workers started elsewhere."""

    def start(self) -> None:
        pass

    def notify(self) -> None:
        pass

    def shutdown(self, *, graceful: bool = True, timeout: float = SHUTDOWN_SECONDS) -> None:
        pass
