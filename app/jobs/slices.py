"""One slice of a run: what a Celery task does (``app.jobs.celery_app``).

A task names a run. It claims that run's row by id (a conditional UPDATE, so a
duplicate or stale delivery finds the run taken or finished and does nothing),
trains it with the same ``Worker`` code as the local pool for at most
ANNLAB_SLICE_SECONDS, then the worker's pause path stores the exact checkpoint
(between two mini-batches) and requeues the run behind the waiting ones, and
this module sends the task of the next slice. Every task is short, so no broker
timeout (Redis's visibility timeout, RabbitMQ's consumer timeout) is ever
reached, and a dead worker costs at most one slice. Why: docs/architecture.md.

ANNLAB_MAX_RUNNING_RUNS_PER_USER: the claim refuses a run whose owner already
trains that many (the run goes back to unsent: the server's sweep sends it when
a slot frees), and after a slice the next task sent is the owner's next run in
the queue's order that the limit allows (``app.db.dispatch.to_dispatch``) —
which, when the owner has more runs waiting than slots, is another of their
runs: a user's runs take turns in the slots the limit gives them.
ANNLAB_MAX_RUN_SECONDS counts every slice (``runs.trained_seconds``).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import replace

from sqlalchemy.orm import Session, sessionmaker

from app.db import dispatch, progress
from app.db import runs as run_store
from app.db.engine import transaction
from app.jobs.recovery import pid_alive
from app.jobs.worker import Worker, WorkerConfig, new_worker_id
from core.stopping import RunStatus

log = logging.getLogger("annlab.slices")


def dead_local_claim(claimed_by: str | None) -> bool:
    """The claim names a process of this host that no longer runs (its pool lost it)."""
    parts = (claimed_by or "").split(":")
    return (
        len(parts) == 3
        and parts[0] == socket.gethostname()
        and parts[1].isdigit()
        and not pid_alive(int(parts[1]))
    )


def _claim(
    factory: sessionmaker[Session], run_id: str, worker_id: str, max_running_per_user: int
) -> bool:
    """Claim the run; when its last trainer died on this very host (the broker redelivers
    the task of a killed pool process: ``task_reject_on_worker_lost``), first requeue it
    counting the attempt, which fails it at the third death instead of looping. A run
    still queued after a refused claim has its owner at the per-user limit: it is marked
    unsent, for the sweep to send once a slot frees."""
    limit = max_running_per_user
    with transaction(factory) as session:
        if run_store.claim(
            session=session, run_id=run_id, worker_id=worker_id, max_running_per_user=limit
        ):
            return True
        row = run_store.get_run(session=session, run_id=run_id, owner_id=None)
        if row is not None and row.status == RunStatus.QUEUED:
            log.info(
                "run %s: its owner trains %d run(s) already (ANNLAB_MAX_RUNNING_RUNS_PER_USER); "
                "left queued",
                run_id,
                limit,
            )
            dispatch.forget_dispatch(session=session, run_id=run_id)
            return False
        if row is None or row.status != RunStatus.RUNNING or not dead_local_claim(row.claimed_by):
            return False
        log.warning("run %s: its trainer %s is dead; requeueing it", run_id, row.claimed_by)
        requeued = progress.requeue(
            session=session, run_ids=[run_id], crashed=True, only_worker=row.claimed_by
        )
        if not requeued:
            return False  # failed (third death) or cancelled meanwhile
        return run_store.claim(
            session=session, run_id=run_id, worker_id=worker_id, max_running_per_user=limit
        )


def train_slice(
    factory: sessionmaker[Session],
    config: WorkerConfig,
    run_id: str,
    *,
    stop_requested: Callable[[], bool],
    send_next: Callable[[str], None],
) -> str:
    """Train one slice of ``run_id``; what happened: ``skipped`` (not ours to train), or
    the run's status afterwards (``queued`` after a slice or a shutdown, with the next
    slice sent through ``send_next``; or the end: succeeded, failed, cancelled)."""
    worker_id = new_worker_id()
    if not _claim(factory, run_id, worker_id, config.max_running_per_user):
        log.info("run %s is not queued: nothing to do (a duplicate or stale task)", run_id)
        return "skipped"
    log.info("run %s: slice on %s", run_id, worker_id)
    worker = Worker(
        factory=factory,
        config=replace(config, worker_id=worker_id, slice_always=True),
        stop_requested=stop_requested,
    )
    worker.train_claimed(run_id)
    with factory() as session:
        row = run_store.get_run(session=session, run_id=run_id, owner_id=None)
        status, owner_id = (row.status, row.owner_id) if row is not None else ("deleted", None)
    if owner_id is not None:
        hand_over(factory, owner_id, config.max_running_per_user, send_next)
    return status


def hand_over(
    factory: sessionmaker[Session],
    owner_id: str,
    max_running_per_user: int,
    send: Callable[[str], None],
) -> list[str]:
    """Send the tasks of ``owner_id``'s queued runs not sent yet that the per-user limit
    allows (after a slice: usually the run itself, or with a limit the owner's next run
    in turn; after a run's end: the owner's run waiting for its slot), and record them;
    if the broker cannot be reached they stay unsent, and the server's sweep sends
    them later. The ids sent."""
    with factory() as session:
        run_ids = dispatch.to_dispatch(
            session=session,
            sent_before=None,
            max_running_per_user=max_running_per_user,
            owner_id=owner_id,
        )
    sent: list[str] = []
    for run_id in run_ids:
        try:
            send(run_id)
        except Exception:
            log.exception("run %s: could not send its next slice; the server will", run_id)
            break
        sent.append(run_id)
    if sent:
        with transaction(factory) as session:
            dispatch.mark_dispatched(session=session, run_ids=sent)
    return sent
