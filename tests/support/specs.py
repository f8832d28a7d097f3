"""Run specs the tests submit (JSON bodies of ``POST /api/v1/runs``)."""

from __future__ import annotations

from typing import Any


def iris_spec(*, epochs: int = 20, name: str = "test iris", **training: Any) -> dict[str, Any]:
    """A small Adam run on iris: trains in well under a second."""
    return {
        "name": name,
        "dataset": "iris",
        "model": {
            "layers": [{"units": 8, "activation": "relu"}, {"units": 3, "activation": "softmax"}]
        },
        "loss": "cross_entropy",
        "optimizer": {"type": "adam", "learning_rate": 0.01},
        "training": {"epochs": epochs, "batch_size": 16, "seed": 0, **training},
        "dtype": "float64",
    }


def long_spec(
    epochs: int = 100_000, *, name: str = "test long", seed: int = 0, **training: Any
) -> dict[str, Any]:
    """A run that trains for as long as a test needs it running (stopped by the test):
    one sample per mini-batch, many epochs."""
    return {
        "name": name,
        "dataset": "iris",
        "model": {
            "layers": [{"units": 32, "activation": "tanh"}, {"units": 3, "activation": "softmax"}]
        },
        "optimizer": {"type": "sgd", "learning_rate": 0.01, "momentum": 0.9},
        "training": {"epochs": epochs, "batch_size": 1, "seed": seed, **training},
        "dtype": "float64",
    }
