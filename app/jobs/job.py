"""One run on one worker: the callbacks ``core.training.train`` calls (progress,
checkpoints, snapshots, ``should_stop``) and the bookkeeping of the run's outcome.

A ``Job`` lives for one stretch of training: to the run's end, or to a pause (a
shutdown, the end of a slice), after which another ``Job`` (maybe on another
machine) resumes the run from its checkpoint. What must hold across stretches is
in the database, among it ``runs.trained_seconds``: the seconds trained by every
earlier stretch, so that ANNLAB_MAX_RUN_SECONDS bounds the run, not the stretch.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from app.db import progress, worker_reads
from app.db import runs as run_store
from app.db import snapshots as snapshot_store
from app.db.engine import transaction
from app.db.retry import retry_locked
from app.jobs.overhead import JobTimers
from core.data import Dataset
from core.serialize import TrainedModel
from core.snapshots import plan_snapshots
from core.specs import RunSpec
from core.stopping import RunStatus, Stop, StopReason
from core.training import Checkpoint, EpochMetrics, TrainResult, train

if TYPE_CHECKING:
    from app.jobs.worker import Worker

log = logging.getLogger("annlab.worker")

#: Seconds between two reads of ``cancel_requested``/``stop_requested`` during training.
CANCEL_POLL_SECONDS = 0.2
#: Seconds between two progress writes when epochs are fast (the last is always written).
FLUSH_SECONDS = 0.25
#: Seconds between heartbeats while a long epoch runs.
HEARTBEAT_SECONDS = 5.0


class Cause(StrEnum):
    """Why a worker's ``should_stop`` said yes."""

    SHUTDOWN = "shutdown"  # the pool stops: pause, requeue
    TIMEOUT = "timeout"  # ANNLAB_MAX_RUN_SECONDS: end early, keep the model
    YIELD = "yield"  # trained a slice while another user's run waits: pause, requeue behind
    STOP = "stop"  # the user asked to stop and keep the model
    CANCEL = "cancel"  # the user asked to cancel
    LOST = "lost"  # the run is no longer ours (deleted, requeued by recovery)


#: What ``should_stop`` answers for each cause: a pause returns a checkpoint, a stop or
#: the time limit keep the model, the rest drop it.
STOP_FOR_CAUSE = {
    Cause.SHUTDOWN: Stop.PAUSE,
    Cause.YIELD: Stop.PAUSE,
    Cause.TIMEOUT: Stop.INTERRUPT,
    Cause.STOP: Stop.STOP,
    Cause.CANCEL: Stop.CANCEL,
    Cause.LOST: Stop.CANCEL,
}


