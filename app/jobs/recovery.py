"""Putting back runs whose worker is gone; used by every executor.

A run is ``running`` while a worker holds it: ``claimed_by`` names the worker
(``host:pid:token``, the pid of the process that owns it) and ``heartbeat_at`` is
its lease, renewed by every progress write. When the worker is gone the run goes
back to the queue from its last checkpoint.
"""

from __future__ import annotations

import logging
import os
import socket

from sqlalchemy.orm import Session, sessionmaker

from app.db import progress
from app.db import runs as run_store
from app.db.engine import transaction

log = logging.getLogger("annlab.recovery")

#: A running run whose worker has not written for this long is considered orphaned.
STALE_SECONDS = 60.0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_orphans(
    factory: sessionmaker[Session], *, stale_seconds: float = STALE_SECONDS, at_start: bool = True
) -> list[str]:
    """Requeue runs left ``running`` by a server or worker that is gone; their ids.

    A run is orphaned when its worker belonged to a process on this host that no
    longer runs (or to an earlier life of this very process, e.g. PID 1 in a
    container, checked only ``at_start``: later, the runs claimed in our name are
    our live workers'), or when its heartbeat is older than ``stale_seconds`` (any
    host). Each recovery counts as a crash attempt.
    """
    host = socket.gethostname()
    me = os.getpid()
    cutoff = progress.stale_cutoff(stale_seconds)
    with transaction(factory) as session:
        orphans: list[str] = []
        for run_id in progress.running_run_ids(session=session):
            row = run_store.get_run(session=session, run_id=run_id, owner_id=None)
            if row is None:
                continue
            claimed = (row.claimed_by or "").split(":")
            stale = row.heartbeat_at is None or row.heartbeat_at < cutoff
            local_dead = (
                len(claimed) == 3
                and claimed[0] == host
                and claimed[1].isdigit()
                and ((at_start and int(claimed[1]) == me) or not pid_alive(int(claimed[1])))
            )
            if stale or local_dead or row.claimed_by is None:
                orphans.append(run_id)
        recovered = progress.requeue(session=session, run_ids=orphans, crashed=True)
    if recovered:
        log.info("requeued %d interrupted run(s): %s", len(recovered), ", ".join(recovered))
    return recovered


def requeue_worker_runs(factory: sessionmaker[Session], worker_id: str, *, crashed: bool) -> None:
    """Put the runs still held by ``worker_id`` back in the queue (``crashed``: it died,
    count an attempt; else it was stopped and could not hand them back itself)."""
    try:
        with transaction(factory) as session:
            ids = progress.running_run_ids(session=session, claimed_by=worker_id)
            progress.requeue(session=session, run_ids=ids, crashed=crashed, only_worker=worker_id)
    except Exception:
        log.exception("could not requeue the runs of worker %s", worker_id)
