"""Rendering plots off the event loop: a bounded pool and an LRU cache of finished plots.

A plot takes tens to hundreds of milliseconds of CPU. Drawn on the event loop it
would stall every request (predictions included); drawn in unbounded threads a
burst of plot requests would starve the API. ``PlotRenderer`` runs at most
``max_workers`` renders at a time (a process pool by default, so the renders do not
compete with predictions for the API process' GIL; threads on request), lets at
most ``max_pending`` wait or run, and refuses the next one at once with
``PlotsBusy`` (the route answers 503 with ``Retry-After``). Finished plots are kept
by the caller's key — e.g. ``(run_id, "loss.png", width, height)`` for a run that
has finished — so a repeated request is answered from memory, and concurrent
requests for one key share one render.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Literal

#: Seconds a client is told to wait after a ``PlotsBusy``.
RETRY_AFTER_SECONDS = 1


class PlotsBusy(Exception):
    """Too many plots are being rendered or waiting; try again shortly."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"too many plots being rendered at once (at most {limit}); retry in "
            f"{RETRY_AFTER_SECONDS} s"
        )
        self.retry_after = RETRY_AFTER_SECONDS


class PlotCache:
    """A small LRU of rendered plots, bounded by entries and by total bytes."""

    def __init__(self, max_entries: int = 128, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: bytes) -> None:
        if len(value) > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._items[key] = value
            self._bytes += len(value)
            while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped)

    def __len__(self) -> int:
        return len(self._items)


class PlotRenderer:
    """``await renderer.render(key, plots.loss_plot, metrics, title=...)`` → bytes.

    ``fn`` and its arguments must pickle with ``kind="process"`` (the functions of
    ``app.services.plots`` and plain data do; pass ``plots.SurfaceFunction`` rather
    than a lambda). ``key=None`` renders without caching (a running run's plot
    changes with every epoch). Create one per app and ``shutdown()`` it when the app
    stops; the pool starts its workers on the first render."""

    def __init__(
        self,
        *,
        kind: Literal["process", "thread"] = "process",
        max_workers: int = 2,
        max_pending: int = 8,
        cache: PlotCache | None = None,
    ) -> None:
        if max_workers < 1 or max_pending < max_workers:
            raise ValueError("need max_workers ≥ 1 and max_pending ≥ max_workers")
        self.kind = kind
        self.max_workers = max_workers
        self.max_pending = max_pending
        self.cache = cache if cache is not None else PlotCache()
        self.renders = 0  # renders actually run (cache misses), for tests and metrics
        self._pending = 0
        self._in_flight: dict[Hashable, asyncio.Future[bytes]] = {}  # one event loop's
        self._lock = threading.Lock()
        self._pool: Executor | None = None

    def _executor(self) -> Executor:
        with self._lock:
            if self._pool is None:
                if self.kind == "process":
                    # spawn: the API process has threads, and fork would copy their locks.
                    self._pool = ProcessPoolExecutor(
                        self.max_workers, mp_context=multiprocessing.get_context("spawn")
                    )
                else:
                    self._pool = ThreadPoolExecutor(self.max_workers, "annlab-plot")
            return self._pool

    async def render(
        self, key: Hashable | None, fn: Callable[..., bytes], /, *args: Any, **kwargs: Any
    ) -> bytes:
        """The plot for ``key`` from the cache, or rendered by ``fn(*args, **kwargs)``
        in the pool (one render per key even when several requests ask at once).

        Raises ``PlotsBusy`` when ``max_pending`` renders are already waiting or
        running, and whatever ``fn`` raises (e.g. ``plots.PlotError``)."""
        if key is not None:
            cached = self.cache.get(key)
            if cached is not None:
                return cached
            shared = self._in_flight.get(key)
            if shared is not None:
                return await asyncio.shield(shared)
        with self._lock:
            if self._pending >= self.max_pending:
                raise PlotsBusy(self.max_pending)
            self._pending += 1
        # The render is a task of its own: a caller that goes away (a client that
        # disconnects) cancels only its wait, never the render others share.
        task = asyncio.ensure_future(self._run(key, fn, args, kwargs))
        task.add_done_callback(_retrieve)
        if key is not None:
            self._in_flight[key] = task
        return await asyncio.shield(task)

    async def _run(
        self,
        key: Hashable | None,
        fn: Callable[..., bytes],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> bytes:
        try:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self._executor(), _call, fn, args, kwargs)
            self.renders += 1
            if key is not None:
                self.cache.put(key, result)
            return result
        finally:
            with self._lock:
                self._pending -= 1
            if key is not None:
                self._in_flight.pop(key, None)

    @property
    def pending(self) -> int:
        """Renders waiting or running now."""
        return self._pending

    def shutdown(self) -> None:
        """Stop the pool (waiting renders are cancelled)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _retrieve(task: asyncio.Future[bytes]) -> None:
    """Mark a failure as seen even when every caller stopped waiting (no asyncio warning)."""
    if not task.cancelled():
        task.exception()


def _call(fn: Callable[..., bytes], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    return fn(*args, **kwargs)
