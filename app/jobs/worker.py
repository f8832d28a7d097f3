"""A worker: claims queued runs from the database and trains them with ``core``.

The same ``Worker`` runs in a worker process (``process_main``, production) or
in a thread (tests). It never speaks HTTP: everything goes through the database.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from app.db import runs as run_store
from app.db.datasets import load_dataset_arrays
from app.db.engine import make_engine, make_session_factory, transaction
from core.data import Dataset
from core.stopping import Stop

log = logging.getLogger("annlab.worker")

#: Seconds between two reads of ``cancel_requested`` during training.
CANCEL_POLL_SECONDS = 0.2
#: Seconds between two progress writes when epochs are fast (the last is always written).
FLUSH_SECONDS = 0.25
#: Seconds between heartbeats while a long epoch runs.
HEARTBEAT_SECONDS = 5.0
#: Idle poll of the queue when no wake-up signal comes.
IDLE_POLL_SECONDS = 0.3


class EventLike(Protocol):
    def wait(self, timeout: float | None = None) -> bool: ...
    def set(self) -> None: ...
    def clear(self) -> None: ...
    def is_set(self) -> bool: ...


def new_worker_id() -> str:
    """``host:pid:token`` — the host and pid of the server that owns the worker."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def load_training_data(session: Session, dataset_id: str) -> Dataset | None:
    from core.datasets import BUILTIN_DATASETS, load_builtin

    if dataset_id in BUILTIN_DATASETS:
        return load_builtin(dataset_id)
    return load_dataset_arrays(session=session, dataset_id=dataset_id)


class Worker:
    def __init__(
        self,
        *,
        factory: sessionmaker[Session],
        worker_id: str,
        checkpoint_seconds: float,
        max_run_seconds: float,
        stop_requested: Callable[[], bool],
        max_running_per_user: int = 0,
    ) -> None:
        self.factory = factory
        self.max_running_per_user = max_running_per_user
        self.worker_id = worker_id
        self.checkpoint_seconds = checkpoint_seconds
        self.max_run_seconds = max_run_seconds
        self.stop_requested = stop_requested

    # ------------------------------------------------------------------ the loop

    def loop(self, wake: EventLike) -> None:
        while not self.stop_requested():
            try:
                with transaction(self.factory) as session:
                    run_id = run_store.claim_next(
                        session=session,
                        worker_id=self.worker_id,
                        max_running_per_user=self.max_running_per_user,
                    )
            except Exception:
                log.exception("worker %s could not claim a run", self.worker_id)
                run_id = None
                time.sleep(1.0)
            if run_id is None:
                wake.wait(IDLE_POLL_SECONDS)
                wake.clear()
                continue
            try:
                self.train_run(run_id)
            except Exception:
                log.exception("worker %s failed while handling run %s", self.worker_id, run_id)
                time.sleep(0.5)

    # ------------------------------------------------------------------ one run

    def train_run(self, run_id: str) -> None:
        job = _Job(self, run_id)
        job.run()


