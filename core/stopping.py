"""The one vocabulary of run states (statuses, stop reasons, the stop signal) and early stopping.

Defined once here (the engine needs the stop reasons and the signal; the service
stores statuses and reasons) and imported by core, app, the schemas and tests, so a
new state is added in one place. Members are ``StrEnum`` so they compare equal to,
serialise as and store as their plain strings.
"""

from __future__ import annotations

import math
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from core.specs import EarlyStoppingSpec


class RunStatus(StrEnum):
    """Where a run is in its life: queued → running → one of the three terminal states."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


#: Statuses a run never leaves.
TERMINAL_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})


class StopReason(StrEnum):
    """Why training ended. ``PAUSED`` is internal: the engine returns it, no run stores it."""

    COMPLETED = "completed"
    EARLY_STOPPING = "early_stopping"
    STOPPED = "stopped"
    CANCELLED = "cancelled"
    DIVERGED = "diverged"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    PAUSED = "paused"


class Stop(Enum):
    """What a ``should_stop`` poll answers when training must end before its last epoch.

    ``CANCEL`` throws the model away (``cancelled``); ``STOP`` ends training at the
    next mini-batch boundary and keeps the model (``stopped``); ``INTERRUPT`` keeps it
    too (``interrupted``: ended from outside, e.g. a time limit); ``PAUSE`` returns the
    exact checkpoint so that another process can resume the run bit for bit.
    """

    CANCEL = "cancel"
    STOP = "stop"
    INTERRUPT = "interrupt"
    PAUSE = "pause"


class EarlyStopping:
    """The best epoch, always; and patience, when early stopping is on.

    ``best_epoch`` is the epoch of the lowest monitored loss (val_loss, or
    train_loss without validation; the first one on ties), with or without early
    stopping. Patience counts epochs since the last improvement larger than
    ``min_delta`` over ``reference_loss``; with min_delta 0 the reference is the
    best loss itself. With ``restore_best``, ``best_params`` holds the best
    epoch's weights (one flat copy per improvement).
    """

    def __init__(
        self,
        *,
        patience: int | None,
        min_delta: float,
        best_params: np.ndarray[Any, Any] | None,
    ) -> None:
        self.patience = patience  # None: never stops the run
        self.min_delta = min_delta
        self.best_params = best_params
        self.best_loss = math.inf
        self.best_epoch: int | None = None
        self.reference_loss = math.inf
        self.wait = 0

    @classmethod
    def from_spec(
        cls, spec: EarlyStoppingSpec | None, *, like: np.ndarray[Any, Any]
    ) -> EarlyStopping:
        """The tracker of ``training.early_stopping``; ``like`` is the parameter buffer."""
        restore = spec is not None and spec.restore_best
        return cls(
            patience=spec.patience if spec is not None else None,
            min_delta=spec.min_delta if spec is not None else 0.0,
            best_params=np.empty_like(like) if restore else None,
        )

    def restore_state(
        self,
        *,
        best_loss: float,
        best_epoch: int | None,
        reference_loss: float,
        wait: int,
        best_params: np.ndarray[Any, Any] | None,
    ) -> None:
        """Continue from a checkpoint's numbers."""
        self.best_loss, self.best_epoch = best_loss, best_epoch
        self.reference_loss, self.wait = reference_loss, wait
        if self.best_params is not None and best_params is not None:
            self.best_params[...] = best_params

    def update(self, epoch: int, loss: float, params: np.ndarray[Any, Any]) -> None:
        """Record epoch ``epoch``'s monitored ``loss`` (``params``: its final weights)."""
        if loss < self.best_loss:
            self.best_loss, self.best_epoch = loss, epoch
            if self.best_params is not None:
                self.best_params[...] = params
        if loss < self.reference_loss - self.min_delta:
            self.reference_loss, self.wait = loss, 0
        else:
            self.wait += 1

    @property
    def exhausted(self) -> bool:
        """True when the patience ran out (never without early stopping)."""
        return self.patience is not None and self.wait >= self.patience

    def restore_best(self, params: np.ndarray[Any, Any]) -> bool:
        """Copy the best epoch's weights into ``params``; False when there are none."""
        if self.best_params is None or self.best_epoch is None:
            return False
        params[...] = self.best_params
        return True
