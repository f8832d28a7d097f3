"""The training loop: batches, metrics, early stopping, cancellation, checkpoints.

Random numbers come from one ``numpy.random.default_rng(training.seed)``, drawn in
this order (ENGINE.md):

1. initial weights, layer by layer (W only: biases are 0 and draw nothing;
   ``zeros`` draws nothing). **When the spec gives ``initial_weights`` these draws
   are skipped**, so the split below is the first draw.
2. the validation split (only when ``validation_split`` > 0):
   - classification, stratified: for each class in class-index order, one
     ``rng.permutation`` of that class's rows (always drawn, even for a class that
     gives no validation row); the first q_c rows of it are validation. The quotas
     q_c make the total exactly ``core.specs.validation_size(n, split)``
     (round(split·n), at least 1): q_c = ⌊split·n_c⌋, and the rows still missing
     go one each to the classes with the largest fractional part split·n_c − ⌊split·n_c⌋
     (ties: lower class index first).
   - regression: one ``rng.permutation(n)``; its first ``validation_size`` rows
     are validation.
   Training and validation rows are then kept in their original (sorted) order.
3. one ``rng.permutation(n_train)`` per epoch when ``shuffle`` is on.

Standardisation uses the training rows' mean and standard deviation (population,
ddof = 0; a deviation of 0 counts as 1), computed in float64; features become
``((x − mean) / std)`` rounded to the spec's dtype.

Mini-batches are consecutive slices of the (shuffled) training rows, the last one
possibly shorter; ``batch_size`` None is the whole set. Step t (from 0) uses
ε_t = ``learning_rate(schedule, ε₀, t)``; the gradient includes λ₁ sign(w) + 2λ₂ w.

After each epoch, with the epoch's final weights: loss and accuracy on the whole
training set (train_loss includes the penalty) and on the validation set
(without it), and ε of the epoch's last step. A NaN or infinite train or
validation loss stops the run at once (``diverged``; that epoch is counted in
``epochs_run`` but not reported to ``on_epoch`` nor kept in ``history``, as its
numbers are not finite).

Early stopping watches val_loss (train_loss without validation): an epoch improves
when its loss < best − min_delta; the run stops after ``patience`` epochs in a row
without improvement. ``best_epoch`` is the last improving epoch (tracked with
min_delta = 0 when early stopping is off). With ``restore_best`` the run ends
(early-stopped or completed) with the best epoch's weights. A cancelled or
diverged run keeps its current weights.

``should_stop`` is polled after the first batch and then whenever ≥ 50 ms passed
since the last poll (checked after every batch with ``time.monotonic``). A truthy
answer cancels the run (``stop_reason="cancelled"``, the current weights), except
the string ``"pause"`` (``PAUSE``): training then returns at once with
``stop_reason="paused"`` and ``TrainResult.checkpoint`` holding the exact current
state, taken between two mini-batches (the caller stores it and resumes later).

``on_checkpoint`` is called at epoch boundaries (not after the last epoch): every
epoch when ``checkpoint_seconds`` is None or 0, else when that many seconds passed
since the last one — and then also between two mini-batches of an epoch, so that
an epoch longer than ``checkpoint_seconds`` is still checkpointed. A checkpoint
taken inside epoch e + 1 has ``epoch`` = e (the epochs finished), ``batch`` = the
number of mini-batches of epoch e + 1 already applied (0 at an epoch boundary),
``order`` = that epoch's permutation (None without shuffle) and the RNG state
*after* that permutation was drawn. Resuming from any checkpoint gives the same
bits as a run that was never interrupted.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from core.data import Dataset
from core.errors import CheckpointError, DatasetError
from core.network import Network, encode_targets, predict_classes
from core.optimizers import add_penalty_gradient, make_optimizer
from core.schedules import learning_rate
from core.serialize import TrainedModel, load_npz, read_text, save_npz, text_array
from core.specs import RunSpec, validation_size

StopReason = Literal["completed", "early_stopping", "cancelled", "diverged", "paused"]

#: What ``should_stop`` returns to pause (checkpoint and return) rather than cancel.
PAUSE = "pause"

#: Seconds between two polls of ``should_stop``.
POLL_SECONDS = 0.05
#: Rows per forward pass when the metrics are computed (at least the batch size).
EVAL_CHUNK = 1024
CHECKPOINT_FORMAT = "annlab.checkpoint/2"
#: Older formats still read: /1 had no mid-epoch position (always an epoch boundary).
#: A reader that only knows /1 refuses /2 instead of misreading a mid-epoch checkpoint.
READABLE_FORMATS = ("annlab.checkpoint/1", CHECKPOINT_FORMAT)
#: A run whose largest per-step matrix product (batch × n_in × units) has fewer
#: multiply-adds than this runs BLAS on one thread: for such sizes a second
#: thread costs more in synchronisation than it saves (about 7% slower for a
#: 64-128-128-10 network at batch 64 on two idle cores), and it collapses when
#: the cores are shared with other processes (the API, other workers): ~10x
#: slower there, as OpenBLAS threads wait for each other. Larger products keep
#: BLAS's default, so their bits do not change. (docs/performance.md)
SMALL_GEMM = 1 << 23

try:  # optional: without threadpoolctl, BLAS keeps its default number of threads
    from threadpoolctl import ThreadpoolController

    _BLAS = ThreadpoolController()
except Exception:  # pragma: no cover - not installed, or an unreadable library
    _BLAS = None


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int  # 1-based
    epochs: int
    step: int  # optimizer steps so far
    train_loss: float
    val_loss: float | None
    train_accuracy: float | None
    val_accuracy: float | None
    learning_rate: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    model: TrainedModel
    stop_reason: StopReason
    epochs_run: int
    best_epoch: int | None
    history: list[EpochMetrics]
    error: str | None = None
    #: With ``stop_reason="paused"``: the state to resume from.
    checkpoint: Checkpoint | None = None


@dataclass
class Checkpoint:
    """The full state of a run after ``epoch`` epochs and ``batch`` mini-batches of the next.

    ``batch`` is 0 at an epoch boundary; inside an epoch, ``order`` is that epoch's
    permutation of the training rows (None without shuffle) and ``rng_state`` the
    generator's state after it was drawn.
    """

    spec_json: str
    epoch: int
    step: int
    params: np.ndarray
    optimizer_state: dict[str, np.ndarray]
    rng_state: dict
    train_index: np.ndarray
    val_index: np.ndarray
    mean: np.ndarray | None
    std: np.ndarray | None
    best_loss: float
    best_epoch: int | None
    wait: int
    best_params: np.ndarray | None
    history: list[EpochMetrics] = field(default_factory=list)
    batch: int = 0
    order: np.ndarray | None = None

    def to_bytes(self) -> bytes:
        """An ``.npz`` without pickle (RNG state and scalars as JSON text)."""
        meta = {
            "epoch": self.epoch,
            "step": self.step,
            "best_loss": self.best_loss,  # repr round-trips; inf as Infinity
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "history": [metrics.as_dict() for metrics in self.history],
            "batch": self.batch,
        }
        arrays = {
            "format": text_array(CHECKPOINT_FORMAT),
            "spec": text_array(self.spec_json),
            "meta": text_array(json.dumps(meta)),
            "rng_state": text_array(json.dumps(self.rng_state)),
            "params": self.params,
            "train_index": self.train_index,
            "val_index": self.val_index,
        }
        for name, value in self.optimizer_state.items():
            arrays[f"optimizer.{name}"] = value
        if self.mean is not None and self.std is not None:
            arrays["mean"], arrays["std"] = self.mean, self.std
        if self.best_params is not None:
            arrays["best_params"] = self.best_params
        if self.order is not None:
            arrays["order"] = self.order
        return save_npz(arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        """Read :meth:`to_bytes` (``allow_pickle=False``)."""
        arrays = load_npz(data)
        if read_text(arrays, "format") not in READABLE_FORMATS:
            raise CheckpointError("not an annlab checkpoint")
        try:
            meta = json.loads(read_text(arrays, "meta"))
            rng_state = json.loads(read_text(arrays, "rng_state"))
            return cls(
                spec_json=read_text(arrays, "spec"),
                epoch=int(meta["epoch"]),
                step=int(meta["step"]),
                params=arrays["params"],
                optimizer_state={
                    name.removeprefix("optimizer."): value
                    for name, value in arrays.items()
                    if name.startswith("optimizer.")
                },
                rng_state=rng_state,
                train_index=arrays["train_index"],
                val_index=arrays["val_index"],
                mean=arrays.get("mean"),
                std=arrays.get("std"),
                best_loss=float(meta["best_loss"]),
                best_epoch=meta["best_epoch"],
                wait=int(meta["wait"]),
                best_params=arrays.get("best_params"),
                history=[EpochMetrics(**metrics) for metrics in meta["history"]],
                batch=int(meta.get("batch", 0)),
                order=arrays.get("order"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"incomplete checkpoint: {error}") from None


# ------------------------------------------------------------------ data prep


def split_indices(
    data: Dataset, split: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows), each sorted; draws as the module docstring says."""
    n_samples = data.n_samples
    n_val = validation_size(n_samples, split)
    if n_val == 0:
        return np.arange(n_samples, dtype=np.int64), np.empty(0, dtype=np.int64)
    if data.task == "classification":
        labels = np.asarray(data.targets, dtype=np.int64)
        n_classes = data.n_classes or int(labels.max()) + 1
        members = [np.flatnonzero(labels == label) for label in range(n_classes)]
        shares = [split * len(rows) for rows in members]
        quotas = [math.floor(share) for share in shares]
        missing = n_val - sum(quotas)
        by_fraction = sorted(
            range(n_classes), key=lambda label: (-(shares[label] - quotas[label]), label)
        )
        for label in by_fraction[:missing]:
            quotas[label] += 1
        chosen = [
            rng.permutation(rows)[:quota] for rows, quota in zip(members, quotas, strict=True)
        ]
        val_index = np.sort(np.concatenate(chosen)).astype(np.int64)
    else:
        val_index = np.sort(rng.permutation(n_samples)[:n_val]).astype(np.int64)
    is_val = np.zeros(n_samples, dtype=bool)
    is_val[val_index] = True
    return np.flatnonzero(~is_val).astype(np.int64), val_index


