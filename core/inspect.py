"""The numbers behind the lecture's pictures: a decision grid, a fitted curve, one
forward and backward pass laid open layer by layer.

Everything here runs the engine's own code. The grid and the curve are
``TrainedModel.predict`` on the grid points (so a point answers exactly what
``POST /predict`` answers for it); the backward pass drives the very
``Dense``/``Activation``/``Loss`` objects of ``core.network.Network`` in the
order ``Network.forward``/``Network.backward`` call them, keeping a copy of each
intermediate that training overwrites in place (relu's net, the dvalues an
activation's backward consumes). Results are frozen dataclasses of NumPy arrays;
the service turns them into JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core.activations import Scratch
from core.errors import AnnlabError, DatasetError
from core.network import Network, predict_classes
from core.serialize import TrainedModel
from core.targets import model_targets

#: Each side of the data's range is padded by this fraction of the range.
PADDING = 0.1
#: Grid points per axis: at least 2 (a line needs two ends), at most this many.
MAX_RESOLUTION = 2000


class InspectError(AnnlabError, ValueError):
    """A request that does not fit the model (wrong task, wrong number of features)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class DecisionGrid:
    """Predictions over a grid: ``predictions[j, i]`` and ``confidence[j, i]`` belong
    to the point (``x[i]``, ``y[j]``)."""

    x: NDArray[np.float64]  # (n,) first feature, original units
    y: NDArray[np.float64]  # (n,) second feature
    class_names: tuple[str, ...]
    predictions: NDArray[np.int64]  # (n, n) class indices into class_names
    #: (n, n) the predicted class's probability, or None when the outputs are not
    #: probabilities (a single unit other than sigmoid, several non-softmax units)
    confidence: NDArray[np.float64] | None


@dataclass(frozen=True)
class FittedCurve:
    """A one-feature regression model's outputs along its feature."""

    x: NDArray[np.float64]  # (n,)
    values: NDArray[np.float64]  # (n,) for one output, (n, k) for k outputs


@dataclass(frozen=True)
class LayerPass:
    """One layer of a forward and backward pass (the lecture's names), N rows.

    ``inputs`` (N, n_in) what the layer received (the standardised rows for the
    first layer); ``net`` (N, units) = inputs @ W + b; ``outputs`` = f(net);
    ``dvalues`` = ∂L/∂outputs; ``dnet`` = ∂L/∂net as training computes it (step:
    = dvalues, the perceptron rule; softmax + cross_entropy: the fused (y − t)/N);
    ``dweights`` (n_in, units) = inputsᵀ dnet; ``dbiases`` (units,) = Σ_rows dnet;
    ``dinputs`` (N, n_in) = dnet Wᵀ. All in the model's dtype.
    """

    inputs: NDArray[Any]
    net: NDArray[Any]
    outputs: NDArray[Any]
    dvalues: NDArray[Any]
    dnet: NDArray[Any]
    dweights: NDArray[Any]
    dbiases: NDArray[Any]
    dinputs: NDArray[Any]


@dataclass(frozen=True)
class BackwardPass:
    """``loss``: the data loss of the rows (mean, as training); ``penalty``: the
    L1/L2 term of the weights; ``layers``: input to output. The gradients are those
    of the data loss alone."""

    loss: float
    penalty: float
    layers: tuple[LayerPass, ...]


# ------------------------------------------------------------------- grids


def _axis(column: NDArray[np.float64], resolution: int) -> NDArray[np.float64]:
    """``resolution`` points over the column's range padded by PADDING each side (a
    constant column: padded by PADDING × max(|value|, 1))."""
    low, high = float(column.min()), float(column.max())
    span = high - low
    if span == 0:
        span = max(abs(low), 1.0)
    return np.linspace(low - PADDING * span, high + PADDING * span, resolution)


