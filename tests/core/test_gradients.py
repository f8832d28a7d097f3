"""Backward passes against central finite differences (float64), and the activation and
loss formulas of ENGINE.md with numbers written out."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from core.activations import Scratch, get_activation
from core.losses import get_loss
from core.network import Network, encode_targets, predict_classes
from core.optimizers import add_penalty_gradient
from core.specs import LayerSpec

HIDDEN = ["linear", "sigmoid", "tanh", "arctan", "relu", "leaky_relu"]
# Every output activation × loss pair check_against_dataset allows.
OUTPUT_PAIRS = [
    ("softmax", "cross_entropy"),
    ("softmax", "binary_cross_entropy"),
    ("softmax", "mse"),
    ("softmax", "mae"),
    ("sigmoid", "binary_cross_entropy"),
    ("sigmoid", "mse"),
    ("sigmoid", "mae"),
    *[
        (activation, loss)
        for activation in ("linear", "tanh", "arctan", "relu", "leaky_relu")
        for loss in ("mse", "mae")
    ],
]


def _network(hidden: str, output: str, loss: str, units: int = 3) -> Network:
    layers = [
        LayerSpec(units=5, activation=hidden),
        LayerSpec(units=4, activation=hidden),
        LayerSpec(units=units, activation=output),
    ]
    network = Network(n_inputs=3, layers=layers, loss=loss, dtype="float64")
    rng = np.random.default_rng(1)
    network.params[:] = rng.normal(0.0, 0.8, size=network.size)
    return network


def _targets(output: str, loss: str, rng: np.random.Generator, n: int, units: int) -> np.ndarray:
    if loss in ("cross_entropy", "binary_cross_entropy") or output == "softmax":
        labels = rng.integers(0, units, size=n) if units > 1 else rng.integers(0, 2, size=n)
        return encode_targets(
            labels, task="classification", units=units, activation=output, dtype="float64"
        )
    return rng.normal(0.0, 1.0, size=(n, units))


def _check_gradient(network: Network, inputs, targets, l1: float, l2: float) -> None:
    def total_loss() -> float:
        return network.loss_value(inputs, targets) + network.penalty(l1, l2)

    network.gradient(inputs, targets)
    add_penalty_gradient(network.params, network.grads, l1, l2, network.weight_mask)
    analytic = network.grads.copy()

    numeric = np.empty_like(analytic)
    h = 1e-6
    params = network.params
    for index in range(network.size):
        saved = params[index]
        params[index] = saved + h
        plus = total_loss()
        params[index] = saved - h
        minus = total_loss()
        params[index] = saved
        numeric[index] = (plus - minus) / (2 * h)

    relative = np.linalg.norm(numeric - analytic) / (
        np.linalg.norm(numeric) + np.linalg.norm(analytic)
    )
    assert relative < 1e-6, f"relative error {relative:.2e}"
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize(("output", "loss"), OUTPUT_PAIRS)
def test_backward_matches_finite_differences_with_l1_l2(hidden, output, loss):
    rng = np.random.default_rng(2)
    network = _network(hidden, output, loss)
    inputs = rng.normal(0.0, 1.0, size=(7, 3))
    targets = _targets(output, loss, rng, 7, 3)
    _check_gradient(network, inputs, targets, l1=0.01, l2=0.02)


@pytest.mark.parametrize(
    ("output", "loss"),
    [("sigmoid", "binary_cross_entropy"), ("tanh", "mse"), ("linear", "mae"), ("arctan", "mse")],
)
def test_single_output_unit_backward_matches_finite_differences(output, loss):
    rng = np.random.default_rng(3)
    network = _network("tanh", output, loss, units=1)
    inputs = rng.normal(0.0, 1.0, size=(6, 3))
    labels = rng.integers(0, 2, size=6)
    targets = encode_targets(
        labels, task="classification", units=1, activation=output, dtype="float64"
    )
    _check_gradient(network, inputs, targets, l1=0.0, l2=0.0)


def test_first_layer_has_no_dinputs_and_dense_gradients_are_the_lecture_formulas():
    network = Network(
        n_inputs=2, layers=[LayerSpec(units=2, activation="linear")], loss="mse", dtype="float64"
    )
    network.params[:] = [1.0, 2.0, 3.0, 4.0, 0.5, -0.5]  # W = [[1, 2], [3, 4]], b = [.5, -.5]
    inputs = np.array([[1.0, 0.0], [0.0, 2.0]])
    targets = np.zeros((2, 2))
    outputs = network.gradient(inputs, targets)
    np.testing.assert_array_equal(outputs, [[1.5, 1.5], [6.5, 7.5]])
    delta = outputs / 4  # mse: (y − t) / (N K)
    layer = network.layers[0]
    np.testing.assert_array_equal(layer.dweights, inputs.T @ delta)
    np.testing.assert_array_equal(layer.dbiases, delta.sum(axis=0))
    assert layer.backward(delta) is None


# ----------------------------------------------------------------- activations


def _forward(name: str, z) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    return get_activation(name).forward(z, np.empty_like(z), Scratch.like(z)).copy()


def _backward(name: str, z, dvalues) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    scratch = Scratch.like(z)
    activation = get_activation(name)
    y = activation.forward(z, np.empty_like(z), scratch).copy()
    return activation.backward(np.array(dvalues, dtype=np.float64), z, y, scratch)


def test_activation_forward_values():
    z = [[-2.0, 0.0, 3.0]]
    np.testing.assert_array_equal(_forward("linear", z), z)
    np.testing.assert_array_equal(_forward("step", z), [[0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(_forward("relu", z), [[0.0, 0.0, 3.0]])
    np.testing.assert_array_equal(_forward("leaky_relu", z), [[-0.02, 0.0, 3.0]])
    np.testing.assert_allclose(
        _forward("sigmoid", z), [[0.11920292202211755, 0.5, 0.9525741268224334]]
    )
    np.testing.assert_allclose(_forward("tanh", z), np.tanh(z))
    np.testing.assert_allclose(_forward("arctan", z), np.arctan(z))
    exp = np.exp([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(_forward("softmax", z), [exp / exp.sum()], rtol=1e-15)


def test_step_backward_uses_derivative_one_the_perceptron_rule():
    np.testing.assert_array_equal(
        _backward("step", [[-2.0, 0.0, 3.0]], [[1.0, 2.0, 3.0]]), [[1.0, 2.0, 3.0]]
    )


def test_relu_family_derivatives_at_and_around_zero():
    z, ones = [[-2.0, 0.0, 3.0]], [[1.0, 1.0, 1.0]]
    np.testing.assert_array_equal(_backward("relu", z, ones), [[0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(_backward("leaky_relu", z, ones), [[0.01, 0.01, 1.0]])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_does_not_overflow(dtype):
    z = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            y = get_activation("sigmoid").forward(z, np.empty_like(z), Scratch.like(z))
    assert y.dtype == np.dtype(dtype)
    assert np.all(np.isfinite(y))
    assert y[0, 0] == 0.0 and y[0, 2] == 0.5 and y[0, 4] == 1.0
    assert 0 < y[0, 1] < 1e-21


def test_softmax_is_shifted_by_its_maximum():
    y = _forward("softmax", [[1000.0, 1000.0], [-1000.0, -1001.0]])
    np.testing.assert_allclose(y, [[0.5, 0.5], [1 / (1 + np.exp(-1)), 1 / (1 + np.e)]])


# ---------------------------------------------------------------------- losses


def test_mse_is_the_mean_over_samples_and_outputs_of_half_the_squared_error():
    outputs = np.array([[1.0, 2.0], [3.0, 5.0]])
    targets = np.array([[0.0, 2.0], [1.0, 1.0]])
    # ½ (1 + 0 + 4 + 16) / 4
    assert get_loss("mse").value(outputs, targets) == pytest.approx(21 / 8)
    assert get_loss("mae").value(outputs, targets) == pytest.approx(7 / 4)


def test_cross_entropies_clip_outputs_to_1e_minus_7():
    outputs = np.array([[0.0, 1.0], [0.5, 0.5]])
    targets = np.array([[1.0, 0.0], [0.0, 1.0]])
    expected = -(np.log(1e-7) + np.log(0.5)) / 2
    assert get_loss("cross_entropy").value(outputs, targets) == pytest.approx(expected)
    bce_out, bce_t = np.array([[0.0], [1.0]]), np.array([[1.0], [0.0]])
    assert get_loss("binary_cross_entropy").value(bce_out, bce_t) == pytest.approx(-np.log(1e-7))


def test_softmax_cross_entropy_delta_is_outputs_minus_targets_over_n():
    network = Network(
        n_inputs=2,
        layers=[LayerSpec(units=3, activation="softmax")],
        loss="cross_entropy",
        dtype="float64",
    )
    network.params[:6] = np.arange(6) / 10
    inputs = np.array([[1.0, -1.0], [0.5, 2.0]])
    targets = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    outputs = network.gradient(inputs, targets).copy()
    np.testing.assert_array_equal(network.layers[0].dbiases, ((outputs - targets) / 2).sum(axis=0))


def test_penalty_gradient_touches_weights_only_and_sign_of_zero_is_zero():
    params = np.array([0.5, -2.0, 0.0, 3.0])
    grads = np.array([1.0, 1.0, 1.0, 1.0])
    mask = np.array([True, True, True, False])
    add_penalty_gradient(params, grads, 0.1, 0.01, mask)
    np.testing.assert_array_equal(
        grads, [1.0 + 0.1 + 0.02 * 0.5, 1.0 - 0.1 + 0.02 * -2.0, 1.0, 1.0]
    )


def test_penalty_value_sums_weights_not_biases():
    network = Network(
        n_inputs=1, layers=[LayerSpec(units=2, activation="linear")], loss="mse", dtype="float64"
    )
    network.params[:] = [1.0, -2.0, 10.0, 10.0]  # W = [[1, −2]], b = [10, 10]
    assert network.penalty(0.5, 0.25) == pytest.approx(0.5 * 3 + 0.25 * 5)
    np.testing.assert_array_equal(network.weight_mask, [True, True, False, False])


# ------------------------------------------------------------------- targets


@pytest.mark.parametrize(
    ("activation", "levels", "midpoint"),
    [
        ("sigmoid", [0.0, 1.0], 0.5),
        ("step", [0.0, 1.0], 0.5),
        ("linear", [0.0, 1.0], 0.5),
        ("relu", [0.0, 1.0], 0.5),
        ("leaky_relu", [0.0, 1.0], 0.5),
        ("tanh", [-1.0, 1.0], 0.0),
        ("arctan", [-1.0, 1.0], 0.0),
    ],
)
def test_single_unit_classes_are_the_activations_natural_levels(activation, levels, midpoint):
    encoded = encode_targets(
        np.array([0, 1, 1]), task="classification", units=1, activation=activation, dtype="float32"
    )
    np.testing.assert_array_equal(encoded[:, 0], [levels[0], levels[1], levels[1]])
    outputs = np.array([[midpoint - 0.01], [midpoint + 0.01], [midpoint]])
    np.testing.assert_array_equal(predict_classes(outputs, activation), [0, 1, 0])


def test_k_unit_targets_are_one_hot_and_prediction_is_argmax():
    encoded = encode_targets(
        np.array([2, 0]), task="classification", units=3, activation="softmax", dtype="float64"
    )
    np.testing.assert_array_equal(encoded, [[0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(predict_classes(np.array([[0.1, 0.7, 0.2]]), "softmax"), [1])
