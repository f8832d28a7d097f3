"""Trained models made directly (random weights, optional standardisation) for the
tests of core.inspect, core.evaluate and core.export_onnx: no training needed."""

from __future__ import annotations

from typing import Any

import numpy as np

from core.serialize import TrainedModel
from core.specs import DataShape, RunSpec, Task, check_against_dataset


def make_model(
    layers: list[tuple[int, str]],
    *,
    task: Task,
    n_features: int,
    loss: str | None = None,
    dtype: str = "float64",
    standardize: bool = True,
    seed: int = 0,
    scale: float = 1.0,
    l1: float = 0.0,
    l2: float = 0.0,
    data: np.ndarray | None = None,
) -> TrainedModel:
    """A model of ``layers`` [(units, activation)] with weights N(0, scale²/n_in) and
    biases N(0, 0.1²); mean/std when ``standardize``: those of ``data`` if given,
    else drawn."""
    rng = np.random.default_rng(seed)
    units = layers[-1][0]
    n_classes = None
    if task == "classification":
        n_classes = 2 if units == 1 else units
    body: dict[str, Any] = {
        "dataset": "made",
        "model": {"layers": [{"units": u, "activation": a} for u, a in layers]},
        "optimizer": {"type": "sgd", "learning_rate": 0.1, "l1": l1, "l2": l2},
        "dtype": dtype,
        "loss": loss,
    }
    shape = DataShape(
        task=task, n_features=n_features, n_outputs=units, n_classes=n_classes, n_samples=100
    )
    spec = check_against_dataset(RunSpec.model_validate(body), shape)
    weights = []
    n_in = n_features
    for width, _ in layers:
        w = rng.normal(0.0, scale / np.sqrt(n_in), size=(n_in, width)).astype(dtype)
        b = rng.normal(0.0, 0.1, size=width).astype(dtype)
        weights.append((w, b))
        n_in = width
    mean = std = None
    if standardize and data is not None:
        mean, std = data.mean(axis=0), data.std(axis=0)
    elif standardize:
        mean = rng.normal(0.0, 2.0, size=n_features)
        std = rng.uniform(0.5, 3.0, size=n_features)
    names = None
    if n_classes is not None:
        names = [f"class{k}" for k in range(n_classes)]
    return TrainedModel(spec=spec, task=task, layers=weights, mean=mean, std=std, class_names=names)
