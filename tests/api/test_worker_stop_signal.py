"""A worker process's "stop?" (``app.jobs.worker_process.StopRequested``): asked after
every mini-batch, so the costly looks (the pool's event, the parent) are spaced out,
and SIGTERM is never delayed."""

from __future__ import annotations

import threading
import time

import pytest

from app.jobs import worker_process
from app.jobs.worker_process import StopRequested


class CountedEvent:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.looks = 0

    def is_set(self) -> bool:
        self.looks += 1
        return self.event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.event.wait(timeout)

    def set(self) -> None:
        self.event.set()

    def clear(self) -> None:
        self.event.clear()


class Parent:
    def __init__(self) -> None:
        self.alive = True
        self.looks = 0

    def is_alive(self) -> bool:
        self.looks += 1
        return self.alive


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    return now


def test_the_event_and_the_parent_are_looked_at_once_per_interval(clock: list[float]) -> None:
    stop, parent = CountedEvent(), Parent()
    asked = StopRequested(stop, parent)
    assert not any(asked() for _ in range(1000))
    assert (stop.looks, parent.looks) == (1, 1)
    stop.set()
    assert not asked()  # seen at the next look, not before
    clock[0] += worker_process.STOP_CHECK_SECONDS
    assert asked()
    stop.clear()
    assert asked(), "a stop, once seen, is kept"


def test_sigterm_is_seen_at_once_and_a_dead_parent_at_the_next_look(clock: list[float]) -> None:
    parent = Parent()
    asked = StopRequested(CountedEvent(), parent)
    assert not asked()
    asked.terminated = True  # what the SIGTERM handler sets
    assert asked()
    orphan = StopRequested(CountedEvent(), parent)
    assert not orphan()
    parent.alive = False
    clock[0] += worker_process.STOP_CHECK_SECONDS
    assert orphan()
    assert StopRequested(CountedEvent(), None)() is False  # not spawned: no parent to ask
