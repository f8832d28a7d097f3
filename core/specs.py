"""The run spec as Pydantic models.

These models are the single description of a training job: the engine trains
from them and the service uses them, unchanged, as request bodies. Every model
forbids unknown fields, so a typo is an error that names the field instead of a
silent default. Checks that need only the spec live here as validators; checks
that need the dataset's shape live in :func:`check_against_dataset`.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.errors import SpecError

Activation = Literal["linear", "step", "sigmoid", "tanh", "arctan", "relu", "leaky_relu", "softmax"]
ACTIVATIONS: tuple[str, ...] = Activation.__args__  # type: ignore[attr-defined]

LossName = Literal["mse", "mae", "binary_cross_entropy", "cross_entropy"]
InitName = Literal["auto", "he", "glorot", "normal", "zeros"]
DType = Literal["float32", "float64"]
Task = Literal["classification", "regression"]
SurfaceName = Literal["quadratic", "rosenbrock", "beale", "himmelblau", "saddle"]

#: Activations whose natural output levels for a single-unit classifier are −1/+1.
SYMMETRIC_ACTIVATIONS = frozenset({"tanh", "arctan"})
#: The ReLU family, initialised with He by ``init: auto``.
RELU_FAMILY = frozenset({"relu", "leaky_relu"})


class Spec(BaseModel):
    """Base of every spec model: unknown fields and non-finite numbers are errors."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


# --------------------------------------------------------------------------- model


class LayerSpec(Spec):
    """One dense layer: ``y = f(x @ W + b)``."""

    units: int = Field(ge=1, description="Number of units (outputs) of the layer.", examples=[16])
    activation: Activation = Field(
        description="Activation f applied to x @ W + b. `softmax` only on the last layer; "
        "`step` is the perceptron's threshold unit (derivative 1 in backward).",
        examples=["relu"],
    )


class NormalInit(Spec):
    """Weights drawn from N(0, std²)."""

    type: Literal["normal"] = Field(description="Always `normal`.")
    std: float = Field(1.0, gt=0, description="Standard deviation σ of N(0, σ²).", examples=[0.1])


InitSpec = Annotated[
    InitName | NormalInit,
    Field(
        description="Weight initialisation: `auto` (He for relu/leaky_relu layers, Glorot "
        "otherwise), `he` N(0, 2/n_in), `glorot` U(±√(6/(n_in+n_out))), `normal` N(0, σ²) "
        '(σ = 1, or `{"type": "normal", "std": σ}`), `zeros`. Biases start at 0.',
        examples=["auto"],
    ),
]


class ModelSpec(Spec):
    """The network: dense layers in order; the input width comes from the dataset."""

    layers: list[LayerSpec] = Field(
        min_length=1,
        description="Dense layers from input to output.",
        examples=[[{"units": 16, "activation": "relu"}, {"units": 3, "activation": "softmax"}]],
    )
    init: InitSpec = "auto"

    @model_validator(mode="after")
    def _softmax_only_last(self) -> ModelSpec:
        for index, layer in enumerate(self.layers[:-1]):
            if layer.activation == "softmax":
                raise ValueError(
                    f"layers.{index}: softmax is only allowed on the last layer "
                    "(it normalises the network's output into class probabilities)"
                )
        return self


# ----------------------------------------------------------------------- schedules


class ConstantSchedule(Spec):
    """ε_t = ε₀."""

    type: Literal["constant"] = Field(description="Always `constant`.")


class InverseTimeSchedule(Spec):
    """ε_t = ε₀ / (1 + κ t)."""

    type: Literal["inverse_time"] = Field(description="Always `inverse_time`.")
    decay: float = Field(ge=0, description="κ in ε₀ / (1 + κ t).", examples=[0.01])


class StepSchedule(Spec):
    """ε_t = ε₀ γ^⌊t / k⌋."""

    type: Literal["step"] = Field(description="Always `step`.")
    step_size: int = Field(
        ge=1, description="k: optimizer steps between two decays.", examples=[100]
    )
    gamma: float = Field(gt=0, description="γ: factor applied every k steps.", examples=[0.5])


