"""core.evaluate: reports checked against numbers worked out by hand (and against
scikit-learn's metrics where it is installed — a test-only reference)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.errors import DatasetError
from core.evaluate import ClassificationReport, ClassMetrics, RegressionReport, evaluate
from core.serialize import TrainedModel
from tests.core.models import make_model


def _identity_classifier(n_classes: int, activation: str = "softmax") -> TrainedModel:
    """Outputs = softmax(inputs): the predicted class is the largest input."""
    model = make_model(
        [(n_classes, activation)], task="classification", n_features=n_classes, standardize=False
    )
    model.layers = [(np.eye(n_classes), np.zeros(n_classes))]
    return model


def _identity_regressor(n_outputs: int = 1, dtype: str = "float64") -> TrainedModel:
    model = make_model(
        [(n_outputs, "linear")],
        task="regression",
        n_features=n_outputs,
        standardize=False,
        dtype=dtype,
    )
    model.layers = [(np.eye(n_outputs, dtype=dtype), np.zeros(n_outputs, dtype=dtype))]
    return model


TRUE = [0, 0, 1, 1, 2, 2, 2]
PREDICTED = [0, 1, 1, 1, 2, 0, 2]


def test_classification_by_hand() -> None:
    model = _identity_classifier(3)
    logits = 2.0 * np.eye(3)[PREDICTED]
    names = model.class_names or []
    # targets by name and by index alike
    targets = [names[k] if row % 2 else k for row, k in enumerate(TRUE)]
    report = evaluate(model, features=logits, targets=targets)
    assert isinstance(report, ClassificationReport)
    assert report.n == 7
    assert report.accuracy == pytest.approx(5 / 7)
    assert report.confusion_matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    assert report.per_class == {
        "class0": ClassMetrics(precision=0.5, recall=0.5, f1=0.5, support=2),
        "class1": ClassMetrics(
            precision=pytest.approx(2 / 3), recall=1.0, f1=pytest.approx(0.8), support=2
        ),  # type: ignore[arg-type]
        "class2": ClassMetrics(
            precision=1.0, recall=pytest.approx(2 / 3), f1=pytest.approx(0.8), support=3
        ),  # type: ignore[arg-type]
    }
    assert report.macro_f1 == pytest.approx(0.7)
    # cross-entropy of softmax(2·onehot): −log p(true class), averaged
    p_hit = math.exp(2) / (math.exp(2) + 2)
    p_miss = 1 / (math.exp(2) + 2)
    assert report.loss == pytest.approx(
        -(5 * math.log(p_hit) + 2 * math.log(p_miss)) / 7, rel=1e-12
    )
    document = report.as_dict()
    assert set(document) == {"n", "loss", "accuracy", "confusion_matrix", "per_class", "macro_f1"}
    assert document["per_class"]["class0"] == {
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "support": 2,
    }


def test_a_class_never_seen_nor_predicted_scores_zero_without_warnings() -> None:
    model = _identity_classifier(4)
    with np.errstate(all="raise"):
        report = evaluate(model, features=2.0 * np.eye(4)[PREDICTED], targets=TRUE)
    assert isinstance(report, ClassificationReport)
    assert report.per_class["class3"] == ClassMetrics(precision=0.0, recall=0.0, f1=0.0, support=0)
    assert report.confusion_matrix.shape == (4, 4)
    assert report.macro_f1 == pytest.approx(2.1 / 4)


def test_a_single_unit_classifier_uses_the_side_of_the_midpoint() -> None:
    model = make_model([(1, "tanh")], task="classification", n_features=1, standardize=False)
    model.layers = [(np.ones((1, 1)), np.zeros(1))]
    inputs = np.array([[-2.0], [-0.5], [0.5], [2.0]])  # predicted 0, 0, 1, 1
    report = evaluate(model, features=inputs, targets=[0, 1, 1, 1])
    assert isinstance(report, ClassificationReport)
    assert report.confusion_matrix.tolist() == [[1, 0], [1, 2]]
    # mse against the levels −1/+1: mean of ½ (t − tanh x)²
    t = np.array([-1.0, 1.0, 1.0, 1.0])
    assert report.loss == pytest.approx(0.5 * np.mean((t - np.tanh(inputs[:, 0])) ** 2), rel=1e-12)


def test_regression_by_hand() -> None:
    report = evaluate(
        _identity_regressor(), features=[[1.0], [2.0], [3.0], [4.0]], targets=[1, 3, 2, 6]
    )
    # errors 0, 1, −1, 2; mean target 3, SS_tot 14, SS_res 6
    assert report == RegressionReport(
        n=4, loss=0.75, mse=1.5, rmse=math.sqrt(1.5), mae=1.0, r2=1 - 6 / 14
    )
    assert report.as_dict() == {
        "n": 4,
        "loss": 0.75,
        "mse": 1.5,
        "rmse": math.sqrt(1.5),
        "mae": 1.0,
        "r2": 1 - 6 / 14,
    }


def test_regression_with_two_outputs_averages_r2_over_them() -> None:
    features = [[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]
    report = evaluate(_identity_regressor(2), features=features, targets=[[1, 5], [2, 5], [4, 5]])
    assert isinstance(report, RegressionReport)
    # output 0: errors 0, 0, 1 (SS_tot 14/3); output 1: constant target, missed: 0
    assert report.mse == pytest.approx((1 + 75) / 6)
    assert report.r2 == pytest.approx(((1 - 1 / (14 / 3)) + 0.0) / 2)
    exact = evaluate(
        _identity_regressor(2), features=[[1.0, 5.0], [2.0, 5.0]], targets=[[1, 5], [2, 5]]
    )
    assert isinstance(exact, RegressionReport) and exact.r2 == 1.0 and exact.mse == 0.0


def test_float32_metrics_use_the_targets_as_sent() -> None:
    report = evaluate(
        _identity_regressor(dtype="float32"), features=[[0.0], [0.0]], targets=[0.1, 0.3]
    )
    assert isinstance(report, RegressionReport)
    assert report.mae == pytest.approx(0.2, rel=1e-15)


def test_bad_input_is_named() -> None:
    model = _identity_classifier(3)
    with pytest.raises(DatasetError, match="one per row"):
        evaluate(model, features=np.eye(3), targets=[0, 1])
    with pytest.raises(DatasetError, match="rows of 3 numbers"):
        evaluate(model, features=[[1.0, 2.0]], targets=[0])
    with pytest.raises(DatasetError, match="does not know"):
        evaluate(model, features=np.eye(3)[:1], targets=["dog"])


@pytest.mark.parametrize("seed", range(5))
def test_against_scikit_learn(seed: int) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    k = 4
    model = make_model(
        [(6, "tanh"), (k, "softmax")], task="classification", n_features=3, seed=seed, scale=3.0
    )
    features = rng.normal(0.0, 2.0, size=(200, 3))
    labels = rng.integers(0, k, size=200)
    report = evaluate(model, features=features, targets=labels)
    assert isinstance(report, ClassificationReport)
    _, names = model.predict(features)
    predicted = [(model.class_names or []).index(name) for name in names]
    everything = list(range(k))
    np.testing.assert_array_equal(
        report.confusion_matrix, metrics.confusion_matrix(labels, predicted, labels=everything)
    )
    p, r, f, s = metrics.precision_recall_fscore_support(
        labels, predicted, labels=everything, zero_division=0
    )
    for index, name in enumerate(report.class_names):
        m = report.per_class[name]
        assert (m.precision, m.recall, m.f1, m.support) == pytest.approx(
            (p[index], r[index], f[index], s[index])
        )
    assert report.macro_f1 == pytest.approx(
        metrics.f1_score(labels, predicted, labels=everything, average="macro", zero_division=0)
    )
    assert report.accuracy == pytest.approx(metrics.accuracy_score(labels, predicted))

    regressor = make_model([(5, "relu"), (2, "linear")], task="regression", n_features=3, seed=seed)
    targets = rng.normal(0.0, 1.0, size=(200, 2))
    result = evaluate(regressor, features=features, targets=targets)
    assert isinstance(result, RegressionReport)
    y = regressor.predict(features)[0]
    assert result.mse == pytest.approx(metrics.mean_squared_error(targets, y))
    assert result.mae == pytest.approx(metrics.mean_absolute_error(targets, y))
    assert result.r2 == pytest.approx(metrics.r2_score(targets, y))
    assert result.loss == pytest.approx(result.mse / 2)
