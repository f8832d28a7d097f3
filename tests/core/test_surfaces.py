"""The 2-D functions of the optimizer walk-through and the trajectories on them."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from core.specs import TrajectoryRequest
from core.surfaces import SURFACES, TrajectoryResult, evaluate, penalised, run_trajectories

POINTS = [(-1.5, 2.0), (0.3, -0.7), (2.5, 0.25), (-3.1, -1.9), (1.1, 1.3)]


def central_difference(function, point, h=1e-6):
    p = np.array(point, dtype=np.float64)
    gradient = np.zeros(2)
    for k in range(2):
        step = np.zeros(2)
        step[k] = h
        gradient[k] = (function(p + step) - function(p - step)) / (2 * h)
    return gradient


@pytest.mark.parametrize("name", sorted(SURFACES))
@pytest.mark.parametrize("point", POINTS)
def test_gradient_matches_central_differences(name, point):
    surface = SURFACES[name]
    analytic = surface.gradient(np.array(point))
    numeric = central_difference(surface.value, point)
    assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-5)


@pytest.mark.parametrize("point", [(0.3, -0.7), (-1.5, 2.0)])
def test_penalised_gradient_matches_central_differences(point):
    value, gradient = penalised(SURFACES["rosenbrock"], 0.5, 2.0)
    assert gradient(np.array(point)) == pytest.approx(
        central_difference(value, point), rel=1e-6, abs=1e-5
    )


def test_penalty_values_and_sign_of_zero():
    value, gradient = penalised(SURFACES["quadratic"], 0.5, 2.0)
    assert value(np.array([1.0, -2.0])) == 1 + 40 + 0.5 * 3 + 2.0 * 5
    assert gradient(np.array([0.0, 0.0])).tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("name", "minimum"),
    [("quadratic", (0, 0)), ("rosenbrock", (1, 1)), ("beale", (3, 0.5)), ("himmelblau", (3, 2))],
)
def test_minimum_has_value_zero_and_zero_gradient(name, minimum):
    surface = SURFACES[name]
    assert surface.minimum == minimum
    assert surface.value(np.array(minimum, dtype=float)) == 0.0
    assert surface.gradient(np.array(minimum, dtype=float)).tolist() == [0.0, 0.0]


def test_saddle_has_no_minimum_but_a_stationary_point_at_the_origin():
    assert SURFACES["saddle"].minimum is None
    assert SURFACES["saddle"].gradient(np.zeros(2)).tolist() == [0.0, 0.0]


def test_surfaces_are_the_five_of_the_api():
    assert set(SURFACES) == {"quadratic", "rosenbrock", "beale", "himmelblau", "saddle"}


# ---------------------------------------------------------------------- trajectories


def trajectories(function="quadratic", start=(1.0, 1.0), steps=3, optimizers=None):
    request = TrajectoryRequest.model_validate(
        {
            "function": function,
            "start": list(start),
            "steps": steps,
            "optimizers": optimizers or [{"type": "sgd", "learning_rate": 0.01}],
        }
    )
    return as_body(run_trajectories(request))


def as_body(result: TrajectoryResult) -> dict:
    """The result in the shape the service answers (what app.schemas maps it to)."""
    return {
        "function": result.function,
        "minimum": None if result.minimum is None else list(result.minimum),
        "trajectories": [
            {
                "optimizer": t.optimizer.model_dump(mode="json"),
                "points": t.points.tolist(),
                "values": t.values.tolist(),
                "diverged_at": t.diverged_at,
            }
            for t in result.trajectories
        ],
    }


def test_result_is_a_dataclass_of_arrays():
    result = run_trajectories(
        TrajectoryRequest.model_validate(
            {"function": "himmelblau", "start": [0, 0], "steps": 4, "optimizers": [{"type": "sgd"}]}
        )
    )
    assert isinstance(result, TrajectoryResult)
    assert result.minimum == (3.0, 2.0) and len(result.minima) == 4
    (trajectory,) = result.trajectories
    assert trajectory.points.shape == (5, 2) and trajectory.values.shape == (5,)
    assert trajectory.points.dtype == trajectory.values.dtype == np.float64


def test_response_has_the_api_shape_and_is_strict_json():
    body = trajectories(
        "rosenbrock",
        start=(-1.5, 2.0),
        steps=50,
        optimizers=[
            {"type": "sgd", "learning_rate": 0.001, "momentum": 0.9},
            {"type": "adagrad", "learning_rate": 0.1},
            {"type": "rmsprop", "learning_rate": 0.01},
            {"type": "adam", "learning_rate": 0.05},
        ],
    )
    assert set(body) == {"function", "minimum", "trajectories"}
    assert body["function"] == "rosenbrock"
    assert body["minimum"] == [1.0, 1.0]
    assert len(body["trajectories"]) == 4
    for trajectory in body["trajectories"]:
        assert set(trajectory) == {"optimizer", "points", "values", "diverged_at"}
        assert trajectory["points"][0] == [-1.5, 2.0]
        assert len(trajectory["points"]) == len(trajectory["values"]) == 51
        assert trajectory["diverged_at"] is None
        for point, value in zip(trajectory["points"], trajectory["values"], strict=True):
            assert value == SURFACES["rosenbrock"].value(np.array(point))
    json.dumps(body, allow_nan=False)


def test_optimizer_is_reported_normalised_with_every_default():
    body = trajectories(optimizers=[{"type": "adam"}])
    assert body["trajectories"][0]["optimizer"] == {
        "type": "adam",
        "learning_rate": 0.001,
        "beta1": 0.9,
        "beta2": 0.999,
        "epsilon": 1e-7,
        "l1": 0.0,
        "l2": 0.0,
        "schedule": {"type": "constant"},
    }


def test_saddle_minimum_is_null():
    assert trajectories("saddle")["minimum"] is None


def test_sgd_on_quadratic_follows_the_hand_formula():
    """∇f = (2x, 20y), so x ← x (1 − 2ε), y ← y (1 − 20ε)."""
    rate = 0.01
    body = trajectories(start=(1.0, 1.0), steps=3)
    points = body["trajectories"][0]["points"]
    expected = [[(1 - 2 * rate) ** k, (1 - 20 * rate) ** k] for k in range(4)]
    assert points == [pytest.approx(p, rel=1e-14) for p in expected]
    values = body["trajectories"][0]["values"]
    assert values == [pytest.approx(x**2 + 10 * y**2, rel=1e-14) for x, y in expected]


def test_sgd_momentum_accumulates_the_velocity():
    """v₁ = g₀, p₁ = p₀ − ε g₀; v₂ = μ v₁ + g₁, p₂ = p₁ − ε v₂."""
    rate, mu = 0.01, 0.9
    body = trajectories(
        start=(1.0, 1.0),
        steps=2,
        optimizers=[{"type": "sgd", "learning_rate": rate, "momentum": mu}],
    )
    p0 = np.array([1.0, 1.0])
    g0 = np.array([2.0, 20.0]) * p0
    p1 = p0 - rate * g0
    p2 = p1 - rate * (mu * g0 + np.array([2.0, 20.0]) * p1)
    assert body["trajectories"][0]["points"][2] == pytest.approx(p2.tolist(), rel=1e-14)


def test_schedule_scales_the_learning_rate_from_step_zero():
    """Step schedule with k = 1, γ = ½: ε₀ on the first step, ε₀/2 on the second."""
    rate = 0.01
    body = trajectories(
        start=(1.0, 1.0),
        steps=2,
        optimizers=[
            {
                "type": "sgd",
                "learning_rate": rate,
                "schedule": {"type": "step", "step_size": 1, "gamma": 0.5},
            }
        ],
    )
    x2 = (1 - 2 * rate) * (1 - 2 * rate / 2)
    assert body["trajectories"][0]["points"][2][0] == pytest.approx(x2, rel=1e-14)


def test_adam_first_step_moves_each_coordinate_by_the_learning_rate():
    """m̂₁ = g, v̂₁ = g², so the first step is ε g / (|g| + δ) ≈ ε sign(g)."""
    body = trajectories(
        start=(1.0, -1.0), steps=1, optimizers=[{"type": "adam", "learning_rate": 0.1}]
    )
    assert body["trajectories"][0]["points"][1] == pytest.approx([0.9, -0.9], rel=1e-6)


def test_huge_learning_rate_diverges_without_emitting_non_finite_numbers():
    body = trajectories(
        start=(1.0, 1.0), steps=1000, optimizers=[{"type": "sgd", "learning_rate": 1e10}]
    )
    trajectory = body["trajectories"][0]
    diverged_at = trajectory["diverged_at"]
    assert isinstance(diverged_at, int) and 1 <= diverged_at < 1000
    assert len(trajectory["points"]) == len(trajectory["values"]) == diverged_at
    assert all(math.isfinite(v) for v in trajectory["values"])
    assert all(math.isfinite(c) for point in trajectory["points"] for c in point)
    json.dumps(body, allow_nan=False)


def test_a_start_whose_value_overflows_diverges_at_step_zero():
    trajectory = trajectories(start=(1e200, 1e200), steps=5)["trajectories"][0]
    assert trajectory == {
        "optimizer": trajectory["optimizer"],
        "points": [],
        "values": [],
        "diverged_at": 0,
    }


def test_l2_changes_the_path_and_is_in_the_values():
    plain, ridge = trajectories(
        start=(1.0, 1.0),
        steps=3,
        optimizers=[
            {"type": "sgd", "learning_rate": 0.01},
            {"type": "sgd", "learning_rate": 0.01, "l2": 1.0},
        ],
    )["trajectories"]
    assert plain["points"][1] != ridge["points"][1]
    # ∇(f + ‖p‖²) = (2x + 2x, 20y + 2y)
    assert ridge["points"][1] == pytest.approx([1 - 0.01 * 4, 1 - 0.01 * 22], rel=1e-14)
    x, y = ridge["points"][2]
    assert ridge["values"][2] == pytest.approx(x**2 + 10 * y**2 + x**2 + y**2, rel=1e-14)


def test_l1_pulls_towards_zero_by_its_sign():
    (trajectory,) = trajectories(
        start=(1.0, -1.0),
        steps=1,
        optimizers=[{"type": "sgd", "learning_rate": 0.01, "l1": 3.0}],
    )["trajectories"]
    # ∇ = (2x + 3 sign x, 20y + 3 sign y) = (5, −23)
    assert trajectory["points"][1] == pytest.approx([1 - 0.05, -1 + 0.23], rel=1e-14)
    assert trajectory["values"][0] == 1 + 10 + 3 * 2


def test_a_growing_schedule_that_overflows_is_reported_as_divergence():
    (trajectory,) = trajectories(
        start=(0.0, 0.0),
        steps=5000,
        optimizers=[
            {
                "type": "sgd",
                "learning_rate": 0.01,
                "schedule": {"type": "exponential", "gamma": 2.0},
            }
        ],
    )["trajectories"]
    # At the minimum the gradient is 0, so only an infinite rate (0 · ∞ = NaN) moves it.
    assert trajectory["diverged_at"] is not None
    assert len(trajectory["points"]) == trajectory["diverged_at"]


# ------------------------------------------------------------ minima and grids


def test_himmelblau_has_four_minima_each_a_zero_with_zero_gradient():
    minima = SURFACES["himmelblau"].minima
    assert len(minima) == 4 and minima[0] == (3.0, 2.0)
    for point in minima:
        assert SURFACES["himmelblau"].value(np.array(point)) == pytest.approx(0.0, abs=1e-20)
        assert SURFACES["himmelblau"].gradient(np.array(point)) == pytest.approx([0, 0], abs=1e-9)


@pytest.mark.parametrize("name", sorted(SURFACES))
def test_every_minimum_lies_inside_the_plotting_window(name):
    surface = SURFACES[name]
    (x_lo, x_hi), (y_lo, y_hi) = surface.window
    assert x_lo < x_hi and y_lo < y_hi
    assert (name == "saddle") == (surface.minima == ())
    for x, y in surface.minima:
        assert x_lo < x < x_hi and y_lo < y < y_hi


@pytest.mark.parametrize("name", sorted(SURFACES))
def test_evaluate_on_a_grid_equals_the_pointwise_values(name):
    (x_lo, x_hi), (y_lo, y_hi) = SURFACES[name].window
    X, Y = np.meshgrid(np.linspace(x_lo, x_hi, 7), np.linspace(y_lo, y_hi, 5))
    Z = evaluate(name, X, Y)
    assert Z.shape == (5, 7) and Z.dtype == np.float64
    for j in range(5):
        for i in range(7):
            assert Z[j, i] == SURFACES[name].value(np.array([X[j, i], Y[j, i]]))


def test_evaluate_overflows_to_inf_without_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isinf(evaluate("rosenbrock", np.array([1e200]), np.array([0.0])))[0]


def test_evaluate_names_an_unknown_function():
    with pytest.raises(KeyError):
        evaluate("booth", np.zeros(1), np.zeros(1))
