"""Which epochs' weights a run keeps: the snapshot plan, computed before training.

``training.snapshots`` (API.md "Seeing training") is ``"log"``, ``"none"`` or a list
of epochs. The plan is pure arithmetic on the spec, the network's size and the
byte budget (``ANNLAB_MAX_SNAPSHOT_BYTES`` in the service), so the service can
refuse an explicit list that does not fit at submission, and a resumed run
computes (or reads back from its checkpoint) exactly the plan it started with.

``"log"`` keeps every epoch of the form {1, 2, 3, 5, 7} × 10^k up to ``epochs``
and the last epoch run, which early stopping or a stop decides only at the end
(hence ``include_last``). Over the budget it is thinned: the first and the last
are kept, the others chosen evenly over the log sequence (by position in it). An explicit list is
taken as given (it keeps no "last" epoch), or refused when it does not fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import SpecError
from core.specs import RunSpec

#: The mantissas of the "log" sequence: 1, 2, 3, 5, 7, 10, 20, 30, 50, 70, 100, ...
LOG_MANTISSAS = (1, 2, 3, 5, 7)


def log_epochs(epochs: int) -> list[int]:
    """Every epoch ≤ ``epochs`` of the form m × 10^k, m in ``LOG_MANTISSAS``, ascending."""
    found: list[int] = []
    scale = 1
    while scale <= epochs:
        found.extend(m * scale for m in LOG_MANTISSAS if m * scale <= epochs)
        scale *= 10
    return found


@dataclass(frozen=True)
class SnapshotPlan:
    """Epochs after which training hands out the weights, plus maybe the last epoch run.

    At most ``len(epochs) + include_last`` snapshots are taken (the last epoch run
    may be one of ``epochs``, then it is taken once).
    """

    epochs: tuple[int, ...] = ()  # ascending, distinct, ≥ 1
    include_last: bool = False
    _members: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_members", frozenset(self.epochs))

    def __contains__(self, epoch: object) -> bool:
        return epoch in self._members

    @property
    def max_count(self) -> int:
        """An upper bound on the snapshots this plan takes."""
        return len(self.epochs) + int(self.include_last)

    def as_dict(self) -> dict[str, Any]:
        return {"epochs": list(self.epochs), "include_last": self.include_last}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SnapshotPlan:
        return cls(
            epochs=tuple(int(epoch) for epoch in data["epochs"]),
            include_last=bool(data["include_last"]),
        )


def plan_snapshots(spec: RunSpec, *, n_parameters: int, max_bytes: int | None) -> SnapshotPlan:
    """The snapshot plan of ``spec`` for a network of ``n_parameters``.

    ``max_bytes`` bounds snapshots × parameters × the dtype's item size (None: no
    bound). An explicit list over it raises ``SpecError`` naming
    ``ANNLAB_MAX_SNAPSHOT_BYTES``; ``"log"`` is thinned to fit.
    """
    requested = spec.training.snapshots
    epochs = spec.training.epochs
    if requested == "none":
        return SnapshotPlan()
    item_bytes = max(1, n_parameters) * np.dtype(spec.dtype).itemsize
    capacity = None if max_bytes is None else max_bytes // item_bytes
    if isinstance(requested, list):
        if capacity is not None and len(requested) > capacity:
            raise SpecError(
                f"{len(requested)} snapshots × {n_parameters} parameters × "
                f"{np.dtype(spec.dtype).itemsize} bytes = {len(requested) * item_bytes} bytes "
                f"is over ANNLAB_MAX_SNAPSHOT_BYTES={max_bytes}: at most {capacity} snapshots "
                'of this network fit; ask for fewer epochs, or "log" (thinned to fit)',
                field="training.snapshots",
            )
        return SnapshotPlan(epochs=tuple(requested), include_last=False)

    sequence = log_epochs(epochs)
    # the final epoch itself is covered by include_last when the run gets there
    others = [epoch for epoch in sequence if epoch != epochs]
    if capacity is None or len(others) + 1 <= capacity:
        return SnapshotPlan(epochs=tuple(sequence), include_last=True)
    if capacity < 1:
        return SnapshotPlan()
    if capacity == 1 or not others:
        return SnapshotPlan(include_last=True)
    # capacity − 1 epochs evenly over the log sequence (its first included), and the last
    positions = np.unique(np.rint(np.linspace(0, len(others) - 1, capacity - 1)).astype(np.int64))
    return SnapshotPlan(
        epochs=tuple(others[int(position)] for position in positions), include_last=True
    )
