"""The run spec as Pydantic models.

These models are the single description of a training job: the engine trains
from them and the service uses them, unchanged, as request bodies. Every model
forbids unknown fields, so a typo is an error that names the field instead of a
silent default. Checks that need only the spec live here as validators; checks
that need the dataset's shape live in :func:`check_against_dataset`.
"""

from __future__ import annotations

from typing import Annotated, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from core.optimizer_specs import (
    OPTIMIZER_TYPES,
    AdagradSpec,
    AdamSpec,
    Bool,
    ConstantSchedule,
    ExponentialSchedule,
    Float,
    Int,
    InverseTimeSchedule,
    OptimizerSpec,
    RMSPropSpec,
    ScheduleSpec,
    SGDSpec,
    Spec,
    StepSchedule,
    SurfaceName,
    TrajectoryRequest,
    default_optimizer,
)
from core.spec_checks import (
    check_against_dataset,
    count_parameters,
    default_loss,
    spec_error_from_validation,
    validation_size,
)

__all__ = [  # the optimizer names are re-exported: callers import them from here
    "ACTIVATIONS",
    "MAX_SNAPSHOT_EPOCHS",
    "MAX_TAGS",
    "NAME_MAX_LENGTH",
    "OPTIMIZER_TYPES",
    "AdagradSpec",
    "AdamSpec",
    "ConstantSchedule",
    "DataShape",
    "EarlyStoppingSpec",
    "ExponentialSchedule",
    "InitialWeights",
    "InverseTimeSchedule",
    "LayerSpec",
    "LayerWeights",
    "ModelSpec",
    "OptimizerSpec",
    "RMSPropSpec",
    "RunSpec",
    "SGDSpec",
    "ScheduleSpec",
    "Spec",
    "StandardizeDoc",
    "StepSchedule",
    "SurfaceName",
    "TrainingSpec",
    "TrajectoryRequest",
    "check_against_dataset",
    "count_parameters",
    "default_loss",
    "spec_error_from_validation",
    "validation_size",
]

#: The longest name anywhere (run, dataset, feature, class), JSON and multipart alike.
NAME_MAX_LENGTH = 200
#: Tags on one run: at most this many keys, each matching ``TAG_KEY_PATTERN``.
MAX_TAGS = 20
TAG_KEY_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,63}$"
TAG_VALUE_MAX_LENGTH = 256
#: Explicit snapshot epochs in one spec.
MAX_SNAPSHOT_EPOCHS = 200

TagKey = Annotated[str, StringConstraints(pattern=TAG_KEY_PATTERN, max_length=64)]
TagValue = Annotated[str, StringConstraints(max_length=TAG_VALUE_MAX_LENGTH)]

Activation = Literal["linear", "step", "sigmoid", "tanh", "arctan", "relu", "leaky_relu", "softmax"]
ACTIVATIONS: tuple[str, ...] = Activation.__args__  # type: ignore[attr-defined]

LossName = Literal["mse", "mae", "binary_cross_entropy", "cross_entropy"]
InitName = Literal["auto", "he", "glorot", "normal", "zeros"]
DType = Literal["float32", "float64"]
Task = Literal["classification", "regression"]

#: Activations whose natural output levels for a single-unit classifier are −1/+1.
SYMMETRIC_ACTIVATIONS = frozenset({"tanh", "arctan"})
#: The ReLU family, initialised with He by ``init: auto``.
RELU_FAMILY = frozenset({"relu", "leaky_relu"})


# --------------------------------------------------------------------------- model


class LayerSpec(Spec):
    """One dense layer: ``y = f(x @ W + b)``."""

    units: Int = Field(ge=1, description="Number of units (outputs) of the layer.", examples=[16])
    activation: Activation = Field(
        description="Activation f applied to x @ W + b. `softmax` only on the last layer; "
        "`step` is the perceptron's threshold unit (derivative 1 in backward).",
        examples=["relu"],
    )


class NormalInit(Spec):
    """Weights drawn from N(0, std²)."""

    type: Literal["normal"] = Field(description="Always `normal`.")
    std: Float = Field(1.0, gt=0, description="Standard deviation σ of N(0, σ²).", examples=[0.1])


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


# ------------------------------------------------------------------------ training


class EarlyStoppingSpec(Spec):
    """Stop after `patience` epochs without an improvement larger than `min_delta`."""

    patience: Int = Field(10, ge=1, description="Epochs without improvement before stopping.")
    min_delta: Float = Field(0.0, ge=0, description="An improvement must exceed this to count.")
    restore_best: Bool = Field(True, description="End with the best epoch's weights.")


