"""The ``Dataset`` every part of annlab trains on, and how training prepares it.

The dataclass is the contract between engine and service. Below it: the
validation split and the standardisation (ENGINE.md's RNG order and numbers),
and the features as the network sees them. Turning user data (JSON, CSV,
``.npz``) into a ``Dataset`` is :mod:`core.loaders`' job; its functions are also
reachable here under their old names (``core.data.dataset_from_csv``, ...).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import DatasetError
from core.spec_checks import validation_size
from core.specs import DataShape, Task

#: Names that moved to :mod:`core.loaders`, still importable from here.
_LOADER_NAMES = frozenset(
    {
        "TASKS",
        "MAX_FEATURES",
        "dataset_from_csv",
        "dataset_from_json",
        "dataset_from_npz_bytes",
        "dataset_to_npz_bytes",
    }
)

#: Rows per step of :func:`network_inputs` (4 MiB of float64 at 8 features).
INPUT_CHUNK = 65_536


def __getattr__(name: str) -> Any:
    """Old import paths of the loaders (``from core.data import dataset_from_csv``).

    Resolved lazily: :mod:`core.loaders` imports ``Dataset`` from here, so an eager
    re-export would make the two modules' import order matter.
    """
    if name in _LOADER_NAMES:
        from core import loaders

        return getattr(loaders, name)
    raise AttributeError(f"module 'core.data' has no attribute {name!r}")


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
        return DataShape.of(self)


# ---------------------------------------------------- split and standardisation


def split_indices(
    data: Dataset, split: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows), each sorted; draws as the module docstring says."""
    n_samples = data.n_samples
    n_val = validation_size(n_samples, split)
    if n_val == 0:
        return np.arange(n_samples, dtype=np.int64), np.empty(0, dtype=np.int64)
    if data.task == "classification":
        labels = np.asarray(data.targets, dtype=np.int64)
        n_classes = data.n_classes or int(labels.max()) + 1
        members = [np.flatnonzero(labels == label) for label in range(n_classes)]
        shares = [split * len(rows) for rows in members]
        quotas = [math.floor(share) for share in shares]
        missing = n_val - sum(quotas)
        by_fraction = sorted(
            range(n_classes), key=lambda label: (-(shares[label] - quotas[label]), label)
        )
        for label in by_fraction[:missing]:
            quotas[label] += 1
        chosen = [
            rng.permutation(rows)[:quota] for rows, quota in zip(members, quotas, strict=True)
        ]
        val_index = np.sort(np.concatenate(chosen)).astype(np.int64)
    else:
        val_index = np.sort(rng.permutation(n_samples)[:n_val]).astype(np.int64)
    is_val = np.zeros(n_samples, dtype=bool)
    is_val[val_index] = True
    return np.flatnonzero(~is_val).astype(np.int64), val_index


def standardization(
    features: np.ndarray, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation (ddof 0; 0 → 1), float64, of the rows
    ``rows`` of ``features`` (all rows when None).

    A column whose sum or squares overflow (|x| near 1e154 and beyond) is computed
    again divided by its largest |x| and scaled back: the same numbers up to rounding,
    finite instead of inf/NaN. Other columns are untouched (same bits as always).
    """
    if rows is not None and features.shape[1] >= 2 and len(rows) > INPUT_CHUNK:
        mean, std = _chunked_moments(features, rows)
    else:
        features = features if rows is None else features[rows]
        with np.errstate(over="ignore", invalid="ignore"):
            mean = features.mean(axis=0)
            std = features.std(axis=0)
    overflowed = ~(np.isfinite(mean) & np.isfinite(std))
    if overflowed.any():
        columns = features[:, overflowed] if rows is None else features[np.ix_(rows, overflowed)]
        scale = np.abs(columns).max(axis=0)
        scaled = columns / scale
        mean[overflowed] = scaled.mean(axis=0) * scale
        std[overflowed] = scaled.std(axis=0) * scale
    std[std == 0] = 1.0
    return mean, std


def _chunked_moments(features: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``features[rows].mean(axis=0)`` and ``.std(axis=0)``, bit for bit, without the
    gathered copy and the same-size temporary of ``std`` (61 MiB each at 10⁶ × 8).

    NumPy reduces a C-ordered matrix of two or more columns over its rows one row after
    the other (pairwise summation is along the contiguous axis only), so carrying the
    running sum into the next chunk as its first row adds in the same order.
    ``tests/core/test_large_sets.py`` holds this against NumPy's own result."""
    n = len(rows)

    def total(transform: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        running: np.ndarray | None = None
        for start in range(0, n, INPUT_CHUNK):
            block = transform(features[rows[start : start + INPUT_CHUNK]])
            if running is not None:
                block = np.concatenate([running[None, :], block])
            running = np.add.reduce(block, axis=0)
        assert running is not None
        return running

    def squared_deviation(block: np.ndarray) -> np.ndarray:
        block -= mean
        np.multiply(block, block, out=block)
        return block

    with np.errstate(over="ignore", invalid="ignore"):
        mean = total(lambda block: block) / n
        std = np.sqrt(total(squared_deviation) / n)
    return mean, std


def network_inputs(
    data: Dataset,
    mean: np.ndarray | None,
    std: np.ndarray | None,
    dtype: np.dtype[Any],
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """The rows (all, or ``rows`` in that order) as the network sees them:
    ``(x − mean) / std`` in float64, then ``dtype``.

    Computed ``INPUT_CHUNK`` rows at a time into the one result, so that neither the
    float64 standardised copy nor the full-size gather exists whole (at 10⁶ rows those
    were 61 MiB each, beside the result): the same arithmetic row by row, the same bits.

    Raises ``DatasetError`` naming the row, column and value when a feature is not
    finite after that (|x| ≳ 1e154 against its mean, or beyond float32's range).
    """
    source = data.features
    if rows is None and mean is None and source.dtype == dtype and source.flags.c_contiguous:
        out = source  # already what the network sees: checked, not copied
    else:
        out = _converted(source, mean, std, dtype, rows)
    if np.isfinite(out).all():
        return out
    position, column = (int(i) for i in np.argwhere(~np.isfinite(out))[0])
    row = position if rows is None else int(rows[position])
    value = f"features[{row}][{column}] = {source[row, column]:g}"
    if mean is not None and not np.isfinite(source[row, column] - mean[column]):
        raise DatasetError(
            f"{value} cannot be standardised: its distance to the feature's mean "
            f"({mean[column]:g}) overflows float64; rescale the feature"
        )
    raise DatasetError(
        f"{value} is out of range for {dtype.name} (largest finite ≈ "
        f"{np.finfo(dtype).max:.1e}): use dtype float64, standardize, or rescale the feature"
    )


def _converted(
    source: np.ndarray,
    mean: np.ndarray | None,
    std: np.ndarray | None,
    dtype: np.dtype[Any],
    rows: np.ndarray | None,
) -> np.ndarray:
    """``network_inputs``' arithmetic, ``INPUT_CHUNK`` rows at a time into one result."""
    n_rows = source.shape[0] if rows is None else len(rows)
    out = np.empty((n_rows, source.shape[1]), dtype=dtype)
    for start in range(0, n_rows, INPUT_CHUNK):
        stop = min(start + INPUT_CHUNK, n_rows)
        block = source[start:stop] if rows is None else source[rows[start:stop]]
        with np.errstate(over="ignore", invalid="ignore"):
            if mean is not None and std is not None:
                block = (block - mean) / std
            out[start:stop] = block
    return out
