"""Bodies of the routes that show training (API.md "Seeing training"): snapshots, the
decision boundary, the backward pass. The routes answer with ``ORJSONResponse``
(NumPy arrays written natively); these models document the shapes in OpenAPI."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
#: A number in a target: integers within 64 bits (a class index, a value), finite floats.
TargetNumber = (
    Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]
    | Annotated[StrictFloat, Field(allow_inf_nan=False)]
)
#: One row's target, as in a dataset upload: a class name or index, a number, or a list.
Target = StrictStr | TargetNumber | list[TargetNumber]
Matrix = list[list[float]]


class SnapshotsOut(BaseModel):
    epochs: list[int] = Field(
        description="Epochs with a snapshot so far, ascending (also while the run runs).",
        examples=[[1, 2, 3, 5, 7, 10, 20]],
    )


class DecisionBoundaryOut(BaseModel):
    """A two-feature classification model over a grid."""

    epoch: int = Field(description="The epoch whose weights answered.")
    x: list[float] = Field(description="n grid values of the first feature (original units).")
    y: list[float] = Field(description="n grid values of the second feature.")
    class_names: list[str] = Field(description="The classes `predictions` index into.")
    predictions: list[list[int]] = Field(
        description="n × n: predictions[j][i] is the class index POST /predict gives for "
        "the point (x[i], y[j])."
    )
    confidence: list[list[float]] | None = Field(
        description="n × n: the predicted class's probability (largest softmax output; "
        "max(y, 1 − y) for one sigmoid unit); null for other single units."
    )


class FittedCurveOut(BaseModel):
    """A one-feature regression model along its feature."""

    epoch: int = Field(description="The epoch whose weights answered.")
    x: list[float] = Field(description="n values of the feature (original units).")
    values: list[float] | list[list[float]] = Field(
        description="The model's output at each x (a list per x for several outputs)."
    )


class BackpropRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"inputs": [[5.1, 3.5, 1.4, 0.2]], "targets": ["setosa"], "epoch": None}]
        },
    )

    inputs: list[list[FiniteFloat]] = Field(
        min_length=1, description="Rows of n_features finite numbers (raw, unstandardised)."
    )
    targets: list[Target] = Field(
        min_length=1,
        description="One per row, as in a dataset upload: class names or integer class "
        "indices (classification), numbers or lists of numbers (regression).",
    )
    epoch: int | None = Field(
        None,
        ge=1,
        le=2**31 - 1,
        description="A snapshot's epoch; null: the final model (or, before the run has "
        "one, its latest snapshot).",
    )


class LayerPassOut(BaseModel):
    inputs: Matrix = Field(description="What the layer received (the first: standardised rows).")
    net: Matrix = Field(description="inputs @ weights + biases.")
    outputs: Matrix = Field(description="f(net).")
    dvalues: Matrix = Field(description="∂L/∂outputs.")
    dnet: Matrix = Field(
        description="∂L/∂net as training computes it (step: = dvalues, the perceptron rule; "
        "softmax + cross_entropy: the fused (y − t)/N)."
    )
    dweights: Matrix = Field(description="inputsᵀ · dnet (n_in × units).")
    dbiases: list[float] = Field(description="Σ dnet over the rows.")
    dinputs: Matrix = Field(description="dnet · weightsᵀ.")


class BackpropOut(BaseModel):
    epoch: int = Field(description="The epoch whose weights were used.")
    loss: float = Field(description="The rows' data loss (mean over the rows, as in training).")
    penalty: float = Field(description="The L1/L2 term of the weights (not in the gradients).")
    layers: list[LayerPassOut] = Field(description="Input to output.")
