"""An experiment's results: statistics over the seeds of each grid point, and its best run.

Kept apart from ``core.grid`` (which makes the runs) because it reads only the runs'
best metrics; ``core.grid`` re-exports every name, so either import works.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

SEED_PATH = "training.seed"
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Stats:
    """mean, std (ddof 1; None for one value), min, max of one metric."""

    mean: float
    std: float | None
    min: float
    max: float

    def as_dict(self) -> dict[str, float | None]:
        return {"mean": self.mean, "std": self.std, "min": self.min, "max": self.max}


@dataclass(frozen=True)
class SummaryRow:
    """Runs whose params differ only in ``training.seed``: ``params`` without the
    seed, ``n`` the runs that have best metrics, and the metrics' statistics over
    them (None when no run has the metric, e.g. val_accuracy for regression)."""

    params: dict[str, Any]
    n: int
    val_loss: Stats | None
    val_accuracy: Stats | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "n": self.n,
            "val_loss": self.val_loss.as_dict() if self.val_loss else None,
            "val_accuracy": self.val_accuracy.as_dict() if self.val_accuracy else None,
        }


@dataclass(frozen=True)
class Best(Generic[K]):
    """The best run: ``metric`` is val_loss, or train_loss when no run has validation."""

    run_id: K
    metric: str
    value: float

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "metric": self.metric, "value": self.value}


def _number(metrics: Mapping[str, Any] | None, name: str) -> float | None:
    """A finite number under ``name``, else None (a missing metric, JSON null, NaN)."""
    value = None if metrics is None else metrics.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _stats(values: list[float]) -> Stats | None:
    """The statistics of ``values``; None for no values (the metric is nowhere)."""
    if not values:
        return None
    array = np.array(values, dtype=np.float64)
    return Stats(
        mean=float(array.mean()),
        std=float(array.std(ddof=1)) if len(values) > 1 else None,
        min=float(array.min()),
        max=float(array.max()),
    )


def summarize_over_seeds(
    runs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any] | None]],
) -> list[SummaryRow]:
    """One row per group of ``(params, best_metrics)`` that differ only in
    ``training.seed``, in the order of each group's first run. A run without best
    metrics yet (queued, failed before its first epoch) is in no statistic."""
    groups: dict[str, tuple[dict[str, Any], list[Mapping[str, Any]]]] = {}
    for params, metrics in runs:
        rest = {path: value for path, value in params.items() if path != SEED_PATH}
        key = json.dumps(rest, sort_keys=True, default=str)
        group = groups.setdefault(key, (copy.deepcopy(rest), []))
        if metrics is not None:
            group[1].append(metrics)
    rows = []
    for rest, finished in groups.values():
        losses = [v for v in (_number(m, "val_loss") for m in finished) if v is not None]
        accuracies = [v for v in (_number(m, "val_accuracy") for m in finished) if v is not None]
        rows.append(
            SummaryRow(
                params=rest,
                n=len(finished),
                val_loss=_stats(losses),
                val_accuracy=_stats(accuracies),
            )
        )
    return rows


def pick_best(runs: Sequence[tuple[K, Mapping[str, Any] | None]]) -> Best[K] | None:
    """The run with the lowest val_loss at its best epoch — train_loss when no run has
    a validation loss; the first such run on a tie; None when no run has either."""
    for metric in ("val_loss", "train_loss"):
        scored = [
            (value, run_id)
            for run_id, metrics in runs
            if (value := _number(metrics, metric)) is not None
        ]
        if scored:
            value, run_id = min(scored, key=lambda pair: pair[0])
            return Best(run_id=run_id, metric=metric, value=value)
    return None
