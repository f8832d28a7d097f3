"""The network: dense layers with their activations, one flat parameter buffer and one
flat gradient buffer.

Layout of both buffers: for each layer in order, its W (n_in × units, row-major)
then its b (units). Every ``Dense`` holds views into them, so the optimizer updates
the whole network with a few in-place ufunc calls. ``weight_mask`` is True on the
weights and False on the biases (the L1/L2 penalties touch weights only).

Activations and deltas live in a :class:`_Workspace` per batch size, allocated on
first use and reused afterwards, so a training step allocates (almost) nothing.
Arrays returned by :meth:`Network.forward` are such buffers: read them before the
next forward pass with the same batch size.

Classification targets (ENGINE.md): one-hot for a K-unit output; for one output
unit the classes are the activation's natural levels — 0/1, or −1/+1 for tanh and
arctan — and the predicted class is the side of the midpoint (y > midpoint → 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from core.activations import Activation, Scratch, get_activation
from core.layers import Dense
from core.losses import Loss, get_loss
from core.specs import RELU_FAMILY, SYMMETRIC_ACTIVATIONS, LayerSpec, RunSpec, Task

#: Workspaces kept per network; more distinct batch sizes than this start afresh.
_MAX_WORKSPACES = 8


@dataclass
class _Workspace:
    """Buffers of one batch size: per layer z, y (None for linear), scratch, dinputs
    (None for the first layer), and δ of the output."""

    z: list[np.ndarray]
    y: list[np.ndarray | None]
    scratch: list[Scratch]
    dinputs: list[np.ndarray | None]
    delta: np.ndarray


class Network:
    """A stack of dense layers trained on one loss."""

    def __init__(
        self,
        *,
        n_inputs: int,
        layers: Sequence[LayerSpec],
        loss: str,
        dtype: np.dtype | str = "float64",
    ) -> None:
        self.dtype = np.dtype(dtype)
        self.n_inputs = n_inputs
        self.layer_specs = list(layers)
        self.activations: list[Activation] = [get_activation(lay.activation) for lay in layers]
        self.loss: Loss = get_loss(loss)
        #: softmax + cross_entropy: δ = (y − t) / N without the Jacobian.
        self.fused_output = layers[-1].activation == "softmax" and loss == "cross_entropy"

        shapes = []
        n_in = n_inputs
        for layer in layers:
            shapes.append((n_in, layer.units))
            n_in = layer.units
        self.size = sum(n_in * units + units for n_in, units in shapes)
        self.params = np.zeros(self.size, dtype=self.dtype)
        self.grads = np.zeros(self.size, dtype=self.dtype)
        self.weight_mask = np.zeros(self.size, dtype=bool)

        self.layers: list[Dense] = []
        offset = 0
        for n_in, units in shapes:
            w_end = offset + n_in * units
            b_end = w_end + units
            self.weight_mask[offset:w_end] = True
            self.layers.append(
                Dense(
                    weights=self.params[offset:w_end].reshape(n_in, units),
                    biases=self.params[w_end:b_end],
                    dweights=self.grads[offset:w_end].reshape(n_in, units),
                    dbiases=self.grads[w_end:b_end],
                )
            )
            offset = b_end
        self._workspaces: dict[int, _Workspace] = {}
        self._last: _Workspace | None = None

    @classmethod
    def from_spec(cls, spec: RunSpec, *, n_inputs: int) -> Network:
        """The network of a normalised spec (``spec.loss`` filled in)."""
        assert spec.loss is not None, "normalise the spec with check_against_dataset first"
        return cls(n_inputs=n_inputs, layers=spec.model.layers, loss=spec.loss, dtype=spec.dtype)

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].units

    @property
    def output_activation(self) -> str:
        return self.layer_specs[-1].activation

    # ------------------------------------------------------------------ weights

    def initialize(self, init: str | object, rng: np.random.Generator) -> None:
        """Draw every W from ``rng``, layer by layer (biases stay 0, drawing nothing).

        He N(0, 2/n_in); Glorot U(±√(6/(n_in + n_out))); normal N(0, σ²); zeros;
        auto = He for relu/leaky_relu layers, Glorot otherwise. Draws are float64,
        rounded to the network's dtype.
        """
        self.params[:] = 0
        for layer, spec in zip(self.layers, self.layer_specs, strict=True):
            n_in, n_out = layer.weights.shape
            name = init if isinstance(init, str) else getattr(init, "type", None)
            if name == "auto":
                name = "he" if spec.activation in RELU_FAMILY else "glorot"
            if name == "he":
                draw = rng.normal(0.0, math.sqrt(2.0 / n_in), size=(n_in, n_out))
            elif name == "glorot":
                limit = math.sqrt(6.0 / (n_in + n_out))
                draw = rng.uniform(-limit, limit, size=(n_in, n_out))
            elif name == "normal":
                std = float(getattr(init, "std", 1.0))
                draw = rng.normal(0.0, std, size=(n_in, n_out))
            elif name == "zeros":
                continue
            else:
                raise ValueError(f"unknown init {init!r}")
            layer.weights[...] = draw

    def set_weights(self, layers: Sequence[tuple[ArrayLike, ArrayLike]]) -> None:
        """Copy (W, b) pairs into the parameter buffer (shapes must match)."""
        if len(layers) != len(self.layers):
            raise ValueError(f"{len(layers)} layers given, the network has {len(self.layers)}")
        for index, (layer, (weights, biases)) in enumerate(zip(self.layers, layers, strict=True)):
            weights = np.asarray(weights, dtype=np.float64)
            biases = np.asarray(biases, dtype=np.float64)
            if weights.shape != layer.weights.shape or biases.shape != layer.biases.shape:
                raise ValueError(
                    f"layer {index}: weights {weights.shape} and biases {biases.shape} given, "
                    f"expected {layer.weights.shape} and {layer.biases.shape}"
                )
            layer.weights[...] = weights
            layer.biases[...] = biases

    def get_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Copies of every (W, b)."""
        return [(layer.weights.copy(), layer.biases.copy()) for layer in self.layers]

    def unflatten(self, flat: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(W, b) per layer as views into ``flat``, a buffer laid out like ``params``.

        A snapshot copies the parameter buffer once and hands these views out,
        instead of copying layer by layer.
        """
        if flat.shape != self.params.shape:
            raise ValueError(f"a buffer of {self.params.shape} is needed, got {flat.shape}")
        pairs = []
        offset = 0
        for layer in self.layers:
            n_in, units = layer.weights.shape
            w_end = offset + n_in * units
            pairs.append((flat[offset:w_end].reshape(n_in, units), flat[w_end : w_end + units]))
            offset = w_end + units
        return pairs

    def penalty(self, l1: float, l2: float) -> float:
        """λ₁ Σ|w| + λ₂ Σ w² over the weight matrices (not the biases), in float64."""
        if not l1 and not l2:
            return 0.0
        total = 0.0
        for layer in self.layers:
            weights = layer.weights.astype(np.float64)
            if l1:
                total += l1 * float(np.sum(np.abs(weights)))
            if l2:
                total += l2 * float(np.sum(np.square(weights)))
        return total

    # ------------------------------------------------------------ forward/backward

    def _workspace(self, n_rows: int) -> _Workspace:
        workspace = self._workspaces.get(n_rows)
        if workspace is not None:
            return workspace
        if len(self._workspaces) >= _MAX_WORKSPACES:
            self._workspaces.clear()
        z, y, scratch, dinputs = [], [], [], []
        for index, (layer, activation) in enumerate(
            zip(self.layers, self.activations, strict=True)
        ):
            z_buffer = np.empty((n_rows, layer.units), dtype=self.dtype)
            z.append(z_buffer)
            y.append(np.empty_like(z_buffer) if activation.needs_output else None)
            scratch.append(Scratch.like(z_buffer))
            dinputs.append(
                None if index == 0 else np.empty((n_rows, layer.n_inputs), dtype=self.dtype)
            )
        delta = np.empty((n_rows, self.n_outputs), dtype=self.dtype)
        workspace = _Workspace(z=z, y=y, scratch=scratch, dinputs=dinputs, delta=delta)
        self._workspaces[n_rows] = workspace
        return workspace

    def forward(self, inputs: np.ndarray) -> np.ndarray:
        """Outputs of the network for ``inputs`` (N, n_inputs) of the network's dtype.

        The result is a workspace buffer, overwritten by the next forward pass with
        the same N.
        """
        workspace = self._workspace(inputs.shape[0])
        values = inputs
        for index, (layer, activation) in enumerate(
            zip(self.layers, self.activations, strict=True)
        ):
            z = layer.forward(values, workspace.z[index])
            out = workspace.y[index]  # None where the activation works in z itself
            values = activation.forward(z, z if out is None else out, workspace.scratch[index])
        self._last = workspace
        return values

    def backward(self, targets: np.ndarray) -> None:
        """Gradient of the (unregularised) loss of the last forward pass into ``grads``."""
        workspace = self._last
        assert workspace is not None, "backward before forward"
        last = len(self.layers) - 1
        z, y = workspace.z[last], workspace.y[last]
        outputs = z if y is None else y
        delta = workspace.delta
        if self.fused_output:
            np.subtract(outputs, targets, out=delta)
            np.divide(delta, outputs.shape[0], out=delta)
        else:
            self.loss.gradient(outputs, targets, out=delta)
            delta = self.activations[last].backward(delta, z, outputs, workspace.scratch[last])
        for index in range(last, -1, -1):
            dinputs = self.layers[index].backward(delta, workspace.dinputs[index])
            if dinputs is None:
                break
            below = index - 1
            z_below, y_below = workspace.z[below], workspace.y[below]
            delta = self.activations[below].backward(
                dinputs,
                z_below,
                z_below if y_below is None else y_below,
                workspace.scratch[below],
            )

    def gradient(self, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Forward then backward; returns the outputs (a workspace buffer)."""
        outputs = self.forward(inputs)
        self.backward(targets)
        return outputs

    def loss_value(self, inputs: np.ndarray, targets: np.ndarray) -> float:
        """The (unregularised) loss on one batch."""
        return self.loss.value(self.forward(inputs), targets)


# ------------------------------------------------------------------- targets


def class_levels(activation: str) -> tuple[float, float]:
    """The two target levels of a single-unit classifier: (−1, 1) or (0, 1)."""
    return (-1.0, 1.0) if activation in SYMMETRIC_ACTIVATIONS else (0.0, 1.0)


def encode_targets(
    targets: np.ndarray, *, task: Task, units: int, activation: str, dtype: np.dtype | str
) -> np.ndarray:
    """Training targets (N, units): one-hot rows, the two levels of a single unit,
    or the regression values."""
    if task == "regression":
        return np.ascontiguousarray(targets, dtype=dtype).reshape(len(targets), -1)
    labels = np.asarray(targets, dtype=np.int64)
    if units == 1:
        levels = np.array(class_levels(activation), dtype=dtype)
        return levels[labels].reshape(-1, 1)
    return np.eye(units, dtype=dtype)[labels]


def predict_classes(outputs: np.ndarray, activation: str) -> np.ndarray:
    """Class indices: argmax of K outputs, or the side of the midpoint of one unit."""
    if outputs.shape[1] == 1:
        low, high = class_levels(activation)
        return (outputs[:, 0] > (low + high) / 2).astype(np.int64)
    classes: np.ndarray = np.argmax(outputs, axis=1)
    return classes
