"""A worker's writes wait out a busy database and a full disk, never failing the run
for either (``retry_locked``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import OperationalError

from app.db.engine import DiskFull, disk_full_message, is_disk_full

#: How long a worker keeps retrying a write the database refused as locked (each
#: attempt already waits the busy timeout), and the pauses between attempts.
LOCKED_RETRY_SECONDS = 600.0
LOCKED_BACKOFF_SECONDS = (0.05, 0.2, 0.5, 1.0, 2.0)

log = logging.getLogger("annlab.worker")
T = TypeVar("T")


def is_locked(error: BaseException) -> bool:
    """SQLite's "database is locked" / "database table is locked" (SQLITE_BUSY)."""
    return isinstance(error, OperationalError) and "locked" in str(error.orig).lower()


def retry_locked(
    write: Callable[[], T],
    *,
    deadline_seconds: float = LOCKED_RETRY_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    what: str = "a write",
) -> T:
    """``write()`` (a whole transaction), again while the database answers "locked" or
    the disk holding it is full.

    A worker's progress, checkpoint, snapshots and outcome must not be lost to a busy
    moment of the database (hundreds of readers, a long write elsewhere), nor to a
    full disk: the run **waits and retries** (training is held inside the callback,
    nothing half-written is visible: each attempt is one transaction, rolled back
    whole) and goes on where it was once space is freed. Any other error, or either
    condition past the deadline, is raised (a full disk as ``DiskFull``, whose message
    names the disk: the run then fails with it)."""
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            return write()
        except OperationalError as error:
            full = is_disk_full(error)
            if not (full or is_locked(error)):
                raise
            if time.monotonic() - started > deadline_seconds:
                if full:
                    raise DiskFull(disk_full_message(what)) from error
                raise
            pause = LOCKED_BACKOFF_SECONDS[min(attempt, len(LOCKED_BACKOFF_SECONDS) - 1)]
            attempt += 1
            if full:
                log.warning(
                    "%s (attempt %d, retrying in %.2f s)", disk_full_message(what), attempt, pause
                )
            else:
                log.warning("database locked (attempt %d), retrying in %.2f s", attempt, pause)
            sleep(pause)
