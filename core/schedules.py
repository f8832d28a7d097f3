"""Learning rate at optimizer step t (t counts steps from 0), ENGINE.md:

| schedule     | ε_t                 |
|--------------|---------------------|
| constant     | ε₀                  |
| inverse_time | ε₀ / (1 + κ t)      |
| step         | ε₀ γ^⌊t / k⌋        |
| exponential  | ε₀ γ^t              |

Step t of the optimizer uses ε_t, like a ``torch.optim.lr_scheduler.LambdaLR``
stepped after every optimizer step. Computed in Python floats (float64); a γ > 1
whose power overflows gives ``inf`` (the run then diverges) instead of raising.
"""

from __future__ import annotations

import math

from core.specs import (
    ConstantSchedule,
    ExponentialSchedule,
    InverseTimeSchedule,
    ScheduleSpec,
    StepSchedule,
)


def learning_rate(schedule: ScheduleSpec, base: float, step: int) -> float:
    """ε_t for ``schedule`` with ε₀ = ``base`` at optimizer step ``step`` (from 0)."""
    if isinstance(schedule, ConstantSchedule):
        return base
    if isinstance(schedule, InverseTimeSchedule):
        return base / (1 + schedule.decay * step)
    try:
        if isinstance(schedule, StepSchedule):
            return base * schedule.gamma ** (step // schedule.step_size)
        if isinstance(schedule, ExponentialSchedule):
            return base * schedule.gamma**step
    except OverflowError:
        return math.inf
    raise TypeError(f"unknown schedule {schedule!r}")