class Job:
    """The callbacks and bookkeeping of one run on one worker."""

    def __init__(self, worker: Worker, run_id: str) -> None:
        self.worker = worker
        self.config = worker.config
        self.factory = worker.factory
        self.worker_id = worker.worker_id
        self.run_id = run_id
        self.pending: list[dict[str, Any]] = []
        #: (epoch, .npz) of snapshots taken and not yet written: written with the metrics
        self.snapshots: list[tuple[int, bytes]] = []
        self.n_parameters = 0
        #: The first epoch is written like the others, once ``FLUSH_SECONDS`` have passed
        #: since the claim: a run shorter than that (an iris run: 45 ms) is written once,
        #: with its outcome, not in a second transaction after epoch 1 (3–4 ms each).
        self.last_flush = time.monotonic()
        self.last_poll = 0.0
        self.last_heartbeat = time.monotonic()
        #: When this stretch of training began: the time limit counts from here, on top
        #: of ``trained_before`` (the setup is the run's cost too).
        self.started = time.monotonic()
        #: ``runs.trained_seconds`` when this stretch began: the earlier slices and resumes.
        self.trained_before = 0.0
        #: The first ``should_stop`` (after the first mini-batch): a slice counts from
        #: here, so the setup (reading the run, its dataset and checkpoint: slow on a
        #: busy machine) never eats a slice and each slice moves the run on.
        self.slice_started: float | None = None
        self.cause: Cause | None = None
        self.owner_id = ""
        #: The run's ``started_at`` (read at setup: the outcome's duration counts from it).
        self.started_at: datetime | None = None
        self.timers = JobTimers()
        self.epochs = 0

    # -- callbacks of core.training.train

    def on_snapshot(self, epoch: int, model: TrainedModel) -> None:
        """Held with the pending epochs: an epoch's metrics and snapshot share a
        transaction (the next flush; the last-epoch one goes with the outcome)."""
        with self.timers.timing("snapshots"):
            self.snapshots.append((epoch, model.to_npz_bytes()))

    def on_epoch(self, metrics: EpochMetrics) -> None:
        """Written every ``FLUSH_SECONDS`` at most, snapshots included: a transaction
        per snapshot epoch cost more than the training of a small run (12 of W1's 101
        epochs have one under the default ``log`` plan). A crash loses nothing: the
        resumed run trains those epochs again from the checkpoint and writes both."""
        self.epochs += 1
        self.pending.append(metrics.as_dict())
        if time.monotonic() - self.last_flush >= FLUSH_SECONDS:
            with self.timers.timing("snapshots" if self.snapshots else "writes"):
                self._write(self._flush)

    def should_stop(self) -> Stop | None:
        """``STOP_FOR_CAUSE`` of why the run must end early (a pause on shutdown and at
        the end of a slice returns a checkpoint); None: keep training. Between two reads
        of the run's row (every ``CANCEL_POLL_SECONDS``) this costs two clock reads."""
        if self.cause is None:
            self._poll()
        if self.cause is None:
            return None
        return STOP_FOR_CAUSE[self.cause]

    def trained_seconds(self, now: float | None = None) -> float:
        """Seconds the run has trained in all: the earlier stretches and this one."""
        return self.trained_before + ((time.monotonic() if now is None else now) - self.started)

    def _over_time(self, now: float) -> bool:
        """ANNLAB_MAX_RUN_SECONDS is reached, counting every earlier slice and resume."""
        limit = self.config.max_run_seconds
        return bool(limit) and self.trained_seconds(now) > limit

    def _poll(self) -> None:
        now = time.monotonic()
        if self.slice_started is None:
            self.slice_started = now
        if self.worker.stop_requested():
            self.cause = Cause.SHUTDOWN
        elif self._over_time(now):
            self.cause = Cause.TIMEOUT
        elif now - self.last_poll >= CANCEL_POLL_SECONDS:
            self.last_poll = now
            sliced = (
                self.config.slice_seconds and now - self.slice_started >= self.config.slice_seconds
            )
            # Timed here, not around every call: the clock reads between two polls cost
            # less than a timer (a fast run asks after each of its 800 mini-batches).
            with self.timers.timing("polls"), self.factory() as session:  # a read: no lock
                poll = worker_reads.poll_run(
                    session=session, run_id=self.run_id, worker_id=self.worker_id
                )
                waiting = bool(sliced) and (
                    self.config.slice_always
                    or run_store.another_user_waits(
                        session=session,
                        owner_id=self.owner_id,
                        max_running_per_user=self.config.max_running_per_user,
                    )
                )
            if not poll.owned:
                self.cause = Cause.LOST
            elif poll.cancel:
                self.cause = Cause.CANCEL
            elif poll.stop:
                self.cause = Cause.STOP
            elif waiting:
                self.cause = Cause.YIELD
            elif now - self.last_heartbeat >= HEARTBEAT_SECONDS:
                with self.timers.timing("snapshots" if self.snapshots else "writes"):
                    self._write(self._flush)

    def on_checkpoint(self, checkpoint: Checkpoint) -> None:
        def write(session: Session) -> None:
            self._flush(session)
            self._save(session, checkpoint)

        with self.timers.timing("checkpoints"):
            self._write(write, f"its checkpoint at epoch {checkpoint.epoch}")

    def _write(self, work: Callable[[Session], None], what: str = "its progress") -> None:
        """``work`` in one write transaction, retried while the database is locked or
        its disk is full (a busy database or a full disk must not fail a run that
        trains on: it waits for space); the pending epochs and snapshots are forgotten
        only once committed."""
        flushed, flushed_snapshots = len(self.pending), len(self.snapshots)
        if self.snapshots:
            what += f" and snapshot(s) of epoch {', '.join(str(e) for e, _ in self.snapshots)}"

        def attempt() -> None:
            with transaction(self.factory) as session:
                work(session)

        retry_locked(attempt, what=f"{what} (run {self.run_id})")
        del self.pending[:flushed]
        del self.snapshots[:flushed_snapshots]

    def _save(self, session: Session, checkpoint: Checkpoint) -> None:
        progress.save_checkpoint(
            session=session,
            run_id=self.run_id,
            worker_id=self.worker_id,
            epoch=int(checkpoint.epoch),
            step=int(checkpoint.step),
            data=checkpoint.to_bytes(),
        )

    def _flush(self, session: Session) -> None:
        """Record the pending epochs (``_write`` drops them once committed)."""
        owned = progress.record_progress(
            session=session,
            run_id=self.run_id,
            worker_id=self.worker_id,
            epochs=self.pending,
            trained_seconds=self.trained_seconds(),
        )
        if owned:
            snapshot_store.save_snapshots(
                session=session, run_id=self.run_id, snapshots=self.snapshots
            )
        self.last_flush = self.last_heartbeat = time.monotonic()
        if not owned:
            self.cause = Cause.LOST

    # -- the run

    def run(self) -> None:
        try:
            self._run()
        finally:
            log.info("run %s timers: epochs=%d %s", self.run_id, self.epochs, self.timers.line())

    def _run(self) -> None:
        setup = time.monotonic()
        try:
            with self.factory() as session:  # a read: most claims are of fresh runs
                claimed = worker_reads.read_claimed(session=session, run_id=self.run_id)
                if claimed is None:
                    return
                data = self.worker.datasets.get(session, claimed.dataset_id)
            if claimed.rewind:  # a resumed run: forget what comes after its checkpoint
                with transaction(self.factory) as session:
                    progress.rewind_to_checkpoint(session=session, run_id=self.run_id)
            self.owner_id, self.n_parameters = claimed.owner_id, claimed.n_parameters
            self.started_at, self.trained_before = claimed.started_at, claimed.trained_seconds
            if data is None:
                self._finish(
                    status=RunStatus.FAILED,
                    stop_reason=StopReason.ERROR,
                    error=f"dataset {claimed.dataset_id!r} no longer exists",
                )
                return
            spec = RunSpec.model_validate(claimed.spec)
            resume = self._load_checkpoint(claimed.checkpoint)
            self.timers.setup += time.monotonic() - setup
            with self.timers.timing("train"):
                result = self._train(spec, data, resume)
        except Exception as exc:
            log.error("run %s failed:\n%s", self.run_id, traceback.format_exc())
            self._finish(
                status=RunStatus.FAILED,
                stop_reason=StopReason.ERROR,
                error=f"{type(exc).__name__}: {exc}",
            )
            return
        with self.timers.timing("finish"):
            self._conclude(result)

    def _load_checkpoint(self, checkpoint_bytes: bytes | None) -> Checkpoint | None:
        if checkpoint_bytes is None:
            return None
        try:
            return Checkpoint.from_bytes(checkpoint_bytes)
        except Exception:
            log.warning("run %s: unreadable checkpoint, training from the start", self.run_id)
            return None

    def _train(self, spec: RunSpec, data: Dataset, resume: Checkpoint | None) -> TrainResult:
        # The plan as at submission (a resumed run keeps the one its checkpoint carries).
        plan = plan_snapshots(
            spec, n_parameters=self.n_parameters, max_bytes=self.config.max_snapshot_bytes
        )
        return train(
            spec,
            data,
            on_epoch=self.on_epoch,
            should_stop=self.should_stop,
            on_checkpoint=self.on_checkpoint,
            checkpoint_seconds=self.config.checkpoint_seconds,
            resume_from=resume,
            snapshots=plan,
            on_snapshot=self.on_snapshot,
        )

    def _conclude(self, result: TrainResult) -> None:
        if self.cause is Cause.LOST:
            return
        if result.stop_reason == StopReason.PAUSED:
            # A shutdown or the end of a slice: store the exact state (taken between two
            # mini-batches) and put the run back in the queue (after a slice: behind the
            # runs waiting); it resumes from here, bit for bit.
            self._pause(result.checkpoint)
        elif result.stop_reason == StopReason.INTERRUPTED:
            # ANNLAB_MAX_RUN_SECONDS: the model so far is kept; the error says why it ended.
            limit = self.config.max_run_seconds
            self._finish(
                status=RunStatus.SUCCEEDED,
                stop_reason=StopReason.INTERRUPTED,
                error=f"ANNLAB_MAX_RUN_SECONDS={limit:g}: training was ended after {limit:g} s "
                f"at epoch {result.epochs_run}; the model so far is kept (raise the limit, or "
                "0 = no limit)",
                best_epoch=result.best_epoch,
                weights=result.model.to_npz_bytes(),
            )
        elif result.stop_reason == StopReason.CANCELLED:
            self._finish(status=RunStatus.CANCELLED, stop_reason=StopReason.CANCELLED)
        elif result.stop_reason == StopReason.DIVERGED:
            self._finish(
                status=RunStatus.FAILED,
                stop_reason=StopReason.DIVERGED,
                error=result.error or "the loss became NaN or infinite",
                best_epoch=result.best_epoch,
            )
        else:
            self._finish(
                status=RunStatus.SUCCEEDED,
                stop_reason=StopReason(result.stop_reason),
                best_epoch=result.best_epoch,
                weights=result.model.to_npz_bytes(),
            )

    def _pause(self, checkpoint: Checkpoint | None) -> None:
        behind = self.cause is Cause.YIELD

        def write(session: Session) -> None:
            self._flush(session)
            if checkpoint is not None:
                self._save(session, checkpoint)
            progress.requeue(
                session=session,
                run_ids=[self.run_id],
                crashed=False,
                only_worker=self.worker_id,
                behind=behind,
            )

        self._write(write)
        log.info(
            "run %s paused %s at epoch %d + %d batches; requeued",
            self.run_id,
            "after its slice (another user waits)" if behind else "for shutdown",
            checkpoint.epoch if checkpoint is not None else -1,
            checkpoint.batch if checkpoint is not None else 0,
        )

    def _finish(
        self,
        *,
        status: RunStatus,
        stop_reason: StopReason,
        error: str | None = None,
        best_epoch: int | None = None,
        weights: bytes | None = None,
    ) -> None:
        def write(session: Session) -> None:
            owned = progress.finish_run(
                session=session,
                run_id=self.run_id,
                worker_id=self.worker_id,
                status=status,
                stop_reason=stop_reason,
                error=error,
                best_epoch=best_epoch,
                weights=weights,
                epochs=self.pending,
                trained_seconds=self.trained_seconds(),
                started_at=self.started_at,
            )
            if owned:
                snapshot_store.save_snapshots(
                    session=session, run_id=self.run_id, snapshots=self.snapshots
                )

        self._write(write, f"its outcome ({status})")
