"""Optimizers: explicit state + ``step(params, grads, lr)`` over one flat buffer.

Update rules (ENGINE.md; g = gradient of the regularised loss, element-wise):

- sgd:     v ← μ v + g;  p ← p − ε_t v;  nesterov: p ← p − ε_t (g + μ v)
- adagrad: r ← r + g²;   p ← p − ε_t g / (√r + δ)       (r starts at initial_accumulator)
- rmsprop: r ← ρ r + (1 − ρ) g²;  p ← p − ε_t g / (√r + δ)
- adam:    m ← β₁ m + (1 − β₁) g;  v ← β₂ v + (1 − β₂) g²;
           m̂ = m / (1 − β₁^(t+1));  v̂ = v / (1 − β₂^(t+1));  p ← p − ε_t m̂ / (√v̂ + δ)

sgd, adagrad and rmsprop are evaluated in the order written (``ε_t g / (√r + δ)``
is ``(ε_t g) / (√r + δ)``), so a float64 reference that types the formulas in NumPy
gets the same bits; adam folds its bias corrections into two scalars as
``torch.optim.Adam`` does (the same numbers up to float rounding, see ``Adam``). Each step is a handful of in-place ufunc calls over the whole
buffer, with preallocated scratch arrays; no Python work per parameter.
``t`` counts the steps taken (0 before the first).
"""

from __future__ import annotations

import math

import numpy as np

from core.specs import OptimizerSpec


