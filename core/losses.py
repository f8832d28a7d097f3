"""Losses averaged over the batch: ``value(outputs, targets)`` and ``gradient`` = ∂L/∂y.

With N samples and K outputs (ENGINE.md):

- ``mse``: L = mean over N·K of ½ (t − y)²            → ∂L/∂y = (y − t) / (N K)
- ``mae``: L = mean over N·K of |t − y|               → ∂L/∂y = sign(y − t) / (N K)
- ``binary_cross_entropy``: L = −mean over N·K of [t log y + (1 − t) log(1 − y)],
  y clipped to [1e−7, 1 − 1e−7]                       → ∂L/∂y = (y − t) / (y (1 − y)) / (N K)
  (the same as −t/y + (1 − t)/(1 − y), on the clipped y)
- ``cross_entropy``: L = −mean over N of Σₖ tₖ log yₖ, y clipped likewise
                                                      → ∂L/∂y = −t / y / N

The softmax + cross-entropy pair is fused in ``core.network`` (δ = (y − t) / N).
Loss values are accumulated in float64 whatever the training dtype; they are
reported, never fed back into the weights.
"""

from __future__ import annotations

import numpy as np

#: Outputs are clipped to [CLIP, 1 − CLIP] inside the logarithms.
CLIP = 1e-7


class Loss:
    """Base: ``value(outputs, targets) -> float``; ``gradient(outputs, targets, out) -> out``."""

    name: str = ""

    def value(self, outputs: np.ndarray, targets: np.ndarray) -> float:
        raise NotImplementedError

    def gradient(self, outputs: np.ndarray, targets: np.ndarray, out: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class MeanSquaredError(Loss):
    name = "mse"

    def value(self, outputs: np.ndarray, targets: np.ndarray) -> float:
        difference = np.subtract(targets, outputs, dtype=np.float64)
        return 0.5 * float(np.mean(np.square(difference, out=difference)))

    def gradient(self, outputs: np.ndarray, targets: np.ndarray, out: np.ndarray) -> np.ndarray:
        np.subtract(outputs, targets, out=out)
        np.divide(out, outputs.size, out=out)
        return out


class MeanAbsoluteError(Loss):
    name = "mae"

    def value(self, outputs: np.ndarray, targets: np.ndarray) -> float:
        difference = np.subtract(targets, outputs, dtype=np.float64)
        return float(np.mean(np.abs(difference, out=difference)))

    def gradient(self, outputs: np.ndarray, targets: np.ndarray, out: np.ndarray) -> np.ndarray:
        np.subtract(outputs, targets, out=out)
        np.sign(out, out=out)
        np.divide(out, outputs.size, out=out)
        return out


def _clipped(outputs: np.ndarray) -> np.ndarray:
    clipped: np.ndarray = np.clip(outputs, CLIP, 1 - CLIP)
    return clipped


class BinaryCrossEntropy(Loss):
    name = "binary_cross_entropy"

    def value(self, outputs: np.ndarray, targets: np.ndarray) -> float:
        clipped = _clipped(outputs).astype(np.float64)
        targets = targets.astype(np.float64)
        log_likelihood = targets * np.log(clipped) + (1 - targets) * np.log(1 - clipped)
        return -float(np.mean(log_likelihood))

    def gradient(self, outputs: np.ndarray, targets: np.ndarray, out: np.ndarray) -> np.ndarray:
        clipped = _clipped(outputs)
        np.subtract(clipped, targets, out=out)
        out /= clipped * (1 - clipped)
        np.divide(out, outputs.size, out=out)
        return out


class CrossEntropy(Loss):
    name = "cross_entropy"

    def value(self, outputs: np.ndarray, targets: np.ndarray) -> float:
        # log in float64 of the clipped outputs (np.log casts its input first: the
        # same numbers as .astype(np.float64) then log, without the copy)
        log_likelihood = np.log(_clipped(outputs), dtype=np.float64)
        log_likelihood *= targets
        # Σₖ per row as a product with a ones vector (a row-wise reduction over a
        # few columns is slow); with one-hot targets every other term is ±0, so the
        # row sum is exactly log y of the target class whatever the order.
        per_row = log_likelihood @ np.ones(log_likelihood.shape[1])
        return -float(np.mean(per_row))

    def gradient(self, outputs: np.ndarray, targets: np.ndarray, out: np.ndarray) -> np.ndarray:
        clipped = _clipped(outputs)
        np.divide(targets, clipped, out=out)
        np.negative(out, out=out)
        np.divide(out, outputs.shape[0], out=out)
        return out


#: name → loss (the objects are stateless).
LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (MeanSquaredError(), MeanAbsoluteError(), BinaryCrossEntropy(), CrossEntropy())
}


def get_loss(name: str) -> Loss:
    """The loss called ``name``."""
    return LOSSES[name]
