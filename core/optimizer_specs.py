"""The optimizer half of the run spec: number types, schedules, optimizers, trajectories.

Split from :mod:`core.specs` (which re-exports every name here) because the
optimizers are used on their own too: the 2-D trajectories take a list of them
without any network or dataset.

Numbers are strict everywhere in specs: ``true`` or ``"0.1"`` is not a number
(pydantic's lax mode would read them as 1.0 and 0.1, hiding a client's bug);
an integer is fine where a float is expected.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict

#: A float field: ints accepted, booleans and numeric strings refused.
Float = Annotated[float, Strict()]
#: An int field: booleans, floats and numeric strings refused.
Int = Annotated[int, Strict()]
#: A bool field: 0/1 and "true" refused.
Bool = Annotated[bool, Strict()]

SurfaceName = Literal["quadratic", "rosenbrock", "beale", "himmelblau", "saddle"]


class Spec(BaseModel):
    """Base of every spec model: unknown fields and non-finite numbers are errors."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


# ----------------------------------------------------------------------- schedules


class ConstantSchedule(Spec):
    """ε_t = ε₀."""

    type: Literal["constant"] = Field(description="Always `constant`.")


class InverseTimeSchedule(Spec):
    """ε_t = ε₀ / (1 + κ t)."""

    type: Literal["inverse_time"] = Field(description="Always `inverse_time`.")
    decay: Float = Field(ge=0, description="κ in ε₀ / (1 + κ t).", examples=[0.01])


class StepSchedule(Spec):
    """ε_t = ε₀ γ^⌊t / k⌋."""

    type: Literal["step"] = Field(description="Always `step`.")
    step_size: Int = Field(
        ge=1, description="k: optimizer steps between two decays.", examples=[100]
    )
    gamma: Float = Field(gt=0, description="γ: factor applied every k steps.", examples=[0.5])


class ExponentialSchedule(Spec):
    """ε_t = ε₀ γ^t."""

    type: Literal["exponential"] = Field(description="Always `exponential`.")
    gamma: Float = Field(gt=0, description="γ: factor applied every step.", examples=[0.999])


ScheduleSpec = Annotated[
    ConstantSchedule | InverseTimeSchedule | StepSchedule | ExponentialSchedule,
    Field(
        discriminator="type",
        description="Learning-rate schedule; t counts optimizer steps from 0.",
    ),
]


# ---------------------------------------------------------------------- optimizers


def _constant() -> ConstantSchedule:
    return ConstantSchedule(type="constant")


class _OptimizerBase(Spec):
    l1: Float = Field(0.0, ge=0, description="λ₁: adds λ₁ Σ|w| over the weights (not biases).")
    l2: Float = Field(0.0, ge=0, description="λ₂: adds λ₂ Σw² over the weights (not biases).")
    schedule: ScheduleSpec = Field(default_factory=_constant)


class SGDSpec(_OptimizerBase):
    """v ← μ v + g; p ← p − ε_t v (nesterov: p ← p − ε_t (g + μ v))."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"type": "sgd", "learning_rate": 0.1, "momentum": 0.9}]}
    )
    type: Literal["sgd"] = Field(description="Always `sgd`.")
    learning_rate: Float = Field(0.01, gt=0, description="ε₀, the base learning rate.")
    momentum: Float = Field(
        0.0, ge=0, lt=1, description="μ in [0, 1); 0 is plain gradient descent."
    )
    nesterov: Bool = Field(False, description="Use Nesterov's look-ahead momentum.")


class AdagradSpec(_OptimizerBase):
    """r ← r + g²; p ← p − ε_t g / (√r + δ)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"type": "adagrad", "learning_rate": 0.1}]}
    )
    type: Literal["adagrad"] = Field(description="Always `adagrad`.")
    learning_rate: Float = Field(0.01, gt=0, description="ε₀, the base learning rate.")
    epsilon: Float = Field(1e-7, gt=0, description="δ added to √r.")
    initial_accumulator: Float = Field(0.0, ge=0, description="Starting value of r.")


class RMSPropSpec(_OptimizerBase):
    """r ← ρ r + (1 − ρ) g²; p ← p − ε_t g / (√r + δ)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"type": "rmsprop", "learning_rate": 0.001, "rho": 0.9}]}
    )
    type: Literal["rmsprop"] = Field(description="Always `rmsprop`.")
    learning_rate: Float = Field(0.001, gt=0, description="ε₀, the base learning rate.")
    rho: Float = Field(
        0.9, ge=0, lt=1, description="ρ in [0, 1): decay of the squared-gradient average."
    )
    epsilon: Float = Field(1e-7, gt=0, description="δ added to √r.")


class AdamSpec(_OptimizerBase):
    """Adam with bias correction: m̂ = m / (1 − β₁^(t+1)), v̂ = v / (1 − β₂^(t+1))."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"type": "adam", "learning_rate": 0.01}]}
    )
    type: Literal["adam"] = Field(description="Always `adam`.")
    learning_rate: Float = Field(0.001, gt=0, description="ε₀, the base learning rate.")
    beta1: Float = Field(0.9, ge=0, lt=1, description="β₁ in [0, 1): decay of the first moment.")
    beta2: Float = Field(0.999, ge=0, lt=1, description="β₂ in [0, 1): decay of the second moment.")
    epsilon: Float = Field(1e-7, gt=0, description="δ added to √v̂.")


OptimizerSpec = Annotated[
    SGDSpec | AdagradSpec | RMSPropSpec | AdamSpec,
    Field(
        discriminator="type",
        description="The optimizer, chosen by `type`; each type accepts only its own fields.",
    ),
]
OPTIMIZER_TYPES: tuple[str, ...] = ("sgd", "adagrad", "rmsprop", "adam")


def default_optimizer() -> SGDSpec:
    """The optimizer of a spec that names none: plain gradient descent, as the lecture starts."""
    return SGDSpec(type="sgd")


# -------------------------------------------------------------------- trajectories


class TrajectoryRequest(Spec):
    """Run optimizers on a 2-D test function from one start point."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "function": "rosenbrock",
                    "start": [-1.5, 2.0],
                    "steps": 500,
                    "optimizers": [
                        {"type": "sgd", "learning_rate": 0.001, "momentum": 0.9},
                        {"type": "adam", "learning_rate": 0.05},
                    ],
                }
            ]
        }
    )

    function: SurfaceName = Field(description="The 2-D test function.")
    start: tuple[Float, Float] = Field(description="Start point [x, y].", examples=[[-1.5, 2.0]])
    steps: Int = Field(ge=1, le=100_000, description="Optimizer steps.", examples=[500])
    optimizers: list[OptimizerSpec] = Field(min_length=1, max_length=20)

    @property
    def work(self) -> int:
        """Optimizer steps the request asks for in all: ``steps × len(optimizers)``."""
        return self.steps * len(self.optimizers)