class ExponentialSchedule(Spec):
    """ε_t = ε₀ γ^t."""

    type: Literal["exponential"] = Field(description="Always `exponential`.")
    gamma: float = Field(gt=0, description="γ: factor applied every step.", examples=[0.999])


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
    l1: float = Field(0.0, ge=0, description="λ₁: adds λ₁ Σ|w| over the weights (not biases).")
    l2: float = Field(0.0, ge=0, description="λ₂: adds λ₂ Σw² over the weights (not biases).")
    schedule: ScheduleSpec = Field(default_factory=_constant)


class SGDSpec(_OptimizerBase):
    """v ← μ v + g; p ← p − ε_t v (nesterov: p ← p − ε_t (g + μ v))."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"type": "sgd", "learning_rate": 0.1, "momentum": 0.9}]}
    )
    type: Literal["sgd"] = Field(description="Always `sgd`.")
    learning_rate: float = Field(0.01, gt=0, description="ε₀, the base learning rate.")
    momentum: float = Field(
        0.0, ge=0, lt=1, description="μ in [0, 1); 0 is plain gradient descent."
    )
    nesterov: bool = Field(False, description="Use Nesterov's look-ahead momentum.")


class AdagradSpec(_OptimizerBase):
    """r ← r + g²; p ← p − ε_t g / (√r + δ)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"type": "adagrad", "learning_rate": 0.1}]}
    )
    type: Literal["adagrad"] = Field(description="Always `adagrad`.")
    learning_rate: float = Field(0.01, gt=0, description="ε₀, the base learning rate.")
    epsilon: float = Field(1e-7, gt=0, description="δ added to √r.")
    initial_accumulator: float = Field(0.0, ge=0, description="Starting value of r.")


class RMSPropSpec(_OptimizerBase):
    """r ← ρ r + (1 − ρ) g²; p ← p − ε_t g / (√r + δ)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"type": "rmsprop", "learning_rate": 0.001, "rho": 0.9}]}
    )
    type: Literal["rmsprop"] = Field(description="Always `rmsprop`.")
    learning_rate: float = Field(0.001, gt=0, description="ε₀, the base learning rate.")
    rho: float = Field(
        0.9, ge=0, lt=1, description="ρ in [0, 1): decay of the squared-gradient average."
    )
    epsilon: float = Field(1e-7, gt=0, description="δ added to √r.")


class AdamSpec(_OptimizerBase):
    """Adam with bias correction: m̂ = m / (1 − β₁^(t+1)), v̂ = v / (1 − β₂^(t+1))."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"type": "adam", "learning_rate": 0.01}]}
    )
    type: Literal["adam"] = Field(description="Always `adam`.")
    learning_rate: float = Field(0.001, gt=0, description="ε₀, the base learning rate.")
    beta1: float = Field(0.9, ge=0, lt=1, description="β₁ in [0, 1): decay of the first moment.")
    beta2: float = Field(0.999, ge=0, lt=1, description="β₂ in [0, 1): decay of the second moment.")
    epsilon: float = Field(1e-7, gt=0, description="δ added to √v̂.")


OptimizerSpec = Annotated[
    SGDSpec | AdagradSpec | RMSPropSpec | AdamSpec,
    Field(
        discriminator="type",
        description="The optimizer, chosen by `type`; each type accepts only its own fields.",
    ),
]
OPTIMIZER_TYPES: tuple[str, ...] = ("sgd", "adagrad", "rmsprop", "adam")


# ------------------------------------------------------------------------ training


class EarlyStoppingSpec(Spec):
    """Stop after `patience` epochs without an improvement larger than `min_delta`."""

    patience: int = Field(10, ge=1, description="Epochs without improvement before stopping.")
    min_delta: float = Field(0.0, ge=0, description="An improvement must exceed this to count.")
    restore_best: bool = Field(True, description="End with the best epoch's weights.")


class TrainingSpec(Spec):
    """How the network is trained."""

    epochs: int = Field(100, ge=1, description="Passes over the training rows.")
    batch_size: int | None = Field(
        32, ge=1, description="Rows per optimizer step; null = the whole training set."
    )
    shuffle: bool = Field(
        True, description="Draw a new permutation of the training rows per epoch."
    )
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Seed of the one random generator.")
    validation_split: float = Field(
        0.2, ge=0, le=0.9, description="Fraction held out (stratified for classification)."
    )
    standardize: bool = Field(True, description="z-score features with training-row statistics.")
    early_stopping: EarlyStoppingSpec | None = Field(
        None, description="Early stopping on val_loss (train_loss without validation); null = off."
    )


