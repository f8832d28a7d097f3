"""Bounded work off the event loop.

CPU-heavy request work (parsing an upload, encoding it) runs in a worker thread,
never on the event loop, so that ``/healthz`` and every other request keep
answering; and at most ``LIMITS[kind]`` of one kind run at once, so that eight
concurrent uploads do not become eight threads fighting for two cores (and for
memory) while the thread pool's other tokens stay free for the rest of the API.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from functools import partial
from typing import Any, Literal, TypeVar

from anyio import CapacityLimiter, to_thread

T = TypeVar("T")

Kind = Literal["upload"]

#: How many of each kind run at once (per process).
LIMITS: dict[Kind, int] = {"upload": 2}

_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Kind, CapacityLimiter]] = (
    weakref.WeakKeyDictionary()
)


def limiter(kind: Kind) -> CapacityLimiter:
    """The running loop's limiter for ``kind`` (a limiter belongs to one event loop)."""
    per_loop = _limiters.setdefault(asyncio.get_running_loop(), {})
    if kind not in per_loop:
        per_loop[kind] = CapacityLimiter(LIMITS[kind])
    return per_loop[kind]


async def offload(kind: Kind, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``function(*args, **kwargs)`` in a worker thread, at most ``LIMITS[kind]`` at once."""
    return await to_thread.run_sync(partial(function, *args, **kwargs), limiter=limiter(kind))
