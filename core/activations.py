"""Activations: the forward f(z) and the backward product dvalues · f′, looked up by name.

Each activation works on preallocated buffers (``out=`` ufunc calls, no
allocation per batch). ``forward`` returns the output array — ``linear`` returns
``z`` itself — and ``backward`` returns ``dinputs = ∂L/∂z`` given
``dvalues = ∂L/∂y``; it may overwrite ``dvalues`` in place and return it.
The scratch buffers come from a :class:`Scratch` of the layer's shape.

The derivatives are ENGINE.md's table: ``step`` uses 1 (the perceptron rule),
``sigmoid`` y(1 − y), ``tanh`` 1 − y², ``arctan`` 1 / (1 + z²), ``relu``
[z > 0], ``leaky_relu`` 1 or 0.01, ``softmax`` the Jacobian-vector product
y ⊙ (g − Σₖ gₖ yₖ) (the fused softmax + cross-entropy lives in ``core.network``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: Slope of leaky_relu for z ≤ 0.
LEAKY_SLOPE = 0.01
#: Softmax over at most this many classes (and at least this many rows) reduces
#: over a transposed copy (faster; for fewer rows the extra copies cost more).
_NARROW = 32


@lru_cache(maxsize=256)
def constant_row(value: float, dtype: np.dtype, width: int) -> np.ndarray:
    """A read-only row of ``value`` in ``dtype``, to broadcast over a matrix's rows.

    NumPy (2.4) runs ``np.maximum``/``np.minimum`` against a scalar in a loop that is
    not vectorised: 2-4× slower than against a row broadcast over the rows (a
    256 × 128 float32 ReLU: 17-38 µs against 8; ``np.clip`` is the other way round).
    The scalar is cast to the array's dtype either way (NEP 50), so the bits are the
    same, NaN and -0 included.
    """
    row = np.full(width, value, dtype=dtype)
    row.flags.writeable = False
    return row


def zero_row(z: np.ndarray) -> np.ndarray:
    """``constant_row(0, …)`` as wide as the last axis of ``z``."""
    return constant_row(0.0, z.dtype, z.shape[-1])


@dataclass
class Scratch:
    """Work buffers of one layer for one batch size: a float array like z, a boolean
    mask like z and one float column (N, 1)."""

    buffer: np.ndarray
    mask: np.ndarray
    column: np.ndarray

    @classmethod
    def like(cls, z: np.ndarray) -> Scratch:
        return cls(
            buffer=np.empty_like(z),
            mask=np.empty(z.shape, dtype=bool),
            column=np.empty((z.shape[0], 1), dtype=z.dtype),
        )


class Activation:
    """Base: ``forward(z, out, scratch) -> y``, ``backward(dvalues, z, y, scratch) -> dinputs``."""

    name: str = ""
    #: False when forward returns ``z`` itself (possibly overwritten in place, as
    #: relu does) and needs no output buffer.
    needs_output: bool = True

    def forward(self, z: np.ndarray, out: np.ndarray, scratch: Scratch) -> np.ndarray:
        raise NotImplementedError

    def backward(
        self, dvalues: np.ndarray, z: np.ndarray, y: np.ndarray, scratch: Scratch
    ) -> np.ndarray:
        raise NotImplementedError


class Linear(Activation):
    """f(z) = z, f′ = 1."""

    name = "linear"
    needs_output = False

    def forward(self, z: np.ndarray, out: np.ndarray, scratch: Scratch) -> np.ndarray:
        return z

    def backward(
        self, dvalues: np.ndarray, z: np.ndarray, y: np.ndarray, scratch: Scratch
    ) -> np.ndarray:
        return dvalues


class Step(Activation):
    """f(z) = [z > 0]; backward uses f′ = 1, the perceptron learning rule."""

    name = "step"

    def forward(self, z: np.ndarray, out: np.ndarray, scratch: Scratch) -> np.ndarray:
        np.greater(z, 0, out=out, casting="unsafe")
        return out

    def backward(
        self, dvalues: np.ndarray, z: np.ndarray, y: np.ndarray, scratch: Scratch
    ) -> np.ndarray:
        return dvalues


class Sigmoid(Activation):
    """f(z) = 1 / (1 + e^−z) = e^min(z, 0) / (1 + e^−|z|): no exponent is ever positive,
    so nothing overflows; f′ = y (1 − y)."""

    name = "sigmoid"

    def forward(self, z: np.ndarray, out: np.ndarray, scratch: Scratch) -> np.ndarray:
        np.minimum(z, zero_row(z), out=out)
        np.exp(out, out=out)
        denominator = np.abs(z, out=scratch.buffer)
        np.negative(denominator, out=denominator)
        np.exp(denominator, out=denominator)
        denominator += 1
        np.divide(out, denominator, out=out)
        return out

    def backward(
        self, dvalues: np.ndarray, z: np.ndarray, y: np.ndarray, scratch: Scratch
    ) -> np.ndarray:
        derivative = np.subtract(1, y, out=scratch.buffer)
        derivative *= y
        np.multiply(dvalues, derivative, out=dvalues)
        return dvalues


class Tanh(Activation):
    """f(z) = tanh z, f′ = 1 − y²."""

    name = "tanh"

    def forward(self, z: np.ndarray, out: np.ndarray, scratch: Scratch) -> np.ndarray:
        np.tanh(z, out=out)
        return out

    def backward(
        self, dvalues: np.ndarray, z: np.ndarray, y: np.ndarray, scratch: Scratch
    ) -> np.ndarray:
        derivative = np.square(y, out=scratch.buffer)
        np.subtract(1, derivative, out=derivative)
        np.multiply(dvalues, derivative, out=dvalues)
        return dvalues


class Arctan(Activation):
    """f(z) = arctan z, f′ = 1 / (1 + z²)."""

    name = "arctan"

    def forward(self, z: np.ndarray, out: np.ndarray, scratch: Scratch) -> np.ndarray:
        np.arctan(z, out=out)
        return out

    def backward(
        self, dvalues: np.ndarray, z: np.ndarray, y: np.ndarray, scratch: Scratch
    ) -> np.ndarray:
        denominator = np.square(z, out=scratch.buffer)
        denominator += 1
        np.divide(dvalues, denominator, out=dvalues)
        return dvalues


class ReLU(Activation):
    """f(z) = max(0, z), f′ = [z > 0].

    Computed in place (``needs_output`` False): y overwrites z, which saves a buffer
    and a pass over memory. Backward only needs [z > 0], and y > 0 exactly when
    z > 0 (NaN stays NaN, and NaN > 0 is False either way), so it reads y.
    """

    name = "relu"
    needs_output = False

    def forward(self, z: np.ndarray, out: np.ndarray, scratch: Scratch) -> np.ndarray:
        np.maximum(z, zero_row(z), out=z)
        return z

    def backward(
        self, dvalues: np.ndarray, z: np.ndarray, y: np.ndarray, scratch: Scratch
    ) -> np.ndarray:
        positive = np.greater(y, 0, out=scratch.mask)
        np.multiply(dvalues, positive, out=dvalues)
        return dvalues


class LeakyReLU(Activation):
    """f(z) = z if z > 0 else 0.01 z (= max(z, 0.01 z)), f′ = 1 or 0.01."""

    name = "leaky_relu"

    def forward(self, z: np.ndarray, out: np.ndarray, scratch: Scratch) -> np.ndarray:
        np.multiply(z, LEAKY_SLOPE, out=out)
        np.maximum(z, out, out=out)
        return out

    def backward(
        self, dvalues: np.ndarray, z: np.ndarray, y: np.ndarray, scratch: Scratch
    ) -> np.ndarray:
        negative = np.less_equal(z, 0, out=scratch.mask)
        sloped = np.multiply(dvalues, LEAKY_SLOPE, out=scratch.buffer)
        np.copyto(dvalues, sloped, where=negative)
        return dvalues


class Softmax(Activation):
    """f(z)ₖ = e^(zₖ − max z) / Σⱼ e^(zⱼ − max z); backward: the Jacobian-vector product
    dinputs = y ⊙ (g − Σₖ gₖ yₖ) for dvalues g."""

    name = "softmax"

    def forward(self, z: np.ndarray, out: np.ndarray, scratch: Scratch) -> np.ndarray:
        column = scratch.column
        n_rows, n_classes = z.shape
        if n_classes <= _NARROW and n_rows >= _NARROW:
            # A row-wise reduction over a few columns runs one short inner loop per
            # row (~50 µs for 1024 × 10); copying z transposed into the scratch
            # buffer and reducing over its first axis is vectorised across rows
            # (~5 µs). The max is the same value; the sum adds the columns in order.
            transposed = scratch.buffer.reshape(n_classes, n_rows)  # a view: same memory
            lane = column[:, 0]
            np.copyto(transposed, z.T)
            np.maximum.reduce(transposed, axis=0, out=lane)
            np.subtract(z, column, out=out)
            np.exp(out, out=out)
            np.copyto(transposed, out.T)
            np.add.reduce(transposed, axis=0, out=lane)
        else:
            # np.max / np.sum are these reductions behind a Python wrapper (same bits)
            np.maximum.reduce(z, axis=1, keepdims=True, out=column)
            np.subtract(z, column, out=out)
            np.exp(out, out=out)
            np.add.reduce(out, axis=1, keepdims=True, out=column)
        np.divide(out, column, out=out)
        return out

    def backward(
        self, dvalues: np.ndarray, z: np.ndarray, y: np.ndarray, scratch: Scratch
    ) -> np.ndarray:
        column = scratch.column
        product = np.multiply(dvalues, y, out=scratch.buffer)
        np.sum(product, axis=1, keepdims=True, out=column)
        np.subtract(dvalues, column, out=dvalues)
        np.multiply(dvalues, y, out=dvalues)
        return dvalues


#: name → activation (the objects are stateless).
ACTIVATIONS: dict[str, Activation] = {
    activation.name: activation
    for activation in (
        Linear(),
        Step(),
        Sigmoid(),
        Tanh(),
        Arctan(),
        ReLU(),
        LeakyReLU(),
        Softmax(),
    )
}


def get_activation(name: str) -> Activation:
    """The activation called ``name`` (KeyError names the unknown one)."""
    return ACTIVATIONS[name]
