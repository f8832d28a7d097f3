"""Waiting for something that happens in another thread or process, with a deadline.

Tests never sleep "long enough": they wait for an observable condition, and fail
with a message naming it (and the last value seen) once the deadline passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Seconds between two looks: short, so waiting costs little beyond the event itself.
POLL_SECONDS = 0.02


class TimedOut(AssertionError):
    """What ``wait_for`` raises when its deadline passes."""


def wait_for(
    predicate: Callable[[], T | None],
    *,
    timeout: float,
    message: str = "the condition never held",
    interval: float = POLL_SECONDS,
    describe: Callable[[], object] | None = None,
) -> T:
    """Call ``predicate`` until it returns something truthy and return that; raise
    ``TimedOut`` (with ``message`` and, if given, ``describe()``) after ``timeout`` s.

    The predicate is called at least once, and once more after the deadline, so a
    condition that holds just then is not reported as a timeout."""
    deadline = time.monotonic() + timeout
    while True:
        expired = time.monotonic() >= deadline
        value = predicate()
        if value:
            return value
        if expired:
            detail = f"; last seen: {describe()}" if describe is not None else ""
            raise TimedOut(f"timed out after {timeout:g} s: {message}{detail}")
        time.sleep(interval)
