"""Everything a training run holds before its first mini-batch, fresh or resumed.

:class:`PreparedRun` builds the network, the optimizer and the one random
generator, then either draws the initial weights and the split (ENGINE.md's RNG
order) or loads a checkpoint, and lays out the training and validation rows as
the network sees them. It also hands state out: checkpoints and models. The
epoch loop (:mod:`core.training`) runs on top of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from core.checkpoint import Checkpoint, EpochMetrics
from core.data import Dataset, network_inputs, split_indices, standardization
from core.errors import CheckpointError
from core.network import Network, encode_targets, predict_classes
from core.optimizers import make_optimizer
from core.serialize import TrainedModel
from core.snapshots import SnapshotPlan, plan_snapshots
from core.specs import RunSpec
from core.stopping import EarlyStopping

Array = np.ndarray[Any, Any]

#: Fields that name a run without changing its training: a checkpoint still fits a
#: spec renamed or retagged since (``PATCH /runs/{id}``).
LABEL_FIELDS = frozenset({"name", "tags"})
#: Rows per forward pass when the metrics are computed (at least the batch size).
EVAL_CHUNK = 1024
#: A shuffled epoch's rows (features and encoded targets) are copied whole when they
#: take at most this, else gathered per mini-batch (``PreparedRun._prepare_rows``). The
#: benchmark workloads (20,000 × (64 + 10) float32: 5.6 MiB) stay on the copy, whose
#: speed is known; A/B runs of W1–W4 on both paths differed by less than their noise.
EPOCH_COPY_MAX_BYTES = 8 * 1024 * 1024


@dataclass
class Rows:
    """Training or validation rows as the network sees them."""

    features: Array
    #: The encoded targets, or None for a large classification set: then a row's target
    #: is ``table[label]`` (its one-hot row or level), made per mini-batch or chunk.
    targets: Array | None
    labels: Array | None  # class indices for accuracy
    table: Array | None = None

    def targets_of(self, start: int, stop: int) -> Array:
        """The encoded targets of rows ``start:stop``."""
        if self.targets is not None:
            return self.targets[start:stop]
        assert self.table is not None and self.labels is not None
        return np.take(self.table, self.labels[start:stop], axis=0)


def evaluate(network: Network, part: Rows, chunk: int) -> tuple[float, float | None]:
    """(mean loss, accuracy or None) over a whole set, in chunks of ``chunk`` rows."""
    n_rows = part.features.shape[0]
    loss_sum = 0.0
    correct = 0
    for start in range(0, n_rows, chunk):
        stop = min(start + chunk, n_rows)
        outputs = network.forward(part.features[start:stop])
        loss_sum += network.loss.value(outputs, part.targets_of(start, stop)) * (stop - start)
        if part.labels is not None:
            classes = predict_classes(outputs, network.output_activation)
            correct += int(np.count_nonzero(classes == part.labels[start:stop]))
    accuracy = correct / n_rows if part.labels is not None else None
    return loss_sum / n_rows, accuracy


def training_identity(spec_json: str) -> str:
    """The part of a spec that decides the bits: its JSON without the labels."""
    try:
        spec = RunSpec.model_validate_json(spec_json)
    except ValidationError:
        raise CheckpointError("the checkpoint's spec is not a valid run spec") from None
    return spec.model_dump_json(exclude=set(LABEL_FIELDS))


def draw_start(
    spec: RunSpec, data: Dataset, network: Network, rng: np.random.Generator
) -> tuple[Array, Array]:
    """A fresh start's draws in ENGINE.md's order: the initial weights (unless given),
    then the split; returns (train rows, validation rows)."""
    if spec.initial_weights is not None:
        network.set_weights(
            [(layer.weights, layer.biases) for layer in spec.initial_weights.layers]
        )
    else:
        network.initialize(spec.model.init, rng)
    return split_indices(data, spec.training.validation_split, rng)


def run_split(spec: RunSpec, data: Dataset) -> tuple[Array, Array]:
    """The (train, validation) rows a run of ``spec`` on ``data`` trains and validates
    on: the same draws as its training, reproduced from the seed."""
    network = Network.from_spec(spec, n_inputs=data.n_features)
    return draw_start(spec, data, network, np.random.default_rng(spec.training.seed))


class PreparedRun:
    """The state of one call of ``core.training.train`` before its epoch loop."""

    def __init__(
        self,
        spec: RunSpec,
        data: Dataset,
        resume_from: Checkpoint | None,
        snapshots: SnapshotPlan | None,
        *,
        snapshotting: bool,
    ) -> None:
        """``snapshots`` is the plan of a snapshotting run (None: the spec's own, without a
        byte bound); a resumed run keeps the plan its checkpoint carries."""
        training = spec.training
        self.spec, self.data, self.training = spec, data, training
        self.spec_json = spec.model_dump_json()
        #: The encoded non-weight members of this run's model files (``model``).
        self.fixed_members: list[tuple[str, bytes]] = []
        self.dtype = np.dtype(spec.dtype)
        self.network = network = Network.from_spec(spec, n_inputs=data.n_features)
        self.optimizer = make_optimizer(spec.optimizer, size=network.size, dtype=self.dtype)
        self.rng = np.random.default_rng(training.seed)
        self.tracker = EarlyStopping.from_spec(training.early_stopping, like=network.params)
        self.history: list[EpochMetrics] = []
        self.start_epoch = 0
        self.resume_batch = 0
        self.resume_order: Array | None = None
        self.error: str | None = None
        self.paused: Checkpoint | None = None
        #: The last epoch whose weights are in ``epoch_params`` (0: none).
        self.boundary_epoch = 0
        self.epoch_params: Array | None = None

        if resume_from is None:
            self._start_fresh()
        else:
            self._resume(resume_from)
            if resume_from.snapshot_plan is not None:
                snapshots = resume_from.snapshot_plan
        if snapshots is None and snapshotting:
            snapshots = plan_snapshots(spec, n_parameters=network.size, max_bytes=None)
        #: The plan of a snapshotting run, or None (then nothing is copied per epoch).
        self.snapshot_plan = snapshots if snapshotting else None
        self.plan = self.snapshot_plan or SnapshotPlan()
        if self.plan.include_last:
            self.epoch_params = network.params.copy()
            self.boundary_epoch = self.start_epoch
            if resume_from is not None and resume_from.batch:
                known = resume_from.epoch_params
                if known is not None and known.shape == network.params.shape:
                    self.epoch_params[...] = known
                else:  # not kept by that checkpoint: only a later epoch can be the last
                    self.boundary_epoch = 0
        self._prepare_rows()

    # ------------------------------------------------------------------ preparation

    def _start_fresh(self) -> None:
        spec, network = self.spec, self.network
        self.train_index, self.val_index = draw_start(spec, self.data, network, self.rng)
        self.mean: Array | None = None
        self.std: Array | None = None
        if self.training.standardize:
            self.mean, self.std = standardization(self.data.features, self.train_index)

    def _resume(self, checkpoint: Checkpoint) -> None:
        """Load ``checkpoint`` (the snapshot plan it carries is read by ``__init__``)."""
        network = self.network
        if training_identity(checkpoint.spec_json) != training_identity(self.spec_json):
            raise CheckpointError("the checkpoint belongs to another spec")
        if checkpoint.params.shape != network.params.shape or checkpoint.params.dtype != self.dtype:
            raise CheckpointError("the checkpoint's weights do not fit the network")
        self.start_epoch = checkpoint.epoch
        network.params[...] = checkpoint.params
        try:
            self.optimizer.load_state_dict(checkpoint.optimizer_state)
        except ValueError as error:
            raise CheckpointError(str(error)) from None
        self.rng.bit_generator.state = checkpoint.rng_state
        self.train_index, self.val_index = checkpoint.train_index, checkpoint.val_index
        self.mean, self.std = checkpoint.mean, checkpoint.std
        self.tracker.restore_state(
            best_loss=checkpoint.best_loss,
            best_epoch=checkpoint.best_epoch,
            reference_loss=(
                checkpoint.best_loss
                if checkpoint.reference_loss is None
                else checkpoint.reference_loss
            ),
            wait=checkpoint.wait,
            best_params=checkpoint.best_params,
        )
        self.history = list(checkpoint.history)
        self.resume_batch, self.resume_order = checkpoint.batch, checkpoint.order

    def _prepare_rows(self) -> None:
        """The training and validation rows as the network sees them, each built from the
        dataset directly (no full-size intermediate), and where an epoch reads its
        mini-batches: for a shuffled run, the whole epoch's rows copied in order at its
        start (one call, fastest for small sets) or, over ``EPOCH_COPY_MAX_BYTES``, each
        mini-batch's rows gathered into batch buffers, the class targets looked up from
        their labels: no second copy of a large set, and no one-hot matrix (10 classes:
        40 bytes a row, more than 8 float32 features)."""
        data, network, training = self.data, self.network, self.training
        classification = data.task == "classification"
        n_train = len(self.train_index)
        row_bytes = self.dtype.itemsize * (data.n_features + network.n_outputs)
        gather = training.shuffle and n_train * row_bytes > EPOCH_COPY_MAX_BYTES

        def encode(targets: Array) -> Array:
            return encode_targets(
                targets,
                task=data.task,
                units=network.n_outputs,
                activation=network.output_activation,
                dtype=self.dtype,
            )

        # row k: the encoded target of class k (what encode_targets gives label k)
        table = encode(np.arange(len(data.class_names or ()))) if classification else None

        def part(index: Array) -> Rows:
            labels = np.asarray(data.targets[index], dtype=np.int64) if classification else None
            return Rows(
                features=network_inputs(data, self.mean, self.std, self.dtype, rows=index),
                targets=None if gather and classification else encode(data.targets[index]),
                labels=labels,
                table=table,
            )

        self.train_part = part(self.train_index)
        self.val_part = part(self.val_index) if len(self.val_index) else None
        self.n_train = n_train
        self.batch_size = min(training.batch_size or n_train, n_train)
        if self.resume_batch:
            n_batches = -(-n_train // self.batch_size)
            order = self.resume_order
            if not 0 < self.resume_batch <= n_batches or (
                (order is not None) != training.shuffle
                or (order is not None and order.shape != (n_train,))
            ):
                raise CheckpointError("the checkpoint's position in the epoch does not fit the run")
        train = self.train_part
        self.epoch_features: Array | None = train.features
        self.epoch_targets: Array | None = train.targets
        self.batch_features: Array | None = None
        self.batch_targets: Array | None = None
        if gather:
            self.epoch_features = self.epoch_targets = None
            self.batch_features = np.empty((self.batch_size, data.n_features), self.dtype)
            self.batch_targets = np.empty((self.batch_size, network.n_outputs), self.dtype)
        elif training.shuffle:
            assert train.targets is not None
            self.epoch_features = np.empty_like(train.features)
            self.epoch_targets = np.empty_like(train.targets)

    # ------------------------------------------------------------- state handed out

    def checkpoint(self, epochs_done: int, batch: int, order: Array | None) -> Checkpoint:
        tracker = self.tracker
        keep_boundary = batch and self.epoch_params is not None and self.boundary_epoch
        return Checkpoint(
            spec_json=self.spec_json,
            epoch=epochs_done,
            step=self.optimizer.t,
            params=self.network.params.copy(),
            optimizer_state=self.optimizer.state_dict(),
            rng_state=dict(self.rng.bit_generator.state),
            train_index=self.train_index,
            val_index=self.val_index,
            mean=self.mean,
            std=self.std,
            best_loss=tracker.best_loss,
            best_epoch=tracker.best_epoch,
            wait=tracker.wait,
            best_params=None if tracker.best_params is None else tracker.best_params.copy(),
            history=list(self.history),
            batch=batch,
            order=None if order is None else order.copy(),
            reference_loss=tracker.reference_loss,
            snapshot_plan=self.snapshot_plan,
            epoch_params=(
                self.epoch_params.copy()
                if keep_boundary and self.epoch_params is not None
                else None
            ),
        )

    def model(self, flat: Array) -> TrainedModel:
        """A model owning ``flat`` (a copy of the parameter buffer) through views."""
        data = self.data
        model = TrainedModel(
            spec=self.spec,
            task=data.task,
            layers=self.network.unflatten(flat),
            mean=self.mean,
            std=self.std,
            class_names=list(data.class_names) if data.class_names is not None else None,
            feature_names=list(data.feature_names) or None,
            dataset_name=data.name,
        )
        model.share_fixed_members(self.fixed_members)  # every snapshot's are the same
        return model
