"""Checks of a run spec against the dataset it names, and the spec's derived numbers.

Separate from the models in :mod:`core.specs` (which re-exports every public name
here) because these need the data's shape: output width against classes or
targets, loss against activation and task, initial-weight shapes, the split.
Only types are taken from :mod:`core.specs`, so importing either module first works.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pydantic import ValidationError

from core.errors import SpecError

if TYPE_CHECKING:
    from core.specs import DataShape, LossName, ModelSpec, RunSpec, Task


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
                    f"a single output unit can only separate 2 classes, the dataset has "
                    f"{n_classes}: use {n_classes} units with softmax",
                    field=f"{out_field}.units",
                )
            if last.activation == "softmax":
                raise SpecError(
                    "softmax over a single unit always outputs 1: use sigmoid for one unit, "
                    "or 2 softmax units",
                    field=f"{out_field}.activation",
                )
        elif last.units != n_classes:
            raise SpecError(
                f"the output layer has {last.units} units but the dataset has {n_classes} "
                f"classes: use {n_classes} (one per class) or 1 for two classes",
                field=f"{out_field}.units",
            )
        if loss == "cross_entropy" and last.activation != "softmax":
            raise SpecError(
                "cross_entropy needs a softmax output layer (it expects class probabilities); "
                "use binary_cross_entropy with a single sigmoid unit, or mse",
                field="loss",
            )
        if loss == "binary_cross_entropy" and last.activation not in ("sigmoid", "softmax"):
            raise SpecError(
                f"binary_cross_entropy needs outputs in (0, 1): the output layer is "
                f"{last.activation}; use sigmoid",
                field="loss",
            )
    else:
        if last.units != shape.n_outputs:
            raise SpecError(
                f"the output layer has {last.units} units but the dataset has "
                f"{shape.n_outputs} target column(s)",
                field=f"{out_field}.units",
            )
        if last.activation == "softmax":
            raise SpecError(
                "softmax is for classification; a regression output is usually linear",
                field=f"{out_field}.activation",
            )
        if loss == "cross_entropy":
            raise SpecError(
                "cross_entropy is for classification with a softmax output", field="loss"
            )
        if loss == "binary_cross_entropy" and last.activation != "sigmoid":
            raise SpecError(
                "binary_cross_entropy needs a sigmoid output (values in (0, 1))", field="loss"
            )

    if spec.initial_weights is not None:
        _check_initial_weights(spec, shape.n_features)

    if shape.n_samples is not None and spec.training.validation_split > 0:
        n_val = validation_size(shape.n_samples, spec.training.validation_split)
        if shape.n_samples - n_val < 1:
            raise SpecError(
                f"validation_split {spec.training.validation_split} leaves no training rows "
                f"out of {shape.n_samples}",
                field="training.validation_split",
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
            f"{len(given)} layers given, the model has {len(layers)}",
            field="initial_weights.layers",
        )
    n_in = n_features
    for index, (layer, weights) in enumerate(zip(layers, given, strict=True)):
        field = f"initial_weights.layers.{index}"
        if weights.units is not None and weights.units != layer.units:
            raise SpecError(
                f"{weights.units} units given, the model's layer has {layer.units}",
                field=f"{field}.units",
            )
        if weights.activation is not None and weights.activation != layer.activation:
            raise SpecError(
                f"{weights.activation} given, the model's layer uses {layer.activation}",
                field=f"{field}.activation",
            )
        rows = len(weights.weights)
        if rows != n_in:
            raise SpecError(
                f"{rows} rows given, layer {index} has {n_in} inputs (weights is n_in × units)",
                field=f"{field}.weights",
            )
        for row_index, row in enumerate(weights.weights):
            if len(row) != layer.units:
                raise SpecError(
                    f"{len(row)} numbers given, layer {index} has {layer.units} units",
                    field=f"{field}.weights.{row_index}",
                )
        if len(weights.biases) != layer.units:
            raise SpecError(
                f"{len(weights.biases)} biases given, layer {index} has {layer.units} units",
                field=f"{field}.biases",
            )
        n_in = layer.units


def spec_error_from_validation(exc: ValidationError) -> SpecError:
    """The first error of a pydantic ``ValidationError`` as a ``SpecError``."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first.get("loc", ()))
    return SpecError(first.get("msg", "invalid value"), field=field)
