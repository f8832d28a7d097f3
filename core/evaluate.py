"""How well a trained model does on given rows: the numbers of ``POST /runs/{id}/evaluate``.

Computed from ``TrainedModel.predict``'s outputs — the same outputs and classes a
client gets — with NumPy alone (no scikit-learn at run time; the tests compare
against it).

- classification: ``loss`` (the model's data loss, as training reports it),
  ``accuracy``, ``confusion_matrix`` (rows: true class, columns: predicted, in
  ``class_names`` order), per class ``precision`` = tp / predicted, ``recall`` =
  tp / support, ``f1`` = 2 p r / (p + r) — each 0 where its denominator is 0 —
  and ``support``; ``macro_f1`` is the mean F1 over every class of the model,
  also those absent from the rows (scikit-learn's ``labels=all, zero_division=0``).
- regression: ``loss`` (the model's data loss: ½-mean for ``mse``), ``mse`` the
  plain mean of (t − y)² over rows and outputs, ``rmse`` = √mse, ``mae`` the mean
  of |t − y|, ``r2`` = 1 − SS_res / SS_tot per output, averaged over the outputs
  (an output whose targets are constant scores 1 if predicted exactly, else 0,
  as scikit-learn's ``force_finite``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core.errors import DatasetError
from core.inspect import prepare_rows
from core.losses import get_loss
from core.network import predict_classes
from core.serialize import TrainedModel
from core.targets import model_targets, regression_values


@dataclass(frozen=True)
class ClassMetrics:
    precision: float
    recall: float
    f1: float
    support: int  # rows of this true class


@dataclass(frozen=True)
class ClassificationReport:
    n: int
    loss: float
    accuracy: float
    class_names: tuple[str, ...]
    confusion_matrix: NDArray[np.int64]  # (K, K): [true, predicted]
    per_class: dict[str, ClassMetrics]  # in class_names order
    macro_f1: float

    def as_dict(self) -> dict[str, Any]:
        """API.md's answer."""
        return {
            "n": self.n,
            "loss": self.loss,
            "accuracy": self.accuracy,
            "confusion_matrix": self.confusion_matrix.tolist(),
            "per_class": {
                name: {
                    "precision": m.precision,
                    "recall": m.recall,
                    "f1": m.f1,
                    "support": m.support,
                }
                for name, m in self.per_class.items()
            },
            "macro_f1": self.macro_f1,
        }


@dataclass(frozen=True)
class RegressionReport:
    n: int
    loss: float
    mse: float
    rmse: float
    mae: float
    r2: float

    def as_dict(self) -> dict[str, Any]:
        """API.md's answer."""
        return {
            "n": self.n,
            "loss": self.loss,
            "mse": self.mse,
            "rmse": self.rmse,
            "mae": self.mae,
            "r2": self.r2,
        }


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def _classification(
    labels: NDArray[np.int64], predicted: NDArray[np.int64], names: Sequence[str], loss: float
) -> ClassificationReport:
    k = len(names)
    matrix = np.bincount(labels * k + predicted, minlength=k * k).reshape(k, k).astype(np.int64)
    true_positive = np.diag(matrix)
    per_class: dict[str, ClassMetrics] = {}
    for index, name in enumerate(names):
        tp = int(true_positive[index])
        precision = _ratio(tp, int(matrix[:, index].sum()))
        recall = _ratio(tp, int(matrix[index].sum()))
        per_class[name] = ClassMetrics(
            precision=precision,
            recall=recall,
            f1=_ratio(2 * precision * recall, precision + recall),
            support=int(matrix[index].sum()),
        )
    return ClassificationReport(
        n=len(labels),
        loss=loss,
        accuracy=float(np.count_nonzero(labels == predicted)) / len(labels),
        class_names=tuple(names),
        confusion_matrix=matrix,
        per_class=per_class,
        macro_f1=sum(m.f1 for m in per_class.values()) / k,
    )


def _r2(targets: NDArray[np.float64], outputs: NDArray[np.float64]) -> float:
    scores = []
    for column in range(targets.shape[1]):
        t, y = targets[:, column], outputs[:, column]
        residual = float(np.sum(np.square(t - y)))
        total = float(np.sum(np.square(t - t.mean())))
        if total == 0:
            scores.append(1.0 if residual == 0 else 0.0)
        else:
            scores.append(1.0 - residual / total)
    return sum(scores) / len(scores)


def evaluate(
    model: TrainedModel,
    *,
    features: NDArray[Any] | Sequence[Sequence[float]],
    targets: NDArray[Any] | Sequence[Any],
) -> ClassificationReport | RegressionReport:
    """The report of ``model`` on raw ``features`` with ``targets`` as in a dataset
    upload (class names or indices; numbers or lists). DatasetError names a bad
    row or target."""
    rows = prepare_rows(model, features)  # checks shape and range; predict prepares again
    if len(targets) != rows.shape[0]:
        raise DatasetError(
            f"{len(targets)} targets for {rows.shape[0]} rows: give one per row", field="targets"
        )
    encoded = model_targets(model, targets)
    outputs, _ = model.predict(np.asarray(features, dtype=np.float64))
    assert model.spec.loss is not None, "a trained model's spec is normalised"
    loss = get_loss(model.spec.loss).value(outputs, encoded.encoded)
    if encoded.labels is not None:
        predicted = predict_classes(outputs, model.spec.model.layers[-1].activation)
        return _classification(
            encoded.labels, predicted.astype(np.int64), model.class_names or [], loss
        )
    values = outputs.astype(np.float64)
    truth = regression_values(targets, values.shape[1])  # as sent, not rounded to the dtype
    errors = truth - values
    mse = float(np.mean(np.square(errors)))
    return RegressionReport(
        n=values.shape[0],
        loss=loss,
        mse=mse,
        rmse=math.sqrt(mse),
        mae=float(np.mean(np.abs(errors))),
        r2=_r2(truth, values),
    )