# ------------------------------------------------------------------ initial weights


class LayerWeights(Spec):
    """One layer of a weights document: ``y = f(inputs @ weights + biases)``."""

    units: int | None = Field(None, ge=1, description="If given, must match the model's layer.")
    activation: Activation | None = Field(
        None, description="If given, must match the model's layer."
    )
    weights: list[list[float]] = Field(
        description="n_in rows of `units` numbers: weights[i][j] joins input i to unit j."
    )
    biases: list[float] = Field(description="`units` numbers.")


class StandardizeDoc(Spec):
    mean: list[float] = Field(description="Per-feature mean subtracted before the first layer.")
    std: list[float] = Field(description="Per-feature deviation divided by before the first layer.")


class InitialWeights(Spec):
    """Starting weights, in the shape of the weights document (other fields optional)."""

    layers: list[LayerWeights] = Field(min_length=1, description="One entry per model layer.")
    dtype: DType | None = Field(
        None, description="Ignored; accepted so a weights document can be sent back."
    )
    standardize: StandardizeDoc | None = Field(
        None, description="Ignored; accepted so a weights document can be sent back."
    )


# ---------------------------------------------------------------------------- run


class RunSpec(Spec):
    """A training job: which data, which network, which loss and optimizer, how long."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "adam on iris",
                    "dataset": "iris",
                    "model": {
                        "layers": [
                            {"units": 16, "activation": "relu"},
                            {"units": 3, "activation": "softmax"},
                        ],
                        "init": "auto",
                    },
                    "loss": "cross_entropy",
                    "optimizer": {"type": "adam", "learning_rate": 0.01},
                    "training": {"epochs": 200, "batch_size": 16, "seed": 0},
                    "dtype": "float64",
                }
            ]
        }
    )

    name: str | None = Field(
        None, max_length=200, description="A label; defaults to '<optimizer> on <dataset>'."
    )
    dataset: str = Field(min_length=1, max_length=200, description="Dataset id.", examples=["iris"])
    model: ModelSpec
    loss: LossName | None = Field(
        None,
        description="Omitted: cross_entropy for a softmax classifier, binary_cross_entropy for "
        "a single sigmoid output, mse otherwise.",
    )
    optimizer: OptimizerSpec
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    dtype: DType = Field("float32", description="Floating-point type of training.")
    initial_weights: InitialWeights | None = Field(
        None, description="Starting weights instead of the random initialisation."
    )

    @field_validator("name")
    @classmethod
    def _strip_name(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None


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
    start: tuple[float, float] = Field(description="Start point [x, y].", examples=[[-1.5, 2.0]])
    steps: int = Field(ge=1, le=100_000, description="Optimizer steps.", examples=[500])
    optimizers: list[OptimizerSpec] = Field(min_length=1, max_length=20)


# --------------------------------------------------------- checks against the data


class DataShape(BaseModel):
    """What the spec checks need to know of a dataset."""

    model_config = ConfigDict(frozen=True)

    task: Task
    n_features: int
    n_outputs: int
    n_classes: int | None = None
    n_samples: int | None = None


def default_loss(model: ModelSpec, task: Task) -> LossName:
    """The loss used when the spec omits it (API.md)."""
    last = model.layers[-1]
    if task == "classification" and last.activation == "softmax":
        return "cross_entropy"
    if last.units == 1 and last.activation == "sigmoid":
        return "binary_cross_entropy"
    return "mse"


def count_parameters(model: ModelSpec, n_features: int) -> int:
    """Weights and biases of the whole network for an input of ``n_features``."""
    total, n_in = 0, n_features
    for layer in model.layers:
        total += n_in * layer.units + layer.units
        n_in = layer.units
    return total


def check_against_dataset(spec: RunSpec, shape: DataShape) -> RunSpec:
    """Return the normalised spec (every default filled in) or raise ``SpecError``.

    The checks here are the ones that need the data: output width against classes
    or targets, loss against output activation and task, initial-weight shapes.
    """
    layers = spec.model.layers
    last = layers[-1]
    out_field = f"model.layers.{len(layers) - 1}"
    loss = spec.loss or default_loss(spec.model, shape.task)

    if shape.task == "classification":
        n_classes = shape.n_classes or 0
        if last.units == 1:
            if n_classes != 2:
                raise SpecError(
                    f"{out_field}.units",
                    f"a single output unit can only separate 2 classes, the dataset has "
                    f"{n_classes}: use {n_classes} units with softmax",
                )
            if last.activation == "softmax":
                raise SpecError(
                    f"{out_field}.activation",
                    "softmax over a single unit always outputs 1: use sigmoid for one unit, "
                    "or 2 softmax units",
                )
        elif last.units != n_classes:
            raise SpecError(
                f"{out_field}.units",
                f"the output layer has {last.units} units but the dataset has {n_classes} "
                f"classes: use {n_classes} (one per class) or 1 for two classes",
            )
        if loss == "cross_entropy" and last.activation != "softmax":
            raise SpecError(
                "loss",
                "cross_entropy needs a softmax output layer (it expects class probabilities); "
                "use binary_cross_entropy with a single sigmoid unit, or mse",
            )
        if loss == "binary_cross_entropy" and last.activation not in ("sigmoid", "softmax"):
            raise SpecError(
                "loss",
                f"binary_cross_entropy needs outputs in (0, 1): the output layer is "
                f"{last.activation}; use sigmoid",
            )
    else:
        if last.units != shape.n_outputs:
            raise SpecError(
                f"{out_field}.units",
                f"the output layer has {last.units} units but the dataset has "
                f"{shape.n_outputs} target column(s)",
            )
        if last.activation == "softmax":
            raise SpecError(
                f"{out_field}.activation",
                "softmax is for classification; a regression output is usually linear",
            )
        if loss == "cross_entropy":
            raise SpecError("loss", "cross_entropy is for classification with a softmax output")
        if loss == "binary_cross_entropy" and last.activation != "sigmoid":
            raise SpecError(
                "loss", "binary_cross_entropy needs a sigmoid output (values in (0, 1))"
            )

    if spec.initial_weights is not None:
        _check_initial_weights(spec, shape.n_features)

    if shape.n_samples is not None and spec.training.validation_split > 0:
        n_val = validation_size(shape.n_samples, spec.training.validation_split)
        if shape.n_samples - n_val < 1:
            raise SpecError(
                "training.validation_split",
                f"validation_split {spec.training.validation_split} leaves no training rows "
                f"out of {shape.n_samples}",
            )

    optimizer_name = spec.optimizer.type
    return spec.model_copy(
        update={
            "loss": loss,
            "name": spec.name or f"{optimizer_name} on {spec.dataset}",
        }
    )


def validation_size(n_samples: int, split: float) -> int:
    """Rows held out for validation: round(split × n), at least 1 when split > 0."""
    if split <= 0:
        return 0
    return max(1, math.floor(split * n_samples + 0.5))


def _check_initial_weights(spec: RunSpec, n_features: int) -> None:
    assert spec.initial_weights is not None
    given = spec.initial_weights.layers
    layers = spec.model.layers
    if len(given) != len(layers):
        raise SpecError(
            "initial_weights.layers",
            f"{len(given)} layers given, the model has {len(layers)}",
        )
    n_in = n_features
    for index, (layer, weights) in enumerate(zip(layers, given, strict=True)):
        field = f"initial_weights.layers.{index}"
        if weights.units is not None and weights.units != layer.units:
            raise SpecError(
                f"{field}.units",
                f"{weights.units} units given, the model's layer has {layer.units}",
            )
        if weights.activation is not None and weights.activation != layer.activation:
            raise SpecError(
                f"{field}.activation",
                f"{weights.activation} given, the model's layer uses {layer.activation}",
            )
        rows = len(weights.weights)
        if rows != n_in:
            raise SpecError(
                f"{field}.weights",
                f"{rows} rows given, layer {index} has {n_in} inputs (weights is n_in × units)",
            )
        for row_index, row in enumerate(weights.weights):
            if len(row) != layer.units:
                raise SpecError(
                    f"{field}.weights.{row_index}",
                    f"{len(row)} numbers given, layer {index} has {layer.units} units",
                )
        if len(weights.biases) != layer.units:
            raise SpecError(
                f"{field}.biases",
                f"{len(weights.biases)} biases given, layer {index} has {layer.units} units",
            )
        n_in = layer.units


def spec_error_from_validation(exc: Any) -> SpecError:
    """The first error of a pydantic ``ValidationError`` as a ``SpecError``."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first.get("loc", ()))
    return SpecError(field, first.get("msg", "invalid value"))