def _check_features(
    model: TrainedModel,
    features: NDArray[Any] | Sequence[Sequence[float]],
    resolution: int,
    *,
    what: str,
    task: str,
    n_features: int,
) -> NDArray[np.float64]:
    """The features as a float array, after checking that ``what`` (a picture of a
    ``task`` model over ``n_features`` inputs) can be drawn for this model at all."""
    if model.task != task:
        raise InspectError(f"{what} needs a {task} model", "task")
    if model.n_features != n_features:
        count = {1: "one feature", 2: "two features"}[n_features]
        raise InspectError(
            f"{what} needs exactly {count}, the model has {model.n_features}", "features"
        )
    if not 2 <= resolution <= MAX_RESOLUTION:
        raise InspectError(
            f"resolution must be between 2 and {MAX_RESOLUTION}, got {resolution}", "resolution"
        )
    data = np.asarray(features, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] == 0 or data.shape[1] != model.n_features:
        raise InspectError(
            f"features must be a non-empty (n, {model.n_features}) array, got shape {data.shape}",
            "features",
        )
    if not np.isfinite(data).all():
        raise InspectError("features must be finite numbers", "features")
    return data


def decision_grid(
    model: TrainedModel, *, features: NDArray[Any] | Sequence[Sequence[float]], resolution: int
) -> DecisionGrid:
    """The class ``model.predict`` gives at every point of a ``resolution`` ×
    ``resolution`` grid over the range of ``features`` (the data, original units)
    padded by 10 % on each side. Two-feature classification models only."""
    data = _check_features(
        model,
        features,
        resolution,
        what="a decision boundary",
        task="classification",
        n_features=2,
    )
    x, y = _axis(data[:, 0], resolution), _axis(data[:, 1], resolution)
    grid_x, grid_y = np.meshgrid(x, y)  # [j, i] = (x[i], y[j])
    points = np.column_stack((grid_x.ravel(), grid_y.ravel()))
    outputs, _ = model.predict(points)
    last = model.spec.model.layers[-1]
    predictions = predict_classes(outputs, last.activation).reshape(resolution, resolution)
    confidence: NDArray[np.float64] | None = None
    values = outputs.astype(np.float64)
    if last.activation == "softmax":
        confidence = values.max(axis=1).reshape(resolution, resolution)
    elif last.units == 1 and last.activation == "sigmoid":
        confidence = np.maximum(values[:, 0], 1.0 - values[:, 0]).reshape(resolution, resolution)
    return DecisionGrid(
        x=x,
        y=y,
        class_names=tuple(model.class_names or ()),
        predictions=predictions.astype(np.int64),
        confidence=confidence,
    )


def fitted_curve(
    model: TrainedModel, *, features: NDArray[Any] | Sequence[Sequence[float]], resolution: int
) -> FittedCurve:
    """``model.predict`` at ``resolution`` points over the range of the one feature
    of ``features`` padded by 10 % on each side. One-feature regression models only."""
    data = _check_features(
        model, features, resolution, what="a fitted curve", task="regression", n_features=1
    )
    x = _axis(data[:, 0], resolution)
    outputs, _ = model.predict(x.reshape(-1, 1))
    values = outputs.astype(np.float64)
    return FittedCurve(x=x, values=values[:, 0] if values.shape[1] == 1 else values)


# ---------------------------------------------------------------- backprop


def _network(model: TrainedModel) -> Network:
    """A private network with the model's weights: its buffers are written by the
    pass, so the model's shared (prediction) network is never touched."""
    network = Network.from_spec(model.spec, n_inputs=model.n_features)
    network.set_weights(model.layers)
    return network