class _Job:
    """The callbacks and bookkeeping of one run on one worker."""

    def __init__(self, worker: Worker, run_id: str) -> None:
        self.worker = worker
        self.factory = worker.factory
        self.worker_id = worker.worker_id
        self.run_id = run_id
        self.pending: list[dict[str, Any]] = []
        self.last_flush = 0.0
        self.last_poll = 0.0
        self.last_heartbeat = time.monotonic()
        self.started = time.monotonic()
        self.cause: str | None = None  # why should_stop said yes

    # -- callbacks of core.training.train

    def on_epoch(self, metrics: Any) -> None:
        entry = metrics.as_dict() if hasattr(metrics, "as_dict") else dict(vars(metrics))
        self.pending.append(entry)
        if time.monotonic() - self.last_flush >= FLUSH_SECONDS:
            with transaction(self.factory) as session:
                self._flush(session)

    def should_stop(self) -> Stop | None:
        """CANCEL ends the training; PAUSE (a shutdown) makes it return a checkpoint."""
        if self.cause is None:
            self._poll()
        if self.cause == "shutdown":
            return Stop.PAUSE
        return Stop.CANCEL if self.cause is not None else None

    def _poll(self) -> None:
        now = time.monotonic()
        if self.worker.stop_requested():
            self.cause = "shutdown"
        elif self.worker.max_run_seconds and now - self.started > self.worker.max_run_seconds:
            self.cause = "timeout"
        elif now - self.last_poll >= CANCEL_POLL_SECONDS:
            self.last_poll = now
            with self.factory() as session:
                owned, cancel = run_store.poll_run(
                    session=session, run_id=self.run_id, worker_id=self.worker_id
                )
            if not owned:
                self.cause = "lost"
            elif cancel:
                self.cause = "cancel"
            elif now - self.last_heartbeat >= HEARTBEAT_SECONDS:
                with transaction(self.factory) as session:
                    self._flush(session)

    def on_checkpoint(self, checkpoint: Any) -> None:
        data = checkpoint.to_bytes()
        with transaction(self.factory) as session:
            self._flush(session)
            run_store.save_checkpoint(
                session=session,
                run_id=self.run_id,
                worker_id=self.worker_id,
                epoch=int(checkpoint.epoch),
                step=int(checkpoint.step),
                data=data,
            )

    def _flush(self, session: Session) -> None:
        owned = run_store.record_progress(
            session=session, run_id=self.run_id, worker_id=self.worker_id, epochs=self.pending
        )
        self.pending = []
        now = time.monotonic()
        self.last_flush = self.last_heartbeat = now
        if not owned:
            self.cause = "lost"

    # -- the run

    def run(self) -> None:
        from core.specs import RunSpec

        try:
            with transaction(self.factory) as session:
                run_store.rewind_to_checkpoint(session=session, run_id=self.run_id)
                row = run_store.get_run(session=session, run_id=self.run_id, owner_id=None)
                if row is None:
                    return
                spec_json, dataset_id = row.spec, row.dataset_id
                checkpoint_row = run_store.load_checkpoint(session=session, run_id=self.run_id)
                checkpoint_bytes = checkpoint_row.data if checkpoint_row is not None else None
            with self.factory() as session:
                data = load_training_data(session, dataset_id)
            if data is None:
                self._finish(
                    status="failed",
                    stop_reason="error",
                    error=f"dataset {dataset_id!r} no longer exists",
                )
                return
            spec = RunSpec.model_validate(spec_json)
            resume = self._load_checkpoint(checkpoint_bytes)
            result = self._train(spec, data, resume)
        except Exception as exc:
            log.error("run %s failed:\n%s", self.run_id, traceback.format_exc())
            self._finish(status="failed", stop_reason="error", error=f"{type(exc).__name__}: {exc}")
            return
        self._conclude(result)

    def _load_checkpoint(self, checkpoint_bytes: bytes | None) -> Any:
        if checkpoint_bytes is None:
            return None
        from core.training import Checkpoint

        try:
            return Checkpoint.from_bytes(checkpoint_bytes)
        except Exception:
            log.warning("run %s: unreadable checkpoint, training from the start", self.run_id)
            return None

    def _train(self, spec: Any, data: Dataset, resume: Any) -> Any:
        from core.training import train

        return train(
            spec,
            data,
            on_epoch=self.on_epoch,
            should_stop=self.should_stop,
            on_checkpoint=self.on_checkpoint,
            checkpoint_seconds=self.worker.checkpoint_seconds,
            resume_from=resume,
        )

    def _conclude(self, result: Any) -> None:
        if self.cause == "lost":
            return
        if result.stop_reason == "paused":
            # A shutdown: store the exact state (taken between two mini-batches) and
            # put the run back in the queue; it resumes from here, bit for bit.
            self._pause(result.checkpoint)
            return
        if self.cause == "timeout" and result.stop_reason == "cancelled":
            limit = self.worker.max_run_seconds
            self._finish(
                status="failed",
                stop_reason="error",
                error=f"exceeded ANNLAB_MAX_RUN_SECONDS={limit:g}: the run was stopped after "
                f"{limit:g} s of training (raise the limit, or 0 = no limit)",
            )
            return
        if result.stop_reason == "cancelled":
            self._finish(status="cancelled", stop_reason="cancelled")
        elif result.stop_reason == "diverged":
            self._finish(
                status="failed",
                stop_reason="diverged",
                error=result.error or "the loss became NaN or infinite",
                best_epoch=result.best_epoch,
            )
        else:
            self._finish(
                status="succeeded",
                stop_reason=result.stop_reason,
                best_epoch=result.best_epoch,
                weights=result.model.to_npz_bytes(),
            )

    def _pause(self, checkpoint: Any) -> None:
        data = checkpoint.to_bytes() if checkpoint is not None else None
        with transaction(self.factory) as session:
            self._flush(session)
            if data is not None:
                run_store.save_checkpoint(
                    session=session,
                    run_id=self.run_id,
                    worker_id=self.worker_id,
                    epoch=int(checkpoint.epoch),
                    step=int(checkpoint.step),
                    data=data,
                )
            run_store.requeue(
                session=session, run_ids=[self.run_id], crashed=False, only_worker=self.worker_id
            )
        log.info(
            "run %s paused for shutdown at epoch %d + %d batches; requeued",
            self.run_id,
            getattr(checkpoint, "epoch", -1),
            getattr(checkpoint, "batch", 0),
        )

    def _finish(self, **outcome: Any) -> None:
        with transaction(self.factory) as session:
            self._flush(session)
            run_store.finish_run(
                session=session, run_id=self.run_id, worker_id=self.worker_id, **outcome
            )


# ------------------------------------------------------------------- process entry


def process_main(
    database_url: str,
    worker_id: str,
    checkpoint_seconds: float,
    max_run_seconds: float,
    wake: EventLike,
    stop: EventLike,
    max_running_per_user: int = 0,
    niceness: int = 0,
) -> None:
    """Entry point of a worker process (spawned by ``LocalProcessExecutor``).

    ``niceness`` (ANNLAB_WORKER_NICE) lowers the process's CPU priority so that
    training, which uses every cycle it gets, does not starve the server's
    requests (predictions) on a busy machine; it costs training nothing when
    there are idle cores."""
    if niceness > 0:
        try:
            os.nice(niceness)
        except OSError:  # not permitted here: train at the normal priority
            log.warning("could not lower the worker's priority (nice %d)", niceness)
    # Ctrl-C reaches the whole process group: the server decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    terminated = {"flag": False}

    def _on_term(_signum: int, _frame: Any) -> None:
        terminated["flag"] = True

    signal.signal(signal.SIGTERM, _on_term)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s %(message)s")
    parent = multiprocessing.parent_process()
    engine = make_engine(database_url)
    factory = make_session_factory(engine)

    def stop_requested() -> bool:
        return terminated["flag"] or stop.is_set() or (parent is not None and not parent.is_alive())

    worker = Worker(
        factory=factory,
        worker_id=worker_id,
        checkpoint_seconds=checkpoint_seconds,
        max_run_seconds=max_run_seconds,
        stop_requested=stop_requested,
        max_running_per_user=max_running_per_user,
    )
    try:
        worker.loop(wake)
    finally:
        engine.dispose()
