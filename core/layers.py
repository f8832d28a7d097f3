"""The dense layer: z = inputs @ W + b, and its backward pass, on views of flat buffers.

``weights``/``biases`` are views into the network's one parameter buffer and
``dweights``/``dbiases`` views into its one gradient buffer, so an optimizer step
over the flat buffers updates every layer at once (ENGINE.md):

    dweights = inputsᵀ δ      dbiases = Σ_rows δ      dinputs = δ Wᵀ

where δ = ∂L/∂z. The first layer needs no dinputs.
"""

from __future__ import annotations

import numpy as np

#: Σ_rows δ is computed as 1ᵀ δ (a GEMV) up to this many values of δ, and as a
#: column reduction above (where the reduction streams memory faster than the
#: GEMV). Either is deterministic for a given shape; they differ in rounding.
GEMV_BIAS_MAX = 1 << 17


class Dense:
    """One dense layer; its activation is applied by the network."""

    def __init__(
        self,
        *,
        weights: np.ndarray,
        biases: np.ndarray,
        dweights: np.ndarray,
        dbiases: np.ndarray,
    ) -> None:
        self.weights = weights  # (n_in, n_out) view of the parameter buffer
        self.biases = biases  # (n_out,)
        self.dweights = dweights  # same shapes, views of the gradient buffer
        self.dbiases = dbiases
        self.inputs: np.ndarray | None = None
        self._ones: np.ndarray | None = None  # 1-vector for Σ_rows δ as a GEMV

    @property
    def n_inputs(self) -> int:
        return int(self.weights.shape[0])

    @property
    def units(self) -> int:
        return int(self.weights.shape[1])

    def forward(self, inputs: np.ndarray, out: np.ndarray) -> np.ndarray:
        """z = inputs @ W + b into ``out``; keeps ``inputs`` for backward."""
        self.inputs = inputs
        np.matmul(inputs, self.weights, out=out)
        out += self.biases
        return out

    def backward(self, dvalues: np.ndarray, dinputs: np.ndarray | None = None) -> np.ndarray | None:
        """Fill ``dweights``/``dbiases`` from δ = ``dvalues``; return δ Wᵀ written into
        ``dinputs`` (None when ``dinputs`` is None, as for the first layer)."""
        assert self.inputs is not None, "backward before forward"
        np.matmul(self.inputs.T, dvalues, out=self.dweights)
        rows = dvalues.shape[0]
        if rows * dvalues.shape[1] <= GEMV_BIAS_MAX:
            # 1ᵀ δ as a matrix-vector product: 2-3x faster than the column reduction
            # for these sizes (one BLAS call instead of a strided ufunc loop)
            ones = self._ones
            if ones is None or ones.shape[0] < rows or ones.dtype != dvalues.dtype:
                ones = self._ones = np.ones(rows, dtype=dvalues.dtype)
            np.matmul(ones[:rows], dvalues, out=self.dbiases)
        else:
            np.add.reduce(dvalues, axis=0, out=self.dbiases)  # = np.sum, no Python wrapper
        if dinputs is None:
            return None
        return np.matmul(dvalues, self.weights.T, out=dinputs)
