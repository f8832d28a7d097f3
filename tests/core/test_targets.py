"""core.targets: request targets → the engine's encoding for one model."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import DatasetError
from core.targets import class_indices, model_targets, regression_values
from tests.core.models import make_model


def test_strings_are_names_and_integers_are_indices() -> None:
    names = ["1", "2", "10"]
    assert class_indices(["1", 1, "10", 0, 2.0, np.int64(2)], names).tolist() == [0, 1, 2, 0, 2, 2]
    with pytest.raises(DatasetError, match=r"targets\[0\].*True"):
        class_indices([True], names)
    with pytest.raises(DatasetError, match=r"targets\[1\] is 1\.5"):
        class_indices([0, 1.5], names)
    with pytest.raises(DatasetError, match="does not know"):
        class_indices(["3"], names)


@pytest.mark.parametrize(("activation", "levels"), [("tanh", [-1.0, 1.0]), ("sigmoid", [0.0, 1.0])])
def test_a_single_unit_uses_its_natural_levels(activation: str, levels: list[float]) -> None:
    model = make_model([(1, activation)], task="classification", n_features=2)
    targets = model_targets(model, ["class1", 0, 1])
    assert targets.encoded.tolist() == [[levels[1]], [levels[0]], [levels[1]]]
    assert targets.labels is not None and targets.labels.tolist() == [1, 0, 1]


def test_several_classes_are_one_hot() -> None:
    model = make_model([(3, "softmax")], task="classification", n_features=2, dtype="float32")
    targets = model_targets(model, np.array([2, 0]))
    assert targets.encoded.dtype == np.float32
    assert targets.encoded.tolist() == [[0, 0, 1], [1, 0, 0]]


def test_regression_numbers_and_lists() -> None:
    one = make_model([(1, "linear")], task="regression", n_features=2)
    assert model_targets(one, [1, 2.5, [3]]).encoded.tolist() == [[1.0], [2.5], [3.0]]
    assert model_targets(one, [1.0]).labels is None
    assert regression_values(np.array([[1, 2], [3, 4]]), 2).tolist() == [[1, 2], [3, 4]]
    with pytest.raises(DatasetError, match="2 outputs, give a list of 2"):
        regression_values([1.0], 2)
    with pytest.raises(DatasetError, match="not a finite number"):
        regression_values([float("nan")], 1)
    with pytest.raises(DatasetError, match="are numbers"):
        regression_values(["a"], 1)
    with pytest.raises(DatasetError, match="column"):
        regression_values(np.zeros((2, 3)), 2)