class TrainingSpec(Spec):
    """How the network is trained."""

    epochs: Int = Field(100, ge=1, description="Passes over the training rows.")
    batch_size: Int | None = Field(
        32, ge=1, description="Rows per optimizer step; null = the whole training set."
    )
    shuffle: Bool = Field(
        True, description="Draw a new permutation of the training rows per epoch."
    )
    seed: Int = Field(0, ge=0, le=2**63 - 1, description="Seed of the one random generator.")
    validation_split: Float = Field(
        0.2, ge=0, le=0.9, description="Fraction held out (stratified for classification)."
    )
    standardize: Bool = Field(True, description="z-score features with training-row statistics.")
    early_stopping: EarlyStoppingSpec | None = Field(
        None, description="Early stopping on val_loss (train_loss without validation); null = off."
    )
    snapshots: Literal["log", "none"] | list[Int] = Field(
        "log",
        description="Epochs after which the weights are kept: `log` = 1, 2, 3, 5, 7, 10, 20, "
        "… ({1, 2, 3, 5, 7} × 10^k) and the last epoch run, thinned to fit "
        "ANNLAB_MAX_SNAPSHOT_BYTES; `none`; or a list of at most 200 epochs in 1..epochs "
        "(duplicates ignored). The snapshot at epoch e is bit for bit the final model of "
        "the same spec trained with `epochs: e`.",
        examples=["log", [1, 10, 100]],
    )
    threads: Int = Field(
        1,
        ge=1,
        description="BLAS threads of the run. Part of the spec because float32 results may "
        "change in their last bits with the thread count.",
    )

    @field_validator("snapshots")
    @classmethod
    def _snapshot_epochs(cls, value: str | list[int]) -> str | list[int]:
        if isinstance(value, str):
            return value
        if len(value) > MAX_SNAPSHOT_EPOCHS:
            raise ValueError(f"at most {MAX_SNAPSHOT_EPOCHS} snapshot epochs, {len(value)} given")
        if any(epoch < 1 for epoch in value):
            raise ValueError("snapshot epochs count from 1")
        return sorted(set(value))

    @model_validator(mode="after")
    def _snapshots_within_epochs(self) -> TrainingSpec:
        if isinstance(self.snapshots, list) and self.snapshots and self.snapshots[-1] > self.epochs:
            raise ValueError(
                f"snapshots: epoch {self.snapshots[-1]} is after the last epoch ({self.epochs})"
            )
        return self


# ------------------------------------------------------------------ initial weights


class LayerWeights(Spec):
    """One layer of a weights document: ``y = f(inputs @ weights + biases)``."""

    units: Int | None = Field(None, ge=1, description="If given, must match the model's layer.")
    activation: Activation | None = Field(
        None, description="If given, must match the model's layer."
    )
    weights: list[list[Float]] = Field(
        description="n_in rows of `units` numbers: weights[i][j] joins input i to unit j."
    )
    biases: list[Float] = Field(description="`units` numbers.")


class StandardizeDoc(Spec):
    mean: list[Float] = Field(description="Per-feature mean subtracted before the first layer.")
    std: list[Float] = Field(description="Per-feature deviation divided by before the first layer.")


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
        None,
        max_length=NAME_MAX_LENGTH,
        description="A label; defaults to '<optimizer> on <dataset>'.",
    )
    dataset: str = Field(
        min_length=1, max_length=NAME_MAX_LENGTH, description="Dataset id.", examples=["iris"]
    )
    tags: dict[TagKey, TagValue] = Field(
        default_factory=dict,
        max_length=MAX_TAGS,
        description=f"Short labels to find runs by (`?tag=key:value`): at most {MAX_TAGS} keys "
        "of up to 64 letters, digits and `_.-/` (no colon), values up to "
        f"{TAG_VALUE_MAX_LENGTH} characters.",
        examples=[{"course": "ann-lecture", "group": "b"}],
    )
    model: ModelSpec
    loss: LossName | None = Field(
        None,
        description="Omitted: cross_entropy for a softmax classifier, binary_cross_entropy for "
        "a single sigmoid output, mse otherwise.",
    )
    optimizer: OptimizerSpec = Field(
        default_factory=default_optimizer,
        description='Omitted: `{"type": "sgd"}` (plain gradient descent, ε = 0.01), where the '
        "lecture starts.",
    )
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    dtype: DType = Field("float32", description="Floating-point type of training.")
    initial_weights: InitialWeights | None = Field(
        None, description="Starting weights instead of the random initialisation."
    )

    @field_validator("name")
    @classmethod
    def _strip_name(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None


# --------------------------------------------------------- checks against the data


class Shaped(Protocol):
    """Anything that knows a dataset's shape: a loaded ``Dataset``, a built-in's info."""

    @property
    def task(self) -> Task: ...
    @property
    def n_features(self) -> int: ...
    @property
    def n_outputs(self) -> int: ...
    @property
    def n_classes(self) -> int | None: ...
    @property
    def n_samples(self) -> int | None: ...


class DataShape(BaseModel):
    """What the spec checks need to know of a dataset."""

    model_config = ConfigDict(frozen=True)

    task: Task
    n_features: int
    n_outputs: int
    n_classes: int | None = None
    n_samples: int | None = None

    @classmethod
    def of(cls, source: Shaped) -> DataShape:
        """The shape of a dataset or of a built-in's info (one copy of the field list)."""
        return cls(
            task=source.task,
            n_features=source.n_features,
            n_outputs=source.n_outputs,
            n_classes=source.n_classes,
            n_samples=source.n_samples,
        )
