"""The 2-D test functions of the optimizer walk-through and their trajectories.

Each function comes with its analytic gradient; an optimizer's trajectory is the
sequence of its iterates on that exact gradient, in float64, with the engine's
own optimizers and schedules (ENGINE.md), the point p = (x, y) being the only
parameter.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.optimizers import make_optimizer
from core.schedules import learning_rate
from core.specs import TrajectoryRequest

Point = np.ndarray  # float64 (2,)


@dataclass(frozen=True)
class Surface:
    """f(x, y), its gradient (∂f/∂x, ∂f/∂y) and its minimum (None for a saddle)."""

    name: str
    formula: str
    value: Callable[[Point], float]
    gradient: Callable[[Point], Point]
    minimum: tuple[float, float] | None


def quadratic(p: Point) -> float:
    x, y = p
    return x**2 + 10.0 * y**2


def quadratic_gradient(p: Point) -> Point:
    x, y = p
    return np.array([2.0 * x, 20.0 * y])


def rosenbrock(p: Point) -> float:
    x, y = p
    return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2


def rosenbrock_gradient(p: Point) -> Point:
    x, y = p
    return np.array([-2.0 * (1.0 - x) - 400.0 * x * (y - x**2), 200.0 * (y - x**2)])


def _beale_terms(p: Point) -> tuple[float, float, float]:
    x, y = p
    return 1.5 - x + x * y, 2.25 - x + x * y**2, 2.625 - x + x * y**3


def beale(p: Point) -> float:
    a, b, c = _beale_terms(p)
    return a**2 + b**2 + c**2


def beale_gradient(p: Point) -> Point:
    x, y = p
    a, b, c = _beale_terms(p)
    return np.array(
        [
            2.0 * a * (y - 1.0) + 2.0 * b * (y**2 - 1.0) + 2.0 * c * (y**3 - 1.0),
            2.0 * a * x + 4.0 * b * x * y + 6.0 * c * x * y**2,
        ]
    )


def himmelblau(p: Point) -> float:
    x, y = p
    return (x**2 + y - 11.0) ** 2 + (x + y**2 - 7.0) ** 2


def himmelblau_gradient(p: Point) -> Point:
    x, y = p
    u, v = x**2 + y - 11.0, x + y**2 - 7.0
    return np.array([4.0 * x * u + 2.0 * v, 2.0 * u + 4.0 * y * v])


def saddle(p: Point) -> float:
    x, y = p
    return x**2 - y**2


def saddle_gradient(p: Point) -> Point:
    x, y = p
    return np.array([2.0 * x, -2.0 * y])


SURFACES: dict[str, Surface] = {
    "quadratic": Surface("quadratic", "x² + 10 y²", quadratic, quadratic_gradient, (0.0, 0.0)),
    "rosenbrock": Surface(
        "rosenbrock", "(1 − x)² + 100 (y − x²)²", rosenbrock, rosenbrock_gradient, (1.0, 1.0)
    ),
    "beale": Surface(
        "beale",
        "(1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²",
        beale,
        beale_gradient,
        (3.0, 0.5),
    ),
    "himmelblau": Surface(
        "himmelblau",
        "(x² + y − 11)² + (x + y² − 7)²",
        himmelblau,
        himmelblau_gradient,
        (3.0, 2.0),
    ),
    "saddle": Surface("saddle", "x² − y²", saddle, saddle_gradient, None),
}


def penalised(
    surface: Surface, l1: float, l2: float
) -> tuple[Callable[[Point], float], Callable[[Point], Point]]:
    """f + λ₁‖p‖₁ + λ₂‖p‖² and its gradient ∇f + λ₁ sign(p) + 2 λ₂ p (sign(0) = 0)."""

    def value(p: Point) -> float:
        return surface.value(p) + l1 * np.abs(p).sum() + l2 * (p**2).sum()

    def gradient(p: Point) -> Point:
        return surface.gradient(p) + l1 * np.sign(p) + 2.0 * l2 * p

    return value, gradient


def run_trajectories(request: TrajectoryRequest) -> dict[str, Any]:
    """API.md's response body: one trajectory per optimizer, all from ``request.start``.

    ``points[i]`` and ``values[i]`` are the point after i optimizer steps and the
    (penalised) function value there, so both hold ``steps + 1`` entries and
    ``diverged_at`` is None when every point stays finite.

    A run-away trajectory stops at the first step whose point or value is not
    finite: ``points``/``values`` then end with the last finite point and
    ``diverged_at`` is that step's number (1-based: the point it would have had
    index ``diverged_at``, so both lists hold ``diverged_at`` entries). If f is
    already not finite at the start (|start| huge), both lists are empty and
    ``diverged_at`` is 0. NaN and ±Inf are never emitted (JSON cannot hold them).
    """
    surface = SURFACES[request.function]
    return {
        "function": request.function,
        "minimum": list(surface.minimum) if surface.minimum is not None else None,
        "trajectories": [
            _trajectory(surface, tuple(request.start), request.steps, spec)
            for spec in request.optimizers
        ],
    }


def _trajectory(
    surface: Surface, start: tuple[float, float], steps: int, spec: Any
) -> dict[str, Any]:
    value, gradient = penalised(surface, spec.l1, spec.l2)
    optimizer = make_optimizer(spec, size=2, dtype=np.float64)
    params = np.array(start, dtype=np.float64)
    points: list[list[float]] = []
    values: list[float] = []
    diverged_at: int | None = None

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for step in range(steps + 1):
            if step > 0:
                try:
                    rate = learning_rate(spec.schedule, spec.learning_rate, optimizer.t)
                except OverflowError:  # γ > 1 raised to a large t: the step runs away
                    rate = math.inf
                optimizer.step(params, gradient(params), rate)
            current = float(value(params))
            x, y = float(params[0]), float(params[1])
            if not (math.isfinite(current) and math.isfinite(x) and math.isfinite(y)):
                diverged_at = step
                break
            points.append([x, y])
            values.append(current)

    return {
        "optimizer": spec.model_dump(mode="json"),
        "points": points,
        "values": values,
        "diverged_at": diverged_at,
    }
