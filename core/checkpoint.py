"""What a run remembers between two processes: per-epoch metrics and the checkpoint.

A ``Checkpoint`` is the full state of a run between two mini-batches, so that a
run paused (or killed) in one process resumes in another with the same bits as
if it had never stopped. Its file is an ``.npz`` without pickle: arrays as
arrays, scalars and the RNG state as JSON text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import CheckpointError
from core.serialize import load_npz, read_text, save_npz, text_array
from core.snapshots import SnapshotPlan

CHECKPOINT_FORMAT = "annlab.checkpoint/2"
#: Older formats still read: /1 had no mid-epoch position (always an epoch boundary).
#: A reader that only knows /1 refuses /2 instead of misreading a mid-epoch checkpoint.
READABLE_FORMATS = ("annlab.checkpoint/1", CHECKPOINT_FORMAT)


@dataclass(frozen=True)
class EpochMetrics:
    """The numbers of one finished epoch, measured with that epoch's final weights."""

    epoch: int  # 1-based
    epochs: int
    step: int  # optimizer steps so far
    train_loss: float
    val_loss: float | None
    train_accuracy: float | None
    val_accuracy: float | None
    learning_rate: float

    def as_dict(self) -> dict[str, Any]:
        """The fields, shallow: ``dataclasses.asdict`` deep-copies each number, which
        for a fast run's every epoch cost a worker 1–2 ms per run."""
        return dict(vars(self))


@dataclass
class Checkpoint:
    """The full state of a run after ``epoch`` epochs and ``batch`` mini-batches of the next.

    ``batch`` is 0 at an epoch boundary; inside an epoch, ``order`` is that epoch's
    permutation of the training rows (None without shuffle) and ``rng_state`` the
    generator's state after it was drawn.

    The early-stopping state: ``best_loss``/``best_epoch`` the lowest monitored loss
    and its epoch, ``reference_loss`` the loss of the last improvement larger than
    ``min_delta`` (what patience counts from; equal to ``best_loss`` when
    min_delta is 0), ``wait`` the epochs since then, ``best_params`` the best
    epoch's weights (with ``restore_best``).

    Snapshots: ``snapshot_plan`` is the plan the run started with (a resumed run
    keeps it), and ``epoch_params`` the weights after epoch ``epoch`` when the
    checkpoint is inside the next one (for the "last epoch run" snapshot).
    """

    spec_json: str
    epoch: int
    step: int
    params: np.ndarray[Any, Any]
    optimizer_state: dict[str, np.ndarray[Any, Any]]
    rng_state: dict[str, Any]
    train_index: np.ndarray[Any, Any]
    val_index: np.ndarray[Any, Any]
    mean: np.ndarray[Any, Any] | None
    std: np.ndarray[Any, Any] | None
    best_loss: float
    best_epoch: int | None
    wait: int
    best_params: np.ndarray[Any, Any] | None
    history: list[EpochMetrics] = field(default_factory=list)
    batch: int = 0
    order: np.ndarray[Any, Any] | None = None
    reference_loss: float | None = None  # None: the same as best_loss (older checkpoints)
    snapshot_plan: SnapshotPlan | None = None
    epoch_params: np.ndarray[Any, Any] | None = None

    def to_bytes(self) -> bytes:
        """An ``.npz`` without pickle (RNG state and scalars as JSON text)."""
        meta: dict[str, Any] = {
            "epoch": self.epoch,
            "step": self.step,
            "best_loss": self.best_loss,  # repr round-trips; inf as Infinity
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "history": [metrics.as_dict() for metrics in self.history],
            "batch": self.batch,
            "reference_loss": self.reference_loss,
        }
        if self.snapshot_plan is not None:
            meta["snapshot_plan"] = self.snapshot_plan.as_dict()
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
        optional = {
            "best_params": self.best_params,
            "order": self.order,
            "epoch_params": self.epoch_params,
        }
        if self.mean is not None and self.std is not None:
            optional["mean"], optional["std"] = self.mean, self.std
        arrays.update({name: value for name, value in optional.items() if value is not None})
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
            plan = meta.get("snapshot_plan")
            reference = meta.get("reference_loss")
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
                reference_loss=None if reference is None else float(reference),
                snapshot_plan=None if plan is None else SnapshotPlan.from_dict(plan),
                epoch_params=arrays.get("epoch_params"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"incomplete checkpoint: {error}") from None
