"""The executor interface: what the API needs from whatever trains its runs.

The local process pool (``local.py``) is one implementation; a distributed
backend (workers on other machines claiming runs from the same database) can
replace it without touching the API.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class Executor(ABC):
    @abstractmethod
    def start(self) -> None:
        """Recover runs left behind by a crash, then start taking work."""

    @abstractmethod
    def notify(self) -> None:
        """A run was queued: wake an idle worker now rather than at its next poll."""

    @abstractmethod
    def shutdown(self, *, graceful: bool = True, timeout: float = 8.0) -> None:
        """Stop taking work. Graceful: running runs stop at once and go back to the
        queue (resuming later from their checkpoint); returns within ``timeout``."""


class NoExecutor(Executor):
    """Queue only: runs wait for workers started elsewhere."""

    def start(self) -> None:
        pass

    def notify(self) -> None:
        pass

    def shutdown(self, *, graceful: bool = True, timeout: float = 8.0) -> None:
        pass
