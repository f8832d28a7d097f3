"""Helpers of the engine tests: specs written as dicts, normalised against a dataset."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from core.data import Dataset
from core.specs import RunSpec, check_against_dataset
from core.stopping import Stop


def make_spec(data: Dataset, **fields: Any) -> RunSpec:
    """A normalised RunSpec: ``fields`` override a small default (relu 8 → output)."""
    body: dict[str, Any] = {
        "dataset": data.name,
        "model": {
            "layers": [{"units": 8, "activation": "relu"}, {"units": 3, "activation": "softmax"}]
        },
        "optimizer": {"type": "adam", "learning_rate": 0.01},
        "dtype": "float64",
    }
    body.update(fields)
    return check_against_dataset(RunSpec.model_validate(body), data.shape())


def blobs(n: int = 60, seed: int = 0, n_classes: int = 3) -> Dataset:
    """Small, well separated Gaussian blobs (no dependency on core.datasets)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    centres = np.array([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])[:n_classes]
    features = centres[labels] + rng.normal(0.0, 0.5, size=(n, 2))
    return Dataset(
        name="blobs",
        task="classification",
        features=features,
        targets=labels.astype(np.int64),
        class_names=[f"c{k}" for k in range(n_classes)],
        feature_names=["x1", "x2"],
    )


@pytest.fixture
def small_blobs() -> Dataset:
    return blobs()


def pause_at(n_polls: int) -> Callable[[], Stop | None]:
    """A ``should_stop`` that answers PAUSE at its ``n_polls``-th call (set
    ``core.training.POLL_SECONDS`` to 0 to poll after every mini-batch)."""
    calls = {"n": 0}

    def should_stop() -> Stop | None:
        calls["n"] += 1
        return Stop.PAUSE if calls["n"] == n_polls else None

    return should_stop
