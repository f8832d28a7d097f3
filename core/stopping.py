"""The one vocabulary of run states: statuses, stop reasons and the stop signal.

Defined once here (the engine needs the stop reasons and the signal; the service
stores statuses and reasons) and imported by core, app, the schemas and tests, so a
new state is added in one place. Members are ``StrEnum`` so they compare equal to,
serialise as and store as their plain strings.
"""

from __future__ import annotations

from enum import Enum, StrEnum


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
