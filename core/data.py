"""Turning data into checked arrays: the ``Dataset`` every part of annlab trains on.

(Loaders for user data, CSV parsing and their checks are added below the
dataclass; the dataclass itself is the contract between engine and service.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.specs import DataShape, Task


@dataclass(frozen=True)
class Dataset:
    """A checked training set.

    ``features`` is float64 (n_samples, n_features), all finite. ``targets`` is
    int64 class indices (n_samples,) into ``class_names`` for classification,
    float64 (n_samples, n_outputs) for regression.
    """

    name: str
    task: Task
    features: np.ndarray
    targets: np.ndarray
    class_names: list[str] | None = None
    feature_names: list[str] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        return int(self.features.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])

    @property
    def n_classes(self) -> int | None:
        return len(self.class_names) if self.class_names is not None else None

    @property
    def n_outputs(self) -> int:
        """Width of the network output the data asks for: classes, or target columns."""
        if self.task == "classification":
            return len(self.class_names or [])
        return int(self.targets.shape[1])

    def shape(self) -> DataShape:
        return DataShape(
            task=self.task,
            n_features=self.n_features,
            n_outputs=self.n_outputs,
            n_classes=self.n_classes,
            n_samples=self.n_samples,
        )