def standardization(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation (ddof 0; 0 → 1), float64.

    A column whose sum or squares overflow (|x| near 1e154 and beyond) is computed
    again divided by its largest |x| and scaled back: the same numbers up to rounding,
    finite instead of inf/NaN. Other columns are untouched (same bits as always).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        mean = features.mean(axis=0)
        std = features.std(axis=0)
    overflowed = ~(np.isfinite(mean) & np.isfinite(std))
    if overflowed.any():
        columns = features[:, overflowed]
        scale = np.abs(columns).max(axis=0)
        scaled = columns / scale
        mean[overflowed] = scaled.mean(axis=0) * scale
        std[overflowed] = scaled.std(axis=0) * scale
    std[std == 0] = 1.0
    return mean, std


# ------------------------------------------------------------------ the loop


@dataclass
class _Evaluation:
    features: np.ndarray
    targets: np.ndarray
    labels: np.ndarray | None  # class indices for accuracy


def _evaluate(network: Network, part: _Evaluation, chunk: int) -> tuple[float, float | None]:
    """(mean loss, accuracy or None) over a whole set, in chunks of ``chunk`` rows."""
    n_rows = part.features.shape[0]
    loss_sum = 0.0
    correct = 0
    for start in range(0, n_rows, chunk):
        stop = min(start + chunk, n_rows)
        outputs = network.forward(part.features[start:stop])
        loss_sum += network.loss.value(outputs, part.targets[start:stop]) * (stop - start)
        if part.labels is not None:
            classes = predict_classes(outputs, network.output_activation)
            correct += int(np.count_nonzero(classes == part.labels[start:stop]))
    accuracy = correct / n_rows if part.labels is not None else None
    return loss_sum / n_rows, accuracy


def blas_threads(network: Network, batch_size: int) -> int | None:
    """BLAS threads for training ``network`` on batches of ``batch_size``: 1 for small
    matrix products, None (BLAS's default) otherwise."""
    largest = max(layer.n_inputs * layer.units for layer in network.layers) * batch_size
    return 1 if largest < SMALL_GEMM else None


def _blas_limit(threads: int | None) -> contextlib.AbstractContextManager:
    if threads is None or _BLAS is None:
        return contextlib.nullcontext()
    return _BLAS.limit(limits=threads, user_api="blas")


def train(
    spec: RunSpec,
    data: Dataset,
    *,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    should_stop: Callable[[], bool | str] | None = None,
    on_checkpoint: Callable[[Checkpoint], None] | None = None,
    checkpoint_seconds: float | None = None,
    resume_from: Checkpoint | None = None,
) -> TrainResult:
    """Train ``spec`` (normalised by ``check_against_dataset``) on ``data``."""
    training = spec.training
    optimizer_spec = spec.optimizer
    dtype = np.dtype(spec.dtype)
    network = Network.from_spec(spec, n_inputs=data.n_features)
    optimizer = make_optimizer(optimizer_spec, size=network.size, dtype=dtype)
    rng = np.random.default_rng(training.seed)
    spec_json = spec.model_dump_json()
    early = training.early_stopping
    restore_best = early is not None and early.restore_best

    history: list[EpochMetrics] = []
    best_loss, best_epoch, wait = math.inf, None, 0
    best_params = np.empty_like(network.params) if restore_best else None
    if resume_from is None:
        start_epoch = 0
        if spec.initial_weights is not None:
            network.set_weights(
                [(layer.weights, layer.biases) for layer in spec.initial_weights.layers]
            )
        else:
            network.initialize(spec.model.init, rng)
        train_index, val_index = split_indices(data, training.validation_split, rng)
        mean = std = None
        if training.standardize:
            mean, std = standardization(data.features[train_index])
    else:
        checkpoint = resume_from
        if checkpoint.spec_json != spec_json:
            raise CheckpointError("the checkpoint belongs to another spec")
        if checkpoint.params.shape != network.params.shape or checkpoint.params.dtype != dtype:
            raise CheckpointError("the checkpoint's weights do not fit the network")
        start_epoch = checkpoint.epoch
        network.params[...] = checkpoint.params
        try:
            optimizer.load_state_dict(checkpoint.optimizer_state)
        except ValueError as error:
            raise CheckpointError(str(error)) from None
        rng.bit_generator.state = checkpoint.rng_state
        train_index, val_index = checkpoint.train_index, checkpoint.val_index
        mean, std = checkpoint.mean, checkpoint.std
        best_loss, best_epoch, wait = checkpoint.best_loss, checkpoint.best_epoch, checkpoint.wait
        if best_params is not None and checkpoint.best_params is not None:
            best_params[...] = checkpoint.best_params
        history = list(checkpoint.history)

    features = data.features
    with np.errstate(over="ignore", invalid="ignore"):
        if mean is not None and std is not None:
            features = (features - mean) / std
        features = np.ascontiguousarray(features, dtype=dtype)
    if not np.isfinite(features).all():
        row, column = (int(i) for i in np.argwhere(~np.isfinite(features))[0])
        value = f"features[{row}][{column}] = {data.features[row, column]:g}"
        if mean is not None and not np.isfinite(data.features[row, column] - mean[column]):
            raise DatasetError(
                f"{value} cannot be standardised: its distance to the feature's mean "
                f"({mean[column]:g}) overflows float64; rescale the feature"
            )
        raise DatasetError(
            f"{value} is out of range for {dtype.name} (largest finite ≈ "
            f"{np.finfo(dtype).max:.1e}): use dtype float64, standardize, or rescale the feature"
        )
    targets = encode_targets(
        data.targets,
        task=data.task,
        units=network.n_outputs,
        activation=network.output_activation,
        dtype=dtype,
    )
    labels = np.asarray(data.targets, dtype=np.int64) if data.task == "classification" else None

    def part(index: np.ndarray) -> _Evaluation:
        return _Evaluation(
            features=features[index],
            targets=targets[index],
            labels=None if labels is None else labels[index],
        )

    train_part = part(train_index)
    val_part = part(val_index) if len(val_index) else None
    n_train = len(train_index)
    batch_size = min(training.batch_size or n_train, n_train)
    eval_chunk = max(batch_size, EVAL_CHUNK)
    l1, l2 = optimizer_spec.l1, optimizer_spec.l2
    schedule, base_rate = optimizer_spec.schedule, optimizer_spec.learning_rate
    params, grads, mask = network.params, network.grads, network.weight_mask
    if training.shuffle:
        epoch_features = np.empty_like(train_part.features)
        epoch_targets = np.empty_like(train_part.targets)
    else:
        epoch_features, epoch_targets = train_part.features, train_part.targets

    stop_reason: StopReason = "completed"
    error: str | None = None
    paused: Checkpoint | None = None
    epochs_run = start_epoch
    next_poll = 0.0  # poll after the first batch
    last_checkpoint = time.monotonic()
    resume_batch = resume_from.batch if resume_from is not None else 0
    resume_order = resume_from.order if resume_from is not None else None
    if resume_batch:
        n_batches = -(-n_train // batch_size)
        if not 0 < resume_batch <= n_batches or (
            (resume_order is not None) != training.shuffle
            or (resume_order is not None and resume_order.shape != (n_train,))
        ):
            raise CheckpointError("the checkpoint's position in the epoch does not fit the run")
    # Between two mini-batches only when checkpoints are spaced in time (an epoch
    # boundary comes soon enough when they are taken every epoch).
    mid_epoch = on_checkpoint is not None and bool(checkpoint_seconds)
    timed = should_stop is not None or mid_epoch

    def snapshot(epochs_done: int, batch: int, order: np.ndarray | None) -> Checkpoint:
        return Checkpoint(
            spec_json=spec_json,
            epoch=epochs_done,
            step=optimizer.t,
            params=params.copy(),
            optimizer_state=optimizer.state_dict(),
            rng_state=rng.bit_generator.state,
            train_index=train_index,
            val_index=val_index,
            mean=mean,
            std=std,
            best_loss=best_loss,
            best_epoch=best_epoch,
            wait=wait,
            best_params=None if best_params is None else best_params.copy(),
            history=list(history),
            batch=batch,
            order=None if order is None else order.copy(),
        )

    with np.errstate(all="ignore"), _blas_limit(blas_threads(network, batch_size)):
        for epoch in range(start_epoch + 1, training.epochs + 1):
            first_batch = 0
            order: np.ndarray | None = None
            if resume_batch and epoch == start_epoch + 1:
                # the RNG state already follows this epoch's permutation: do not draw it again
                first_batch, order = resume_batch, resume_order
            elif training.shuffle:
                order = rng.permutation(n_train)
            if order is not None:
                np.take(train_part.features, order, axis=0, out=epoch_features, mode="clip")
                np.take(train_part.targets, order, axis=0, out=epoch_targets, mode="clip")
            halt: str | None = None
            batch = first_batch  # mini-batches of this epoch applied so far
            for start in range(first_batch * batch_size, n_train, batch_size):
                stop = start + batch_size
                network.gradient(epoch_features[start:stop], epoch_targets[start:stop])
                if l1 or l2:
                    add_penalty_gradient(params, grads, l1, l2, mask)
                optimizer.step(params, grads, learning_rate(schedule, base_rate, optimizer.t))
                batch += 1
                if not timed:
                    continue
                now = time.monotonic()
                if should_stop is not None and now >= next_poll:
                    answer = should_stop()
                    if answer:
                        halt = (
                            "paused" if isinstance(answer, str) and answer == PAUSE else "cancelled"
                        )
                        break
                    next_poll = time.monotonic() + POLL_SECONDS
                if (
                    mid_epoch and stop < n_train and now - last_checkpoint >= checkpoint_seconds  # type: ignore[operator]
                ):
                    on_checkpoint(snapshot(epoch - 1, batch, order))  # type: ignore[misc]
                    last_checkpoint = time.monotonic()
            if halt == "cancelled":
                stop_reason = "cancelled"
                break
            if halt == "paused":
                stop_reason = "paused"
                paused = snapshot(epoch - 1, batch, order)
                break
            epochs_run = epoch

            train_loss, train_accuracy = _evaluate(network, train_part, eval_chunk)
            train_loss += network.penalty(l1, l2)
            val_loss = val_accuracy = None
            if val_part is not None:
                val_loss, val_accuracy = _evaluate(network, val_part, eval_chunk)
            if not math.isfinite(train_loss) or (
                val_loss is not None and not math.isfinite(val_loss)
            ):
                stop_reason = "diverged"
                error = f"loss became NaN/infinite at epoch {epoch}"
                break

            metrics = EpochMetrics(
                epoch=epoch,
                epochs=training.epochs,
                step=optimizer.t,
                train_loss=train_loss,
                val_loss=val_loss,
                train_accuracy=train_accuracy,
                val_accuracy=val_accuracy,
                learning_rate=learning_rate(schedule, base_rate, optimizer.t - 1),
            )
            history.append(metrics)
            monitored = val_loss if val_loss is not None else train_loss
            min_delta = early.min_delta if early is not None else 0.0
            if monitored < best_loss - min_delta:
                best_loss, best_epoch, wait = monitored, epoch, 0
                if best_params is not None:
                    best_params[...] = params
            else:
                wait += 1
            if on_epoch is not None:
                on_epoch(metrics)
            if early is not None and wait >= early.patience:
                stop_reason = "early_stopping"
                break

            if (
                on_checkpoint is not None
                and epoch < training.epochs
                and (
                    not checkpoint_seconds
                    or time.monotonic() - last_checkpoint >= checkpoint_seconds
                )
            ):
                on_checkpoint(snapshot(epoch, 0, None))
                last_checkpoint = time.monotonic()

    if (
        restore_best
        and best_params is not None
        and stop_reason in ("completed", "early_stopping")
        and best_epoch is not None
        and best_epoch != epochs_run
    ):
        params[...] = best_params

    model = TrainedModel(
        spec=spec,
        task=data.task,
        layers=network.get_weights(),
        mean=mean,
        std=std,
        class_names=list(data.class_names) if data.class_names is not None else None,
    )
    return TrainResult(
        model=model,
        stop_reason=stop_reason,
        epochs_run=epochs_run,
        best_epoch=best_epoch,
        history=history,
        error=error,
        checkpoint=paused,
    )
