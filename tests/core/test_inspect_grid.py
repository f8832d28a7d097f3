"""core.inspect's decision grid and fitted curve: the numbers ``predict`` gives."""

from __future__ import annotations

import numpy as np
import pytest

from core.inspect import InspectError, decision_grid, fitted_curve
from tests.core.models import make_model

FEATURES = np.random.default_rng(7).normal([1.0, -3.0], [2.0, 0.5], size=(80, 2))

#: (layers, dtype, seed): seeds whose random weights put every class on the grid
CLASSIFIERS = [
    ([(16, "relu"), (3, "softmax")], "float32", 3),
    ([(8, "tanh"), (3, "softmax")], "float64", 0),
    ([(8, "relu"), (1, "sigmoid")], "float64", 1),
    ([(8, "leaky_relu"), (1, "sigmoid")], "float32", 0),
    ([(4, "sigmoid"), (1, "tanh")], "float64", 1),
    ([(1, "step")], "float64", 0),
    ([(6, "arctan"), (3, "sigmoid")], "float32", 0),
]


@pytest.mark.parametrize(("layers", "dtype", "seed"), CLASSIFIERS)
def test_grid_points_are_what_predict_answers(
    layers: list[tuple[int, str]], dtype: str, seed: int
) -> None:
    model = make_model(
        layers,
        task="classification",
        n_features=2,
        dtype=dtype,
        scale=3.0,
        data=FEATURES,
        seed=seed,
    )
    resolution = 120
    grid = decision_grid(model, features=FEATURES, resolution=resolution)
    assert grid.x.shape == grid.y.shape == (resolution,)
    assert grid.predictions.shape == (resolution, resolution)
    assert grid.class_names == tuple(model.class_names or ())

    rng = np.random.default_rng(0)
    i = rng.integers(0, resolution, size=300)
    j = rng.integers(0, resolution, size=300)
    outputs, names = model.predict(np.column_stack((grid.x[i], grid.y[j])))
    expected = [grid.class_names.index(name) for name in names]
    assert grid.predictions[j, i].tolist() == expected
    # every class on the grid: the sample says something about the boundary
    assert len(set(grid.predictions.ravel().tolist())) == len(grid.class_names)

    last_units, last_activation = layers[-1]
    if last_activation == "softmax":
        assert grid.confidence is not None
        np.testing.assert_array_equal(grid.confidence[j, i], outputs.max(axis=1))
    elif last_units == 1 and last_activation == "sigmoid":
        assert grid.confidence is not None
        values = outputs[:, 0].astype(np.float64)
        np.testing.assert_array_equal(grid.confidence[j, i], np.maximum(values, 1 - values))
        assert (grid.confidence >= 0.5).all()
    else:
        assert grid.confidence is None


def test_grid_spans_the_padded_range_in_original_units() -> None:
    model = make_model([(4, "relu"), (3, "softmax")], task="classification", n_features=2)
    grid = decision_grid(model, features=FEATURES, resolution=11)
    for axis, column in ((grid.x, FEATURES[:, 0]), (grid.y, FEATURES[:, 1])):
        low, high = column.min(), column.max()
        span = high - low
        assert axis[0] == pytest.approx(low - 0.1 * span, rel=1e-12)
        assert axis[-1] == pytest.approx(high + 0.1 * span, rel=1e-12)
        np.testing.assert_allclose(np.diff(axis), span * 1.2 / 10, rtol=1e-9)


def test_a_constant_feature_still_gets_a_grid() -> None:
    model = make_model([(3, "softmax")], task="classification", n_features=2)
    features = np.column_stack((np.linspace(0, 1, 5), np.full(5, 4.0)))
    grid = decision_grid(model, features=features, resolution=5)
    assert grid.y[0] == pytest.approx(4.0 - 0.4)
    assert grid.y[-1] == pytest.approx(4.0 + 0.4)


def test_grid_refuses_what_it_cannot_draw() -> None:
    three = make_model([(3, "softmax")], task="classification", n_features=3)
    with pytest.raises(InspectError, match="exactly two features"):
        decision_grid(three, features=np.zeros((4, 3)), resolution=10)
    regression = make_model([(1, "linear")], task="regression", n_features=2)
    with pytest.raises(InspectError, match="classification"):
        decision_grid(regression, features=FEATURES, resolution=10)
    two = make_model([(3, "softmax")], task="classification", n_features=2)
    with pytest.raises(InspectError, match="resolution"):
        decision_grid(two, features=FEATURES, resolution=1)
    with pytest.raises(InspectError, match="features"):
        decision_grid(two, features=np.zeros((0, 2)), resolution=10)
    with pytest.raises(InspectError, match="finite"):
        decision_grid(two, features=np.array([[0.0, np.nan]]), resolution=10)


@pytest.mark.parametrize(("outputs", "dtype"), [(1, "float64"), (1, "float32"), (2, "float64")])
def test_fitted_curve_is_predict_along_the_feature(outputs: int, dtype: str) -> None:
    model = make_model(
        [(8, "tanh"), (outputs, "linear")], task="regression", n_features=1, dtype=dtype
    )
    features = np.linspace(-2.0, 6.0, 30).reshape(-1, 1)
    curve = fitted_curve(model, features=features, resolution=50)
    assert curve.x[0] == pytest.approx(-2.8) and curve.x[-1] == pytest.approx(6.8)
    predicted, values = model.predict(curve.x.reshape(-1, 1))
    expected = predicted.astype(np.float64)
    np.testing.assert_array_equal(curve.values, expected[:, 0] if outputs == 1 else expected)
    if outputs == 1:
        assert curve.values.tolist() == values


def test_fitted_curve_refuses_other_models() -> None:
    two = make_model([(1, "linear")], task="regression", n_features=2)
    with pytest.raises(InspectError, match="exactly one feature"):
        fitted_curve(two, features=np.zeros((3, 2)), resolution=10)
    classifier = make_model([(1, "sigmoid")], task="classification", n_features=1)
    with pytest.raises(InspectError, match="regression"):
        fitted_curve(classifier, features=np.zeros((3, 1)), resolution=10)
