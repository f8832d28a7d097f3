"""Checks of a run spec against the service's configured limits (422 naming the setting)."""

from __future__ import annotations

from app.config import Settings
from app.errors import LimitExceeded, limit_message
from core.specs import RunSpec, count_parameters


def check_spec_limits(spec: RunSpec, *, n_features: int, settings: Settings) -> int:
    """Raise ``LimitExceeded`` for a spec over a limit; return its parameter count."""
    layers = spec.model.layers
    if len(layers) > settings.max_layers:
        raise LimitExceeded(
            "model.layers: "
            + limit_message("the number of layers", len(layers), settings.max_layers, "max_layers")
        )
    for index, layer in enumerate(layers):
        if layer.units > settings.max_units:
            raise LimitExceeded(
                f"model.layers.{index}.units: "
                + limit_message("the number of units", layer.units, settings.max_units, "max_units")
            )
    if spec.training.epochs > settings.max_epochs:
        raise LimitExceeded(
            "training.epochs: "
            + limit_message(
                "the number of epochs", spec.training.epochs, settings.max_epochs, "max_epochs"
            )
        )
    n_parameters = count_parameters(spec.model, n_features)
    if n_parameters > settings.max_parameters:
        raise LimitExceeded(
            "model: "
            + limit_message(
                "the number of parameters", n_parameters, settings.max_parameters, "max_parameters"
            )
        )
    return n_parameters
