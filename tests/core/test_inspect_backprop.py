"""core.inspect.backward_pass: the engine's own gradient, laid open layer by layer.

Checked three ways: bit for bit against ``Network.gradient`` (what training
uses), against central finite differences of an independent float64 forward pass
for every activation × loss pairing, and against torch autograd where torch is
installed. ``step`` cannot be differentiated numerically (its true derivative is
0); it shows the perceptron rule instead: dnet == dvalues.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from core.errors import DatasetError, SpecError
from core.inspect import BackwardPass, backward_pass
from core.network import Network, encode_targets
from core.serialize import TrainedModel
from core.specs import ACTIVATIONS, DataShape, RunSpec, check_against_dataset
from tests.core.models import make_model

HIDDEN = [name for name in ACTIVATIONS if name != "softmax"]
LOSS_NAMES = ["mse", "mae", "binary_cross_entropy", "cross_entropy"]
N_FEATURES, N_ROWS = 3, 5


def _valid(output: str, loss: str, task: str, units: int) -> bool:
    body = {
        "dataset": "d",
        "model": {"layers": [{"units": units, "activation": output}]},
        "optimizer": {"type": "sgd"},
        "loss": loss,
    }
    n_classes = (2 if units == 1 else units) if task == "classification" else None
    shape = DataShape(task=task, n_features=1, n_outputs=units, n_classes=n_classes)  # type: ignore[arg-type]
    try:
        check_against_dataset(RunSpec.model_validate(body), shape)
    except (SpecError, ValueError):
        return False
    return True


#: (output activation, loss, task, output units) for every pairing the engine accepts
PAIRINGS = [
    (output, loss, task, units)
    for output in ACTIVATIONS
    for loss in LOSS_NAMES
    for task, units in (("classification", 1), ("classification", 3), ("regression", 2))
    if _valid(output, loss, task, units)
]


def test_every_activation_and_loss_is_paired() -> None:
    assert {output for output, *_ in PAIRINGS} == set(ACTIVATIONS)
    assert {loss for _, loss, *_ in PAIRINGS} == set(LOSS_NAMES)


def _case(
    layers: list[tuple[int, str]], loss: str, task: str, *, seed: int, dtype: str = "float64"
) -> tuple[TrainedModel, np.ndarray, list[Any]]:
    rng = np.random.default_rng(seed + 100)
    inputs = rng.normal(1.0, 2.0, size=(N_ROWS, N_FEATURES))
    model = make_model(
        layers,
        task=task,  # type: ignore[arg-type]
        n_features=N_FEATURES,
        loss=loss,
        dtype=dtype,
        seed=seed,
        scale=1.5,
        l1=0.01,
        l2=0.02,
        data=inputs * 1.1 + 0.3,  # standardised rows near, not exactly, N(0, 1)
    )
    units = layers[-1][0]
    targets: list[Any]
    if task == "classification":
        n_classes = 2 if units == 1 else units
        labels = rng.integers(0, n_classes, size=N_ROWS)
        names = model.class_names or []
        # names and indices mixed, as an upload may send either
        targets = [names[k] if row % 2 else int(k) for row, k in enumerate(labels)]
    elif loss == "binary_cross_entropy":
        targets = rng.uniform(0.1, 0.9, size=(N_ROWS, units)).tolist()
    else:
        targets = rng.normal(0.0, 1.0, size=(N_ROWS, units)).tolist()
    return model, inputs, targets


# ------------------------------------------------ an independent float64 forward


def _act(name: str, z: np.ndarray) -> np.ndarray:
    if name == "linear":
        return z
    if name == "step":
        return (z > 0).astype(np.float64)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "arctan":
        return np.arctan(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, 0.01 * z)
    shifted = np.exp(z - z.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _loss(name: str, y: np.ndarray, t: np.ndarray) -> float:
    if name == "mse":
        return float(0.5 * np.mean((t - y) ** 2))
    if name == "mae":
        return float(np.mean(np.abs(t - y)))
    c = np.clip(y, 1e-7, 1 - 1e-7)
    if name == "binary_cross_entropy":
        return float(-np.mean(t * np.log(c) + (1 - t) * np.log(1 - c)))
    return float(-np.mean(np.sum(t * np.log(c), axis=1)))


def _numeric(f: Callable[[np.ndarray], float], at: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Fourth-order central differences of f at every entry x of ``at``, with the step
    h·max(|x|, 0.01): the error is O(step⁴) + O(ε/step), well below 1e-6 relative even
    where the loss curves sharply (−log y at a small y)."""
    grad = np.zeros_like(at)
    for index in np.ndindex(at.shape):
        size = h * max(abs(float(at[index])), 0.01)
        values = []
        for step in (2 * size, size, -size, -2 * size):
            moved = at.copy()
            moved[index] += step
            values.append(f(moved))
        grad[index] = (-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * size)
    return grad


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """‖a − b‖ / max(‖a‖, ‖b‖, 1e-3): relative, except for a (nearly) vanishing
    gradient (dead relu units), where the differences' own noise of ~1e-11 would
    dominate and the bound becomes 1e-9 absolute."""
    scale = max(float(np.linalg.norm(a)), float(np.linalg.norm(b)), 1e-3)
    return float(np.linalg.norm(a - b)) / scale


