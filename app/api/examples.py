"""The request examples of the OpenAPI document (what ``/docs`` offers to try)."""

from __future__ import annotations

from typing import Any

_LAYERS = [{"units": 16, "activation": "relu"}, {"units": 3, "activation": "softmax"}]
_TRAINING = {"epochs": 100, "batch_size": 16, "seed": 0, "validation_split": 0.2}
RUN_EXAMPLES: dict[str, dict[str, Any]] = {
    "adam": {
        "summary": "Adam on iris (with early stopping)",
        "value": {
            "name": "adam on iris",
            "dataset": "iris",
            "model": {"layers": _LAYERS, "init": "auto"},
            "loss": "cross_entropy",
            "optimizer": {"type": "adam", "learning_rate": 0.01},
            "training": {
                **_TRAINING,
                "early_stopping": {"patience": 20, "min_delta": 0.0, "restore_best": True},
            },
            "dtype": "float64",
        },
    },
    "sgd": {
        "summary": "SGD with Nesterov momentum and a step schedule",
        "value": {
            "dataset": "iris",
            "model": {"layers": _LAYERS},
            "optimizer": {
                "type": "sgd",
                "learning_rate": 0.05,
                "momentum": 0.9,
                "nesterov": True,
                "schedule": {"type": "step", "step_size": 200, "gamma": 0.5},
            },
            "training": _TRAINING,
        },
    },
    "adagrad": {
        "summary": "Adagrad with L2 on the weights",
        "value": {
            "dataset": "moons",
            "model": {
                "layers": [
                    {"units": 16, "activation": "tanh"},
                    {"units": 2, "activation": "softmax"},
                ]
            },
            "optimizer": {"type": "adagrad", "learning_rate": 0.1, "l2": 0.001},
            "training": _TRAINING,
        },
    },
    "rmsprop": {
        "summary": "RMSProp, regression on sine",
        "value": {
            "dataset": "sine",
            "model": {
                "layers": [
                    {"units": 32, "activation": "tanh"},
                    {"units": 1, "activation": "linear"},
                ]
            },
            "loss": "mse",
            "optimizer": {
                "type": "rmsprop",
                "learning_rate": 0.005,
                "rho": 0.9,
                "schedule": {"type": "inverse_time", "decay": 0.001},
            },
            "training": {"epochs": 300, "batch_size": 32},
        },
    },
    "perceptron": {
        "summary": "The classic perceptron on blobs (step unit, batch gradient descent)",
        "value": {
            "dataset": "blobs",
            "model": {"layers": [{"units": 1, "activation": "step"}], "init": "zeros"},
            "loss": "mse",
            "optimizer": {"type": "sgd", "learning_rate": 0.1},
            "training": {"epochs": 50, "batch_size": None, "validation_split": 0.0},
        },
    },
}