class Optimizer:
    """Base: state arrays + ``t``; ``step`` updates ``params`` in place."""

    #: names of the state arrays, in ``state_dict`` order.
    state_names: tuple[str, ...] = ()

    def __init__(self, *, size: int, dtype: np.dtype | str) -> None:
        self.size = size
        self.dtype = np.dtype(dtype)
        self.t = 0
        self._scratch = np.empty(size, dtype=self.dtype)
        self._scratch2 = np.empty(size, dtype=self.dtype)

    def step(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the state arrays and ``t`` (a 0-d int64 array)."""
        state = {name: getattr(self, name).copy() for name in self.state_names}
        state["t"] = np.array(self.t, dtype=np.int64)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore from :meth:`state_dict` (ValueError on missing keys or wrong shapes)."""
        expected = {*self.state_names, "t"}
        if set(state) != expected:
            raise ValueError(
                f"optimizer state has keys {sorted(state)}, expected {sorted(expected)}"
            )
        for name in self.state_names:
            value = np.asarray(state[name])
            if value.shape != (self.size,):
                raise ValueError(f"optimizer state {name!r} has shape {value.shape}")
            getattr(self, name)[...] = value
        self.t = int(state["t"])


class SGD(Optimizer):
    """v ← μ v + g; p ← p − ε_t v; nesterov: p ← p − ε_t (g + μ v).

    With μ = 0 the update is p ← p − ε_t g and ``velocity`` stays at 0 (v would
    only ever equal the last g and is never read back).
    """

    state_names = ("velocity",)

    def __init__(
        self, *, size: int, dtype: np.dtype | str, momentum: float = 0.0, nesterov: bool = False
    ) -> None:
        super().__init__(size=size, dtype=dtype)
        self.momentum = momentum
        self.nesterov = nesterov
        self.velocity = np.zeros(size, dtype=self.dtype)

    def step(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        update = self._scratch
        momentum = self.momentum
        if momentum == 0:
            np.multiply(grads, lr, out=update)  # ε g
        else:
            velocity = self.velocity
            velocity *= momentum
            velocity += grads  # v = μ v + g
            if self.nesterov:
                np.multiply(velocity, momentum, out=update)
                update += grads  # g + μ v
                update *= lr
            else:
                np.multiply(velocity, lr, out=update)  # ε v
        params -= update
        self.t += 1


class Adagrad(Optimizer):
    """r ← r + g²; p ← p − ε_t g / (√r + δ)."""

    state_names = ("accumulator",)

    def __init__(
        self,
        *,
        size: int,
        dtype: np.dtype | str,
        epsilon: float = 1e-7,
        initial_accumulator: float = 0.0,
    ) -> None:
        super().__init__(size=size, dtype=dtype)
        self.epsilon = epsilon
        self.accumulator = np.full(size, initial_accumulator, dtype=self.dtype)

    def step(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        update, denominator = self._scratch, self._scratch2
        np.multiply(grads, grads, out=update)
        self.accumulator += update  # r + g²
        np.sqrt(self.accumulator, out=denominator)
        denominator += self.epsilon  # √r + δ
        np.multiply(grads, lr, out=update)
        update /= denominator  # ε g / (√r + δ)
        params -= update
        self.t += 1


class RMSprop(Optimizer):
    """r ← ρ r + (1 − ρ) g²; p ← p − ε_t g / (√r + δ)."""

    state_names = ("square_average",)

    def __init__(
        self, *, size: int, dtype: np.dtype | str, rho: float = 0.9, epsilon: float = 1e-7
    ) -> None:
        super().__init__(size=size, dtype=dtype)
        self.rho = rho
        self.epsilon = epsilon
        self.square_average = np.zeros(size, dtype=self.dtype)

    def step(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        update, denominator = self._scratch, self._scratch2
        average = self.square_average
        average *= self.rho
        np.multiply(grads, grads, out=update)
        update *= 1 - self.rho
        average += update  # ρ r + (1 − ρ) g²
        np.sqrt(average, out=denominator)
        denominator += self.epsilon
        np.multiply(grads, lr, out=update)
        update /= denominator
        params -= update
        self.t += 1


class Adam(Optimizer):
    """m ← β₁ m + (1 − β₁) g; v ← β₂ v + (1 − β₂) g²; p ← p − ε_t m̂ / (√v̂ + δ)
    with m̂ = m / (1 − β₁^(t+1)), v̂ = v / (1 − β₂^(t+1)).

    Evaluated in ``torch.optim.Adam``'s arrangement, with the bias corrections
    folded into two scalars (c₁ = 1 − β₁^(t+1), c₂ = 1 − β₂^(t+1)):

        p ← p − (ε_t √c₂ / c₁) · m / (√v + δ √c₂)

    — ENGINE.md's formula exactly in real arithmetic, different in the last bits
    (the moments m and v themselves are computed as written). 12 in-place passes
    instead of 14, and the flat buffer is walked in blocks of ``BLOCK`` values so
    that every pass over a block finds it in the cache (each element's arithmetic
    is the same whatever the block size, so the bits do not depend on it).
    """

    state_names = ("first_moment", "second_moment")

    #: values per block: 6 arrays of 32 Ki float32/float64 stay in a 2 MiB L2.
    BLOCK = 1 << 15

    def __init__(
        self,
        *,
        size: int,
        dtype: np.dtype | str,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-7,
    ) -> None:
        super().__init__(size=size, dtype=dtype)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.first_moment = np.zeros(size, dtype=self.dtype)
        self.second_moment = np.zeros(size, dtype=self.dtype)
        block = max(1, min(size, self.BLOCK))
        # the base class's full-size scratch is not needed: one block's worth is
        self._scratch = np.empty(block, dtype=self.dtype)
        self._scratch2 = np.empty(block, dtype=self.dtype)
        self._blocks = [slice(start, start + block) for start in range(0, size, block)]

    def step(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        beta1, beta2 = self.beta1, self.beta2
        one_minus_beta1, one_minus_beta2 = 1 - beta1, 1 - beta2
        correction2 = math.sqrt(1 - beta2 ** (self.t + 1))  # √c₂
        step_size = lr * correction2 / (1 - beta1 ** (self.t + 1))  # ε_t √c₂ / c₁
        epsilon = self.epsilon * correction2  # δ √c₂
        first, second = self.first_moment, self.second_moment
        multiply, sqrt, divide = np.multiply, np.sqrt, np.divide
        for block in self._blocks:
            g, m, v, p = grads[block], first[block], second[block], params[block]
            n = g.shape[0]
            update, denominator = self._scratch[:n], self._scratch2[:n]
            m *= beta1
            multiply(g, one_minus_beta1, out=update)
            m += update  # m = β₁ m + (1 − β₁) g
            v *= beta2
            multiply(g, g, out=update)
            update *= one_minus_beta2
            v += update  # v = β₂ v + (1 − β₂) g²
            sqrt(v, out=denominator)
            denominator += epsilon  # √v + δ √c₂
            divide(m, denominator, out=update)
            update *= step_size
            p -= update
        self.t += 1


#: optimizer type → class; constructors take explicit keyword arguments only.
OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adagrad": Adagrad,
    "rmsprop": RMSprop,
    "adam": Adam,
}

#: spec fields that belong to the caller (learning rate, schedule, penalties).
_NOT_OPTIMIZER_FIELDS = {"type", "learning_rate", "schedule", "l1", "l2"}


def make_optimizer(spec: OptimizerSpec, *, size: int, dtype: np.dtype | str) -> Optimizer:
    """The optimizer of ``spec`` for a flat buffer of ``size`` values of ``dtype``.

    The learning rate is not part of the optimizer: pass ε_t to ``step``
    (``core.schedules.learning_rate(spec.schedule, spec.learning_rate, optimizer.t)``).
    """
    options = spec.model_dump(exclude=_NOT_OPTIMIZER_FIELDS)
    return OPTIMIZERS[spec.type](size=size, dtype=dtype, **options)


def add_penalty_gradient(
    params: np.ndarray,
    grads: np.ndarray,
    l1: float,
    l2: float,
    mask: np.ndarray | None = None,
) -> None:
    """grads ← grads + λ₁ sign(w) + 2 λ₂ w where ``mask`` is True (every entry when None).

    sign(0) = 0. Added in that order: (g + λ₁ sign(w)) + 2λ₂ w.
    """
    if l1:
        term = np.sign(params)
        term *= l1
        if mask is not None:
            term *= mask
        grads += term
    if l2:
        term = np.multiply(params, 2 * l2)
        if mask is not None:
            term *= mask
        grads += term
