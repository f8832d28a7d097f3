"""The BLAS threads of a ``train`` call, when several calls share one process.

NumPy's OpenBLAS (pthreads) has one thread pool for the whole process, so its
thread count is process-wide. threadpoolctl (3.8) guards that pool with a
"controlling thread": the first thread that sets a limit outside a ``with`` block
keeps control, and every other thread's limits are silently ignored. A server
that sets one BLAS thread at start-up (``app.main``) would thus leave runs
trained in other threads of that process (the ``thread`` executor) on one BLAS
thread whatever their ``training.threads`` said, and their float32 bits would
not be those of the same spec trained anywhere else. Two such runs with
different ``threads`` at once cannot both have theirs either.

:func:`blas_threads` is the one arbiter of the pool for training: the first
caller sets the count (taking control for that moment only), callers wanting
the same count share it, a caller wanting another count waits until the pool is
free, and the last one out restores what was there before.
:func:`set_process_threads` sets the count outside training (the server's) the same
way, so that no thread keeps control.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from threadpoolctl import (  # type: ignore[import-untyped]  # no stubs, no py.typed
    OpenBLASController,
    ThreadpoolController,
)


class _Pool:
    """Who holds the process's BLAS pool, at which count, and what to restore."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.count: int | None = None
        self.holders = 0
        self.waiting = 0  # blocks waiting for the pool at another count (for tests)
        self.limiter: Any = None  # threadpoolctl's limiter: it restores the originals
        self.default: int | None = None  # set while the pool was held: applied after


_POOL = _Pool()

T = TypeVar("T")


def _as_controller(action: Callable[[], T]) -> T:
    """Run ``action`` as the controlling thread, then release control again: other
    code in the process (a server's own limit, another run) must not lock us out,
    and we must not lock it out either."""
    OpenBLASController.clear_controlling_thread(force=True)
    try:
        return action()
    finally:
        OpenBLASController.clear_controlling_thread(force=True)


@contextmanager
def blas_threads(controller: ThreadpoolController, threads: int) -> Iterator[None]:
    """BLAS on ``threads`` threads for the block, whichever thread runs it.

    Waits while other blocks of this process hold the pool at another count.
    """
    pool = _POOL
    with pool.changed:
        pool.waiting += 1
        try:
            pool.changed.wait_for(lambda: pool.holders == 0 or pool.count == threads)
        finally:
            pool.waiting -= 1
        if pool.holders == 0:
            pool.limiter = _as_controller(lambda: controller.limit(limits=threads, user_api="blas"))
            pool.count = threads
        pool.holders += 1
    try:
        yield
    finally:
        with pool.changed:
            pool.holders -= 1
            if pool.holders == 0:
                limiter, pool.limiter, pool.count = pool.limiter, None, None
                _as_controller(limiter.restore_original_limits)
                if pool.default is not None:
                    default, pool.default = pool.default, None
                    _as_controller(lambda: controller.limit(limits=default, user_api="blas"))
                pool.changed.notify_all()


def set_process_threads(controller: ThreadpoolController, threads: int) -> None:
    """``threads`` BLAS threads for this process outside training blocks (a server's
    own NumPy work), set from any thread and without keeping control of the pool.

    While training blocks hold the pool it is applied when the last one ends.
    """
    pool = _POOL
    with pool.changed:
        if pool.holders:
            pool.default = threads
        else:
            _as_controller(lambda: controller.limit(limits=threads, user_api="blas"))
