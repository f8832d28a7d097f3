"""The built-in datasets: always available, read-only, the same bits on every call.

Each synthetic set is drawn from its own fixed seed with ``numpy.random.default_rng``
and its rows are shuffled once with the same generator, so a prefix of the rows
holds every class. ``iris`` is read from ``iris.csv`` next to this module.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import numpy as np

from core.data import Dataset
from core.loaders import dataset_from_csv
from core.specs import DataShape, Task


@dataclass(frozen=True)
class BuiltinInfo:
    """What the service lists for a built-in dataset, known without loading it."""

    task: Task
    description: str
    n_samples: int
    n_features: int
    n_outputs: int
    class_names: tuple[str, ...] | None
    feature_names: tuple[str, ...]

    @property
    def n_classes(self) -> int | None:
        return len(self.class_names) if self.class_names is not None else None

    def shape(self) -> DataShape:
        return DataShape.of(self)


_XY = ("x1", "x2")
_BINARY = ("0", "1")

BUILTIN_DATASETS: dict[str, BuiltinInfo] = {
    "iris": BuiltinInfo(
        "classification",
        "Fisher's iris (1936): sepal and petal length and width in cm of 50 flowers "
        "of each of three species.",
        150,
        4,
        3,
        ("setosa", "versicolor", "virginica"),
        ("sepal_length", "sepal_width", "petal_length", "petal_width"),
    ),
    "xor": BuiltinInfo(
        "classification",
        "The XOR truth table: class 1 when exactly one input is 1. Not linearly separable.",
        4,
        2,
        2,
        _BINARY,
        _XY,
    ),
    "blobs": BuiltinInfo(
        "classification",
        "Two Gaussian blobs of 100 points each, linearly separable with a clear margin "
        "(the perceptron case).",
        200,
        2,
        2,
        _BINARY,
        _XY,
    ),
    "moons": BuiltinInfo(
        "classification",
        "Two interleaved half circles of 200 points each, with Gaussian noise (σ = 0.1).",
        400,
        2,
        2,
        _BINARY,
        _XY,
    ),
    "circles": BuiltinInfo(
        "classification",
        "A disc (class 0, radius ≤ 0.5) inside a ring (class 1, radius 0.8 to 1.0), "
        "200 points each.",
        400,
        2,
        2,
        _BINARY,
        _XY,
    ),
    "spiral": BuiltinInfo(
        "classification",
        "Three interleaved spiral arms of 200 points each (the CS231n spiral).",
        600,
        2,
        3,
        ("0", "1", "2"),
        _XY,
    ),
    "sine": BuiltinInfo(
        "regression",
        "y = sin(x) + N(0, 0.05²) for 400 x drawn uniformly on [−π, π].",
        400,
        1,
        1,
        None,
        ("x",),
    ),
}


def load_builtin(name: str) -> Dataset:
    """The built-in dataset ``name``; ``KeyError`` for an unknown name.

    The result is cached and shared, so its arrays are made read-only.
    """
    if not isinstance(name, str) or name not in BUILTIN_DATASETS:
        raise KeyError(name)
    return _load(name)


@functools.lru_cache(maxsize=16)  # one entry per built-in set
def _load(name: str) -> Dataset:
    dataset = _LOADERS[name]()
    dataset.features.flags.writeable = False
    dataset.targets.flags.writeable = False
    return dataset


def _iris() -> Dataset:
    content = resources.files(__package__).joinpath("iris.csv").read_bytes()
    # 150 rows: importing pyarrow (and pandas, where installed) took a worker's first
    # iris run 0.3 s; Python's reader gives the same bits
    return dataset_from_csv(
        content=content, target="species", task="classification", name="iris", arrow=False
    )


def _xor() -> Dataset:
    features = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    targets = np.array([0, 1, 1, 0], dtype=np.int64)
    return _classification("xor", features, targets)


def _blobs() -> Dataset:
    """N((−2, −1), 0.5²) and N((2, 1), 0.5²): the centres are √20 ≈ 4.47 (about 9 σ) apart."""
    rng = np.random.default_rng(20240601)
    centres = np.array([[-2.0, -1.0], [2.0, 1.0]])
    per_class = 100
    features = np.concatenate([c + 0.5 * rng.standard_normal((per_class, 2)) for c in centres])
    targets = np.repeat(np.arange(2, dtype=np.int64), per_class)
    return _classification("blobs", features, targets, rng)


def _moons() -> Dataset:
    """Outer moon (cos t, sin t), inner moon (1 − cos t, ½ − sin t), t ∈ [0, π]."""
    rng = np.random.default_rng(20240602)
    per_class = 200
    t = np.linspace(0.0, np.pi, per_class)
    outer = np.column_stack([np.cos(t), np.sin(t)])
    inner = np.column_stack([1.0 - np.cos(t), 0.5 - np.sin(t)])
    features = np.concatenate([outer, inner]) + 0.1 * rng.standard_normal((2 * per_class, 2))
    targets = np.repeat(np.arange(2, dtype=np.int64), per_class)
    return _classification("moons", features, targets, rng)


def _circles() -> Dataset:
    """Disc: radius 0.5 √u (uniform over the area); ring: radius uniform on [0.8, 1]."""
    rng = np.random.default_rng(20240603)
    per_class = 200
    radius = np.concatenate(
        [0.5 * np.sqrt(rng.uniform(size=per_class)), rng.uniform(0.8, 1.0, size=per_class)]
    )
    angle = rng.uniform(0.0, 2.0 * np.pi, size=2 * per_class)
    features = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    targets = np.repeat(np.arange(2, dtype=np.int64), per_class)
    return _classification("circles", features, targets, rng)


def _spiral() -> Dataset:
    """CS231n: arm k has r = linspace(0, 1), θ = linspace(4k, 4k + 4) + N(0, 0.2²)."""
    rng = np.random.default_rng(20240604)
    per_class, n_classes = 200, 3
    arms = []
    for k in range(n_classes):
        r = np.linspace(0.0, 1.0, per_class)
        theta = np.linspace(4.0 * k, 4.0 * (k + 1), per_class) + 0.2 * rng.standard_normal(
            per_class
        )
        arms.append(np.column_stack([r * np.sin(theta), r * np.cos(theta)]))
    targets = np.repeat(np.arange(n_classes, dtype=np.int64), per_class)
    return _classification("spiral", np.concatenate(arms), targets, rng)


def _sine() -> Dataset:
    rng = np.random.default_rng(20240605)
    x = rng.uniform(-np.pi, np.pi, size=400)
    y = np.sin(x) + 0.05 * rng.standard_normal(400)
    info = BUILTIN_DATASETS["sine"]
    return Dataset("sine", "regression", x[:, None], y[:, None], None, list(info.feature_names))


def _classification(
    name: str,
    features: np.ndarray,
    targets: np.ndarray,
    rng: np.random.Generator | None = None,
) -> Dataset:
    if rng is not None:
        order = rng.permutation(len(targets))
        features, targets = features[order], targets[order]
    info = BUILTIN_DATASETS[name]
    assert info.class_names is not None
    return Dataset(
        name,
        "classification",
        np.ascontiguousarray(features, dtype=np.float64),
        np.ascontiguousarray(targets, dtype=np.int64),
        list(info.class_names),
        list(info.feature_names),
    )


_LOADERS: dict[str, Callable[[], Dataset]] = {
    "iris": _iris,
    "xor": _xor,
    "blobs": _blobs,
    "moons": _moons,
    "circles": _circles,
    "spiral": _spiral,
    "sine": _sine,
}

__all__ = ["BUILTIN_DATASETS", "BuiltinInfo", "load_builtin"]
