"""Bounded work off the event loop.

CPU-heavy request work runs elsewhere than on the event loop, so that ``/healthz``
and every other request keep answering, and at most ``LIMITS[kind]`` of one kind
run at once, so that eight concurrent uploads do not become eight parsers fighting
for two cores (and memory):

- ``offload``: in a worker thread (work that releases the GIL, or is short);
- ``offload_process``: in a small pool of spawned processes at a lower CPU priority
  (parsing and encoding uploads: pure-Python work that would hold the GIL the event
  loop needs). Arguments, results and errors travel pickled.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Any, Literal, TypeVar

from anyio import CapacityLimiter, to_thread

T = TypeVar("T")

Kind = Literal["upload"]

#: How many of each kind run at once (per server process).
LIMITS: dict[Kind, int] = {"upload": 2}
#: Niceness added to offload processes: the server's event loop comes first.
PROCESS_NICE = 5

_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Kind, CapacityLimiter]] = (
    weakref.WeakKeyDictionary()
)
_pools: dict[Kind, ProcessPoolExecutor] = {}
_pools_lock = threading.Lock()


def limiter(kind: Kind) -> CapacityLimiter:
    """The running loop's limiter for ``kind`` (a limiter belongs to one event loop)."""
    per_loop = _limiters.setdefault(asyncio.get_running_loop(), {})
    if kind not in per_loop:
        per_loop[kind] = CapacityLimiter(LIMITS[kind])
    return per_loop[kind]


async def offload(kind: Kind, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``function(*args, **kwargs)`` in a worker thread, at most ``LIMITS[kind]`` at once."""
    return await to_thread.run_sync(partial(function, *args, **kwargs), limiter=limiter(kind))


def _lower_priority() -> None:
    with contextlib.suppress(OSError):  # not permitted: run at the server's priority
        os.nice(PROCESS_NICE)


def _pool(kind: Kind) -> ProcessPoolExecutor:
    with _pools_lock:
        pool = _pools.get(kind)
        if pool is None:
            pool = _pools[kind] = ProcessPoolExecutor(
                LIMITS[kind],
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_lower_priority,
            )
        return pool


async def offload_process(kind: Kind, function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` (a module-level function) in the ``kind`` process pool, at most
    ``LIMITS[kind]`` at once; its exceptions are raised here."""
    pool = _pool(kind)
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, partial(function, *args))
    except BrokenProcessPool:
        with _pools_lock:  # a child died (killed, out of memory): the next call starts anew
            if _pools.get(kind) is pool:
                del _pools[kind]
        pool.shutdown(wait=False, cancel_futures=True)
        raise


def shutdown() -> None:
    """Stop the process pools (the app's shutdown)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.shutdown(wait=False, cancel_futures=True)