def check_rows(
    model: TrainedModel, inputs: NDArray[Any] | Sequence[Sequence[float]]
) -> NDArray[np.float64]:
    """Raw rows as float64 (n, n_features), n ≥ 1, every value finite; DatasetError
    (field ``inputs``) naming the first problem otherwise."""
    try:
        rows = np.asarray(inputs, dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetError("inputs must be rows of numbers", field="inputs") from None
    if rows.ndim != 2 or rows.shape[0] == 0 or rows.shape[1] != model.n_features:
        raise DatasetError(
            f"inputs must be a non-empty list of rows of {model.n_features} numbers, "
            f"got shape {rows.shape}",
            field="inputs",
        )
    if not np.isfinite(rows).all():
        row, column = (int(i) for i in np.argwhere(~np.isfinite(rows))[0])
        raise DatasetError(f"inputs[{row}][{column}] is not a finite number", field="inputs")
    return rows


def prepare_rows(
    model: TrainedModel, inputs: NDArray[Any] | Sequence[Sequence[float]]
) -> NDArray[Any]:
    """Raw rows → the network's inputs as training makes them: standardised with the
    model's mean/std in float64, then the model's dtype. DatasetError (field
    ``inputs``) for a wrong shape or a value that is not finite (also once
    standardised: float32 overflows sooner)."""
    rows = check_rows(model, inputs)
    with np.errstate(over="ignore", invalid="ignore"):
        prepared = model.prepare(rows)
    if not np.isfinite(prepared).all():
        row, column = (int(i) for i in np.argwhere(~np.isfinite(prepared))[0])
        raise DatasetError(
            f"inputs[{row}][{column}] = {rows[row, column]:g} is out of range for "
            f"{model.spec.dtype} once standardised",
            field="inputs",
        )
    return prepared


def backward_pass(
    model: TrainedModel,
    *,
    inputs: NDArray[Any] | Sequence[Sequence[float]],
    targets: NDArray[Any] | Sequence[Any],
) -> BackwardPass:
    """One forward and one backward pass of the engine on exactly these rows.

    ``inputs``: raw rows (standardised here as in training); ``targets`` as in a
    dataset upload (``core.targets``). The steps are ``Network.forward`` and
    ``Network.backward`` unrolled over the same objects and buffers' contents,
    so ``dweights``/``dbiases`` are bit for bit the gradient training computes
    on these rows.
    """
    rows = prepare_rows(model, inputs)
    if len(targets) != rows.shape[0]:
        raise DatasetError(
            f"{len(targets)} targets for {rows.shape[0]} input rows: give one per row",
            field="targets",
        )
    encoded = model_targets(model, targets).encoded
    network = _network(model)
    n_rows = rows.shape[0]

    # forward: as Network.forward (z = layer.forward, y = activation.forward)
    received, nets, zs, outputs, scratches = [], [], [], [], []
    values = rows
    for layer, activation in zip(network.layers, network.activations, strict=True):
        received.append(values)
        z = layer.forward(values, np.empty((n_rows, layer.units), dtype=network.dtype))
        nets.append(z.copy())  # relu overwrites z with its output
        scratch = Scratch.like(z)
        values = activation.forward(z, np.empty_like(z), scratch)
        zs.append(z)
        outputs.append(values)
        scratches.append(scratch)

    # backward: as Network.backward
    last = len(network.layers) - 1
    dvalues = network.loss.gradient(outputs[last], encoded, np.empty_like(outputs[last]))
    if network.fused_output:
        dnet = np.subtract(outputs[last], encoded, out=np.empty_like(outputs[last]))
        np.divide(dnet, outputs[last].shape[0], out=dnet)
    else:
        dnet = network.activations[last].backward(
            dvalues.copy(), zs[last], outputs[last], scratches[last]
        )
    passes: list[LayerPass] = []
    for index in range(last, -1, -1):
        layer = network.layers[index]
        dinputs = layer.backward(dnet, np.empty((n_rows, layer.n_inputs), dtype=network.dtype))
        assert dinputs is not None
        passes.append(
            LayerPass(
                inputs=received[index].copy(),
                net=nets[index],
                outputs=outputs[index].copy(),
                dvalues=dvalues,
                dnet=dnet,
                dweights=layer.dweights.copy(),
                dbiases=layer.dbiases.copy(),
                dinputs=dinputs,
            )
        )
        if index:
            below = index - 1
            dvalues = dinputs.copy()
            dnet = network.activations[below].backward(
                dinputs.copy(), zs[below], outputs[below], scratches[below]
            )
    optimizer = model.spec.optimizer
    return BackwardPass(
        loss=network.loss.value(outputs[last], encoded),
        penalty=network.penalty(optimizer.l1, optimizer.l2),
        layers=tuple(reversed(passes)),
    )
