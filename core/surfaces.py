"""The 2-D test functions of the optimizer walk-through and their trajectories.

Each function is written once on (x, y), so the same code evaluates one point (a
trajectory step, Python floats) and a whole grid (NumPy arrays, for contour
plots: :func:`evaluate`). Each comes with its analytic gradient, all its minima
and a plotting window that shows them. An optimizer's trajectory is the sequence
of its iterates on that exact gradient, in float64, with the engine's own
optimizers and schedules (ENGINE.md), the point p = (x, y) being the only
parameter. The results are dataclasses; the service maps them to its JSON.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.optimizer_specs import OptimizerSpec, TrajectoryRequest
from core.optimizers import make_optimizer
from core.schedules import learning_rate

Array = np.ndarray[Any, Any]
Point = Array  # float64 (2,)
#: A NumPy float or an array of them: every function below works on both.
V = Any
XY = tuple[float, float]


# ----------------------------------------------------------------- the functions


def _quadratic(x: V, y: V) -> V:
    return x**2 + 10.0 * y**2


def _quadratic_gradient(x: V, y: V) -> tuple[V, V]:
    return 2.0 * x, 20.0 * y


def _rosenbrock(x: V, y: V) -> V:
    return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2


def _rosenbrock_gradient(x: V, y: V) -> tuple[V, V]:
    return -2.0 * (1.0 - x) - 400.0 * x * (y - x**2), 200.0 * (y - x**2)


def _beale(x: V, y: V) -> V:
    a, b, c = 1.5 - x + x * y, 2.25 - x + x * y**2, 2.625 - x + x * y**3
    return a**2 + b**2 + c**2


def _beale_gradient(x: V, y: V) -> tuple[V, V]:
    a, b, c = 1.5 - x + x * y, 2.25 - x + x * y**2, 2.625 - x + x * y**3
    return (
        2.0 * a * (y - 1.0) + 2.0 * b * (y**2 - 1.0) + 2.0 * c * (y**3 - 1.0),
        2.0 * a * x + 4.0 * b * x * y + 6.0 * c * x * y**2,
    )


def _himmelblau(x: V, y: V) -> V:
    return (x**2 + y - 11.0) ** 2 + (x + y**2 - 7.0) ** 2


def _himmelblau_gradient(x: V, y: V) -> tuple[V, V]:
    u, v = x**2 + y - 11.0, x + y**2 - 7.0
    return 4.0 * x * u + 2.0 * v, 2.0 * u + 4.0 * y * v


def _saddle(x: V, y: V) -> V:
    return x**2 - y**2


def _saddle_gradient(x: V, y: V) -> tuple[V, V]:
    return 2.0 * x, -2.0 * y


@dataclass(frozen=True)
class Surface:
    """f(x, y), its gradient, every minimum (none for a saddle) and a plotting window."""

    name: str
    formula: str
    f: Callable[[Any, Any], Any]  # (x, y) → f, for floats or arrays alike
    df: Callable[[Any, Any], tuple[Any, Any]]  # (x, y) → (∂f/∂x, ∂f/∂y)
    minima: tuple[XY, ...]
    window: tuple[XY, XY]  # ((x_lo, x_hi), (y_lo, y_hi))

    @property
    def minimum(self) -> XY | None:
        """The minimum the API has always named (the first one), or None."""
        return self.minima[0] if self.minima else None

    # NumPy scalars, not Python floats: they overflow to inf (``**`` on a Python
    # float raises OverflowError), which the trajectory reports as a divergence.
    def value(self, p: Point) -> float:
        return float(self.f(p[0], p[1]))

    def gradient(self, p: Point) -> Point:
        return np.array(self.df(p[0], p[1]), dtype=np.float64)


SURFACES: dict[str, Surface] = {
    "quadratic": Surface(
        "quadratic",
        "x² + 10 y²",
        _quadratic,
        _quadratic_gradient,
        ((0.0, 0.0),),
        ((-2.0, 2.0), (-1.0, 1.0)),
    ),
    "rosenbrock": Surface(
        "rosenbrock",
        "(1 − x)² + 100 (y − x²)²",
        _rosenbrock,
        _rosenbrock_gradient,
        ((1.0, 1.0),),
        ((-2.0, 2.0), (-1.0, 3.0)),
    ),
    "beale": Surface(
        "beale",
        "(1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²",
        _beale,
        _beale_gradient,
        ((3.0, 0.5),),
        ((-4.5, 4.5), (-4.5, 4.5)),
    ),
    "himmelblau": Surface(
        "himmelblau",
        "(x² + y − 11)² + (x + y² − 7)²",
        _himmelblau,
        _himmelblau_gradient,
        (  # (3, 2) exactly; the other three to double precision (Newton from near them)
            (3.0, 2.0),
            (-2.805118086952745, 3.131312518250573),
            (-3.779310253377747, -3.283185991286170),
            (3.584428340330492, -1.848126526964404),
        ),
        ((-5.0, 5.0), (-5.0, 5.0)),
    ),
    "saddle": Surface(
        "saddle", "x² − y²", _saddle, _saddle_gradient, (), ((-2.0, 2.0), (-2.0, 2.0))
    ),
}


def evaluate(function_name: str, X: Array, Y: Array) -> Array:
    """f over a grid: ``X`` and ``Y`` broadcast together (e.g. from ``np.meshgrid``).

    float64 throughout; points where f overflows come out as inf (no warning).
    ``KeyError`` for an unknown name.
    """
    surface = SURFACES[function_name]
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(
            surface.f(np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)),
            dtype=np.float64,
        )


def penalised(
    surface: Surface, l1: float, l2: float
) -> tuple[Callable[[Point], float], Callable[[Point], Point]]:
    """f + λ₁‖p‖₁ + λ₂‖p‖² and its gradient ∇f + λ₁ sign(p) + 2 λ₂ p (sign(0) = 0)."""

    def value(p: Point) -> float:
        return surface.value(p) + l1 * float(np.abs(p).sum()) + l2 * float((p**2).sum())

    def gradient(p: Point) -> Point:
        return surface.gradient(p) + l1 * np.sign(p) + 2.0 * l2 * p

    return value, gradient


# ------------------------------------------------------------------ trajectories


@dataclass(frozen=True)
class Trajectory:
    """One optimizer's walk: ``points`` (n, 2) and ``values`` (n,), float64, all finite.

    ``values[i]`` is the objective the optimizer minimises at ``points[i]``: f plus
    the L1/L2 term of its spec (λ₁‖p‖₁ + λ₂‖p‖²). ``diverged_at`` is None when all
    ``steps + 1`` points are finite; else the step whose point or value was not
    (and n = ``diverged_at``).
    """

    optimizer: OptimizerSpec
    points: Array
    values: Array
    diverged_at: int | None


@dataclass(frozen=True)
class TrajectoryResult:
    function: str
    minimum: XY | None
    minima: tuple[XY, ...]
    trajectories: list[Trajectory]


def run_trajectories(request: TrajectoryRequest) -> TrajectoryResult:
    """One trajectory per optimizer, all from ``request.start``.

    ``points[i]`` is the point after i optimizer steps. A run-away trajectory stops
    at the first step whose point or value is not finite: ``points``/``values`` then
    end with the last finite point and ``diverged_at`` is that step's number. If f
    is already not finite at the start (|start| huge), both are empty and
    ``diverged_at`` is 0. NaN and ±Inf are never in the result.
    """
    surface = SURFACES[request.function]
    return TrajectoryResult(
        function=request.function,
        minimum=surface.minimum,
        minima=surface.minima,
        trajectories=[
            _trajectory(surface, request.start, request.steps, spec) for spec in request.optimizers
        ],
    )


def _trajectory(surface: Surface, start: XY, steps: int, spec: OptimizerSpec) -> Trajectory:
    value, gradient = penalised(surface, spec.l1, spec.l2)
    optimizer = make_optimizer(spec, size=2, dtype=np.dtype(np.float64))
    params = np.array(start, dtype=np.float64)
    points = np.empty((steps + 1, 2), dtype=np.float64)
    values = np.empty(steps + 1, dtype=np.float64)
    diverged_at: int | None = None
    n = 0

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for step in range(steps + 1):
            if step > 0:
                try:
                    rate = learning_rate(spec.schedule, spec.learning_rate, optimizer.t)
                except OverflowError:  # γ > 1 raised to a large t: the step runs away
                    rate = math.inf
                optimizer.step(params, gradient(params), rate)
            current = value(params)
            x, y = float(params[0]), float(params[1])
            if not (math.isfinite(current) and math.isfinite(x) and math.isfinite(y)):
                diverged_at = step
                break
            points[n] = x, y
            values[n] = current
            n += 1

    return Trajectory(optimizer=spec, points=points[:n], values=values[:n], diverged_at=diverged_at)
