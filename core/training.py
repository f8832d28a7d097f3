"""The training loop: batches, metrics, early stopping, stop signals, checkpoints, snapshots.

Random numbers come from one ``numpy.random.default_rng(training.seed)``, drawn in
this order (ENGINE.md):

1. initial weights, layer by layer (W only: biases are 0 and draw nothing;
   ``zeros`` draws nothing). **When the spec gives ``initial_weights`` these draws
   are skipped**, so the split below is the first draw.
2. the validation split (``core.data.split_indices``, only when
   ``validation_split`` > 0).
3. one ``rng.permutation(n_train)`` per epoch when ``shuffle`` is on.

Standardisation uses the training rows' statistics (``core.data.standardization``);
features become ``((x − mean) / std)`` rounded to the spec's dtype.

Mini-batches are consecutive slices of the (shuffled) training rows, the last one
possibly shorter; ``batch_size`` None is the whole set. Step t (from 0) uses
ε_t = ``learning_rate(schedule, ε₀, t)``; the gradient includes λ₁ sign(w) + 2λ₂ w.
BLAS runs on ``training.threads`` threads for the whole call (threadpoolctl, through
``core.blas_threads``: calls in other threads of the process wait while they would
change it), so the same spec gives the same bits whichever process or thread trains it.

After each epoch, with the epoch's final weights: loss and accuracy on the whole
training set (train_loss includes the penalty) and on the validation set
(without it), and ε of the epoch's last step. A NaN or infinite train or
validation loss stops the run at once (``diverged``; that epoch is counted in
``epochs_run`` but not reported to ``on_epoch`` nor kept in ``history``).

``best_epoch`` is the epoch of the lowest monitored loss (val_loss, train_loss
without validation), with or without early stopping (``core.stopping.EarlyStopping``).
Early stopping ends the run after ``patience`` epochs in a row without an
improvement larger than ``min_delta``. With ``restore_best`` a run that keeps its
model (completed, early-stopped, stopped, interrupted) ends with the best epoch's
weights. A cancelled or diverged run keeps its current weights.

``should_stop`` is polled after the first batch and then whenever ≥ 50 ms passed
since the last poll (checked after every batch with ``time.monotonic``). It
answers None to go on, or a ``core.stopping.Stop``:

- ``CANCEL``: return at once, ``stop_reason`` ``cancelled`` (the caller drops the model);
- ``STOP`` / ``INTERRUPT``: return at this mini-batch boundary keeping the model
  (``stopped`` / ``interrupted``; the best weights with ``restore_best``);
- ``PAUSE``: return at once with ``stop_reason`` ``paused`` and
  ``TrainResult.checkpoint`` the exact current state, to resume elsewhere.

``on_checkpoint`` is called at epoch boundaries (not after the last epoch): every
epoch when ``checkpoint_seconds`` is None or 0, else when that many seconds passed
since the last one — and then also between two mini-batches of an epoch, so that
an epoch longer than ``checkpoint_seconds`` is still checkpointed. A checkpoint
taken inside epoch e + 1 has ``epoch`` = e, ``batch`` = the mini-batches of epoch
e + 1 already applied, ``order`` = that epoch's permutation and the RNG state
*after* it was drawn. Resuming from any checkpoint gives the same bits as a run
that was never interrupted.

``on_snapshot(e, model)`` is called after epoch e for every e of the snapshot plan
(``core.snapshots``; default: the spec's own plan without a byte bound), with the
weights and standardisation after that epoch, before any restore_best; with
``include_last``, also once at the end for the last finished epoch (not on a
pause: the resumed run gets there). So the snapshot at epoch e is bit for bit the
final model of the same spec trained with ``epochs: e`` and no early stopping.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]  # no stubs, no py.typed

from core.blas_threads import blas_threads
from core.checkpoint import CHECKPOINT_FORMAT, READABLE_FORMATS, Checkpoint, EpochMetrics
from core.data import Dataset, split_indices, standardization
from core.optimizers import add_penalty_gradient
from core.preparation import EVAL_CHUNK, Array, PreparedRun, evaluate, training_identity
from core.schedules import learning_rate
from core.serialize import TrainedModel
from core.snapshots import SnapshotPlan
from core.specs import RunSpec
from core.stopping import Stop, StopReason

__all__ = [
    "CHECKPOINT_FORMAT",
    "EVAL_CHUNK",
    "POLL_SECONDS",
    "READABLE_FORMATS",
    "Checkpoint",
    "EpochMetrics",
    "TrainResult",
    "split_indices",
    "standardization",
    "train",
    "training_identity",
]

#: Seconds between two polls of ``should_stop``.
POLL_SECONDS = 0.05

#: Scanning the loaded libraries costs milliseconds; done once per process.
_BLAS = ThreadpoolController()


@dataclass
class TrainResult:
    model: TrainedModel
    stop_reason: StopReason
    epochs_run: int
    best_epoch: int | None  # None only when no epoch finished
    history: list[EpochMetrics]
    error: str | None = None
    #: With ``stop_reason`` ``paused``: the state to resume from.
    checkpoint: Checkpoint | None = None


def train(
    spec: RunSpec,
    data: Dataset,
    *,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    should_stop: Callable[[], Stop | None] | None = None,
    on_checkpoint: Callable[[Checkpoint], None] | None = None,
    checkpoint_seconds: float | None = None,
    resume_from: Checkpoint | None = None,
    snapshots: SnapshotPlan | None = None,
    on_snapshot: Callable[[int, TrainedModel], None] | None = None,
) -> TrainResult:
    """Train ``spec`` (normalised by ``check_against_dataset``) on ``data``."""
    with blas_threads(_BLAS, spec.training.threads):
        run = _Run(spec, data, resume_from, snapshots, snapshotting=on_snapshot is not None)
        with np.errstate(all="ignore"):
            reason = run.loop(
                on_epoch=on_epoch,
                should_stop=should_stop,
                on_checkpoint=on_checkpoint,
                checkpoint_seconds=checkpoint_seconds or None,
                on_snapshot=on_snapshot,
            )
        return run.result(reason, on_snapshot)


class _Run(PreparedRun):
    """One call of :func:`train`: the epoch loop over a prepared run, and its result."""

    # --------------------------------------------------------------------- the loop

    def loop(
        self,
        *,
        on_epoch: Callable[[EpochMetrics], None] | None,
        should_stop: Callable[[], Stop | None] | None,
        on_checkpoint: Callable[[Checkpoint], None] | None,
        checkpoint_seconds: float | None,
        on_snapshot: Callable[[int, TrainedModel], None] | None,
    ) -> StopReason:
        """Epochs until the last one or a stop; returns why it ended."""
        training, tracker = self.training, self.tracker
        self.epochs_run = self.start_epoch
        self._next_poll = 0.0  # poll after the first batch
        self._last_checkpoint = time.monotonic()
        for epoch in range(self.start_epoch + 1, training.epochs + 1):
            order: Array | None = None
            first_batch = 0
            if self.resume_batch and epoch == self.start_epoch + 1:
                # the RNG state already follows this epoch's permutation: do not draw it again
                first_batch, order = self.resume_batch, self.resume_order
            elif training.shuffle:
                order = self.rng.permutation(self.n_train)
            if order is not None and self.batch_features is None:
                self._copy_epoch(order)
            signal, batch = self._batches(
                epoch, first_batch, order, should_stop, on_checkpoint, checkpoint_seconds
            )
            if signal is Stop.PAUSE:
                self.paused = self.checkpoint(epoch - 1, batch, order)
                return StopReason.PAUSED
            if signal is not None:
                return _REASONS[signal]
            self.epochs_run = epoch

            metrics = self._measure(epoch)
            if metrics is None:
                self.error = f"loss became NaN/infinite at epoch {epoch}"
                return StopReason.DIVERGED
            self.history.append(metrics)
            monitored = metrics.val_loss if metrics.val_loss is not None else metrics.train_loss
            tracker.update(epoch, monitored, self.network.params)
            if self.epoch_params is not None:
                np.copyto(self.epoch_params, self.network.params)
                self.boundary_epoch = epoch
            if on_snapshot is not None and epoch in self.plan:
                on_snapshot(epoch, self.model(self.network.params.copy()))
            if on_epoch is not None:
                on_epoch(metrics)
            if tracker.exhausted:
                return StopReason.EARLY_STOPPING
            if (
                on_checkpoint is not None
                and epoch < training.epochs
                and (
                    checkpoint_seconds is None
                    or time.monotonic() - self._last_checkpoint >= checkpoint_seconds
                )
            ):
                on_checkpoint(self.checkpoint(epoch, 0, None))
                self._last_checkpoint = time.monotonic()
        return StopReason.COMPLETED

    def _batches(
        self,
        epoch: int,
        first_batch: int,
        order: Array | None,
        should_stop: Callable[[], Stop | None] | None,
        on_checkpoint: Callable[[Checkpoint], None] | None,
        checkpoint_seconds: float | None,
    ) -> tuple[Stop | None, int]:
        """The mini-batches of one epoch from ``first_batch``: (a stop signal or None,
        the mini-batches of the epoch applied)."""
        network, optimizer = self.network, self.optimizer
        spec = self.spec.optimizer
        l1, l2, schedule, base_rate = spec.l1, spec.l2, spec.schedule, spec.learning_rate
        params, grads, mask = network.params, network.grads, network.weight_mask
        batches = self._batch_source(order)
        n_train, batch_size = self.n_train, self.batch_size
        # Between two mini-batches only when checkpoints are spaced in time (an epoch
        # boundary comes soon enough when they are taken every epoch).
        mid_epoch = on_checkpoint is not None and checkpoint_seconds is not None
        timed = should_stop is not None or mid_epoch
        batch = first_batch
        for start in range(first_batch * batch_size, n_train, batch_size):
            stop = start + batch_size
            network.gradient(*batches(start, stop))
            if l1 or l2:
                add_penalty_gradient(params, grads, l1, l2, mask)
            optimizer.step(params, grads, learning_rate(schedule, base_rate, optimizer.t))
            batch += 1
            if not timed:
                continue
            now = time.monotonic()
            if should_stop is not None and now >= self._next_poll:
                answer = should_stop()
                if answer:
                    if not isinstance(answer, Stop):
                        raise TypeError(f"should_stop must answer a Stop or None, not {answer!r}")
                    return answer, batch
                self._next_poll = time.monotonic() + POLL_SECONDS
            if (
                on_checkpoint is not None
                and checkpoint_seconds is not None
                and stop < n_train
                and now - self._last_checkpoint >= checkpoint_seconds
            ):
                on_checkpoint(self.checkpoint(epoch - 1, batch, order))
                self._last_checkpoint = time.monotonic()
        return None, batch

    def _copy_epoch(self, order: Array) -> None:
        """The epoch's rows, in ``order``, into the epoch buffers (a small shuffled set)."""
        train, features, targets = self.train_part, self.epoch_features, self.epoch_targets
        assert train.targets is not None and features is not None and targets is not None
        np.take(train.features, order, axis=0, out=features, mode="clip")
        np.take(train.targets, order, axis=0, out=targets, mode="clip")

    def _batch_source(self, order: Array | None) -> Callable[[int, int], tuple[Array, Array]]:
        """(features, targets) of the epoch's rows ``start:stop``: slices of the epoch's
        buffers, or, for a large shuffled set, those rows of ``order`` gathered into the
        batch buffers (see ``PreparedRun._prepare_rows``). Either way the same values."""
        features, targets = self.epoch_features, self.epoch_targets
        if features is not None and targets is not None:
            return lambda start, stop: (features[start:stop], targets[start:stop])
        source, x_buffer, t_buffer = self.train_part, self.batch_features, self.batch_targets
        assert order is not None and x_buffer is not None and t_buffer is not None
        if source.targets is None:  # a class set: targets looked up from the labels
            assert source.table is not None and source.labels is not None
            lookup, keys = source.table, source.labels
        else:
            lookup, keys = source.targets, None

        def gathered(start: int, stop: int) -> tuple[Array, Array]:
            rows = order[start:stop]
            n = len(rows)
            x = np.take(source.features, rows, axis=0, out=x_buffer[:n], mode="clip")
            wanted = rows if keys is None else keys[rows]
            t = np.take(lookup, wanted, axis=0, out=t_buffer[:n], mode="clip")
            return x, t

        return gathered

    def _measure(self, epoch: int) -> EpochMetrics | None:
        """The metrics after ``epoch``, or None when a loss is not finite (diverged)."""
        network, spec = self.network, self.spec.optimizer
        chunk = max(self.batch_size, EVAL_CHUNK)
        train_loss, train_accuracy = evaluate(network, self.train_part, chunk)
        train_loss += network.penalty(spec.l1, spec.l2)
        val_loss = val_accuracy = None
        if self.val_part is not None:
            val_loss, val_accuracy = evaluate(network, self.val_part, chunk)
        if not math.isfinite(train_loss) or (val_loss is not None and not math.isfinite(val_loss)):
            return None
        return EpochMetrics(
            epoch=epoch,
            epochs=self.training.epochs,
            step=self.optimizer.t,
            train_loss=train_loss,
            val_loss=val_loss,
            train_accuracy=train_accuracy,
            val_accuracy=val_accuracy,
            learning_rate=learning_rate(spec.schedule, spec.learning_rate, self.optimizer.t - 1),
        )

    def result(
        self,
        reason: StopReason,
        on_snapshot: Callable[[int, TrainedModel], None] | None,
    ) -> TrainResult:
        params = self.network.params
        if (
            on_snapshot is not None
            and reason is not StopReason.PAUSED
            and self.epoch_params is not None
            and self.boundary_epoch >= 1
            and self.boundary_epoch not in self.plan
        ):
            on_snapshot(self.boundary_epoch, self.model(self.epoch_params.copy()))
        if reason in _KEEPS_MODEL and self.training.early_stopping is not None:
            self.tracker.restore_best(params)
        return TrainResult(
            model=self.model(params.copy()),
            stop_reason=reason,
            epochs_run=self.epochs_run,
            best_epoch=self.tracker.best_epoch,
            history=self.history,
            error=self.error,
            checkpoint=self.paused,
        )


_REASONS = {
    Stop.CANCEL: StopReason.CANCELLED,
    Stop.STOP: StopReason.STOPPED,
    Stop.INTERRUPT: StopReason.INTERRUPTED,
}
#: Endings whose model is the run's result: with restore_best, the best weights.
_KEEPS_MODEL = frozenset(
    {
        StopReason.COMPLETED,
        StopReason.EARLY_STOPPING,
        StopReason.STOPPED,
        StopReason.INTERRUPTED,
    }
)