def _check_against_finite_differences(
    model: TrainedModel, result: BackwardPass, targets: np.ndarray
) -> int:
    """Every quantity that finite differences can see; returns how many were checked."""
    spec_layers = model.spec.model.layers
    activations = [layer.activation for layer in spec_layers]
    weights = [(w.astype(np.float64), b.astype(np.float64)) for w, b in model.layers]
    loss = model.spec.loss
    assert loss is not None
    checked = 0

    def upward(
        start: int, values: np.ndarray, replace: dict[int, tuple[np.ndarray, np.ndarray]]
    ) -> float:
        for index in range(start, len(weights)):
            w, b = replace.get(index, weights[index])
            values = _act(activations[index], values @ w + b)
        return _loss(loss, values, targets)

    for k, layer in enumerate(result.layers):
        smooth_above = "step" not in activations[k + 1 :]
        smooth_here = smooth_above and activations[k] != "step"
        w, b = weights[k]
        # the algebra of the dense layer, always
        np.testing.assert_allclose(
            layer.dweights, layer.inputs.T @ layer.dnet, rtol=1e-12, atol=1e-15
        )
        np.testing.assert_allclose(layer.dbiases, layer.dnet.sum(axis=0), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(layer.dinputs, layer.dnet @ w.T, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(layer.net, layer.inputs @ w + b, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(
            layer.outputs, _act(activations[k], layer.net), rtol=1e-12, atol=1e-15
        )
        if activations[k] == "step":
            np.testing.assert_array_equal(layer.dnet, layer.dvalues)  # the perceptron rule
        if smooth_above:
            dvalues = _numeric(lambda y, k=k: upward(k + 1, y, {}), layer.outputs)
            assert _rel(layer.dvalues, dvalues) < 1e-6
            checked += 1
        if smooth_here:

            def from_net(z: np.ndarray, k: int = k) -> float:
                return upward(k + 1, _act(activations[k], z), {})

            x = layer.inputs

            def with_w(m: np.ndarray, k: int = k, b: np.ndarray = b, x: np.ndarray = x) -> float:
                return upward(k, x, {k: (m, b)})

            def with_b(v: np.ndarray, k: int = k, w: np.ndarray = w, x: np.ndarray = x) -> float:
                return upward(k, x, {k: (w, v)})

            numeric = {
                "dnet": _numeric(from_net, layer.net),
                "dweights": _numeric(with_w, w),
                "dbiases": _numeric(with_b, b),
                "dinputs": _numeric(lambda x, k=k: upward(k, x, {}), layer.inputs),
            }
            for name, expected in numeric.items():
                error = _rel(getattr(layer, name), expected)
                assert error < 1e-6, f"layer {k} {name}: relative error {error:.2e}"
                checked += 1
    return checked


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize(("output", "loss", "task", "units"), PAIRINGS)
def test_finite_differences(hidden: str, output: str, loss: str, task: str, units: int) -> None:
    model, inputs, targets = _case(
        [(4, hidden), (units, output)], loss, task, seed=len(hidden) + units
    )
    result = backward_pass(model, inputs=inputs, targets=targets)
    encoded = _encoded(model, targets)
    checked = _check_against_finite_differences(model, result, encoded)
    assert checked >= (1 if "step" in (hidden, output) else 5)
    assert result.loss == pytest.approx(_loss(loss, result.layers[-1].outputs, encoded), rel=1e-12)


def test_finite_differences_through_a_deeper_network() -> None:
    layers = [(5, "tanh"), (4, "leaky_relu"), (4, "arctan"), (3, "softmax")]
    model, inputs, targets = _case(layers, "cross_entropy", "classification", seed=3)
    result = backward_pass(model, inputs=inputs, targets=targets)
    assert _check_against_finite_differences(model, result, _encoded(model, targets)) == 4 * 5


def test_step_shows_the_perceptron_rule() -> None:
    layers = [(4, "step"), (1, "step")]
    model, inputs, targets = _case(layers, "mse", "classification", seed=1)
    result = backward_pass(model, inputs=inputs, targets=targets)
    for layer in result.layers:
        np.testing.assert_array_equal(layer.dnet, layer.dvalues)
        assert set(np.unique(layer.outputs).tolist()) <= {0.0, 1.0}
    # ∂L/∂y of mse with one output: (y − t) / N
    top = result.layers[-1]
    np.testing.assert_allclose(top.dvalues, (top.outputs - _encoded(model, targets)) / N_ROWS)


def test_softmax_with_cross_entropy_is_fused() -> None:
    model, inputs, targets = _case(
        [(4, "relu"), (3, "softmax")], "cross_entropy", "classification", seed=2
    )
    result = backward_pass(model, inputs=inputs, targets=targets)
    top, t = result.layers[-1], _encoded(model, targets)
    np.testing.assert_array_equal(top.dnet, (top.outputs - t) / N_ROWS)
    np.testing.assert_allclose(top.dvalues, -t / top.outputs / N_ROWS)


def _encoded(model: TrainedModel, targets: list[Any]) -> np.ndarray:
    last = model.spec.model.layers[-1]
    if model.task == "classification":
        names = model.class_names or []
        labels = np.array([names.index(t) if isinstance(t, str) else t for t in targets])
        return encode_targets(
            labels,
            task="classification",
            units=last.units,
            activation=last.activation,
            dtype="float64",
        )
    return np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    ("layers", "loss", "task"),
    [
        ([(6, "relu"), (3, "softmax")], "cross_entropy", "classification"),
        (
            [(6, "tanh"), (5, "leaky_relu"), (1, "sigmoid")],
            "binary_cross_entropy",
            "classification",
        ),
        ([(6, "step"), (1, "tanh")], "mse", "classification"),
        ([(6, "arctan"), (2, "linear")], "mae", "regression"),
        ([(6, "sigmoid"), (3, "softmax")], "mse", "classification"),
    ],
)
def test_gradients_are_bit_for_bit_those_of_training(
    layers: list[tuple[int, str]], loss: str, task: str, dtype: str
) -> None:
    model, inputs, targets = _case(layers, loss, task, seed=5, dtype=dtype)
    result = backward_pass(model, inputs=inputs, targets=targets)
    network = Network.from_spec(model.spec, n_inputs=N_FEATURES)
    network.set_weights(model.layers)
    encoded = _encoded(model, targets).astype(dtype)
    rows = np.ascontiguousarray((inputs - model.mean) / model.std, dtype=dtype)
    outputs = network.gradient(rows, encoded)
    np.testing.assert_array_equal(result.layers[0].inputs, rows)  # standardised as training
    np.testing.assert_array_equal(result.layers[-1].outputs, outputs)
    for layer, dense in zip(result.layers, network.layers, strict=True):
        assert layer.dweights.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(layer.dweights, dense.dweights)
        np.testing.assert_array_equal(layer.dbiases, dense.dbiases)
    assert result.loss == network.loss.value(outputs, encoded)
    assert result.penalty == network.penalty(0.01, 0.02)
    assert result.penalty > 0
    # the model's own (prediction) network is untouched by the pass
    before = model.predict(inputs)[0].copy()
    backward_pass(model, inputs=inputs, targets=targets)
    np.testing.assert_array_equal(model.predict(inputs)[0], before)


def test_bad_rows_and_targets_name_the_problem() -> None:
    model, inputs, targets = _case([(3, "softmax")], "cross_entropy", "classification", seed=0)
    with pytest.raises(DatasetError, match="one per row"):
        backward_pass(model, inputs=inputs, targets=targets[:-1])
    with pytest.raises(DatasetError, match="rows of 3 numbers"):
        backward_pass(model, inputs=inputs[:, :2], targets=targets)
    with pytest.raises(DatasetError, match=r"inputs\[0\]\[1\]"):
        bad = inputs.copy()
        bad[0, 1] = np.inf
        backward_pass(model, inputs=bad, targets=targets)
    with pytest.raises(DatasetError, match="does not know"):
        backward_pass(model, inputs=inputs[:1], targets=["nope"])
    with pytest.raises(DatasetError, match=r"outside 0\.\.2"):
        backward_pass(model, inputs=inputs[:1], targets=[3])
    regression, rows, _ = _case([(2, "linear")], "mse", "regression", seed=0)
    with pytest.raises(DatasetError, match="2 outputs"):
        backward_pass(regression, inputs=rows[:1], targets=[1.0])
    with pytest.raises(DatasetError, match="has 3 numbers"):
        backward_pass(regression, inputs=rows[:1], targets=[[1.0, 2.0, 3.0]])


# ------------------------------------------------------------------ torch


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize(("output", "loss", "task", "units"), PAIRINGS)
def test_against_torch_autograd(hidden: str, output: str, loss: str, task: str, units: int) -> None:
    torch = pytest.importorskip("torch")
    model, inputs, targets = _case(
        [(4, hidden), (units, output)], loss, task, seed=len(hidden) + units
    )
    result = backward_pass(model, inputs=inputs, targets=targets)
    t = torch.tensor(_encoded(model, targets), dtype=torch.float64)

    def act(name: str, z: Any) -> Any:
        if name == "linear":
            return z
        if name == "step":  # forward z > 0, backward 1 (straight through)
            return z + ((z > 0).to(z.dtype) - z).detach()
        if name == "sigmoid":
            return torch.sigmoid(z)
        if name == "tanh":
            return torch.tanh(z)
        if name == "arctan":
            return torch.atan(z)
        if name == "relu":
            return torch.relu(z)
        if name == "leaky_relu":
            return torch.nn.functional.leaky_relu(z, 0.01)
        return torch.softmax(z, dim=1)

    values = torch.tensor(result.layers[0].inputs, dtype=torch.float64, requires_grad=True)
    kept = []
    for (w, b), layer in zip(model.layers, model.spec.model.layers, strict=True):
        weights = torch.tensor(w, dtype=torch.float64, requires_grad=True)
        biases = torch.tensor(b, dtype=torch.float64, requires_grad=True)
        received = values
        received.retain_grad()
        net = received @ weights + biases
        net.retain_grad()
        values = act(layer.activation, net)
        if values is not net:
            values.retain_grad()
        kept.append((received, net, values, weights, biases))
    y = values
    c = torch.clamp(y, 1e-7, 1 - 1e-7)
    if loss == "mse":
        value = 0.5 * torch.mean((t - y) ** 2)
    elif loss == "mae":
        value = torch.mean(torch.abs(t - y))
    elif loss == "binary_cross_entropy":
        value = -torch.mean(t * torch.log(c) + (1 - t) * torch.log(1 - c))
    else:
        value = -torch.mean(torch.sum(t * torch.log(c), dim=1))
    value.backward()
    assert result.loss == pytest.approx(value.item(), rel=1e-12)
    for layer, (received, net, outputs, weights, biases) in zip(result.layers, kept, strict=True):
        for ours, theirs in (
            (layer.dvalues, outputs.grad),
            (layer.dnet, net.grad),
            (layer.dweights, weights.grad),
            (layer.dbiases, biases.grad),
            (layer.dinputs, received.grad),
        ):
            assert _rel(ours, theirs.numpy()) < 1e-10
