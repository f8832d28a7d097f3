"""ε_t of each schedule (ENGINE.md), numbers worked by hand; t counts steps from 0."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter

from core.schedules import learning_rate
from core.specs import ScheduleSpec

_SCHEDULE = TypeAdapter(ScheduleSpec)


def rates(body: dict, steps: int, base: float = 0.1) -> list[float]:
    schedule = _SCHEDULE.validate_python(body)
    return [learning_rate(schedule, base, t) for t in range(steps)]


def test_constant_is_the_base_rate_at_every_step():
    assert rates({"type": "constant"}, 3) == [0.1, 0.1, 0.1]


def test_inverse_time_divides_by_one_plus_kappa_t():
    # 0.1 / 1, 0.1 / 1.5, 0.1 / 2
    assert rates({"type": "inverse_time", "decay": 0.5}, 3) == [0.1, 0.1 / 1.5, 0.1 / 2.0]
    assert rates({"type": "inverse_time", "decay": 0.5}, 3)[2] == pytest.approx(0.05)


def test_step_multiplies_by_gamma_every_k_steps():
    assert rates({"type": "step", "step_size": 2, "gamma": 0.5}, 5) == pytest.approx(
        [0.1, 0.1, 0.05, 0.05, 0.025]
    )


def test_exponential_multiplies_by_gamma_every_step():
    assert rates({"type": "exponential", "gamma": 0.9}, 3) == pytest.approx([0.1, 0.09, 0.081])


def test_first_step_always_uses_the_base_rate():
    for body in (
        {"type": "inverse_time", "decay": 3.0},
        {"type": "step", "step_size": 1, "gamma": 0.1},
        {"type": "exponential", "gamma": 0.1},
    ):
        assert rates(body, 1) == [0.1]


def test_a_growing_rate_that_overflows_becomes_infinite_instead_of_raising():
    assert rates({"type": "exponential", "gamma": 10.0}, 400)[-1] == float("inf")
