"""The optimizer walk-through over HTTP: minima, the function catalogue, the work bound."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.surfaces import SURFACES

from .conftest import API


def body(**changes: Any) -> dict[str, Any]:
    return {
        "function": "himmelblau",
        "start": [0.0, 0.0],
        "steps": 10,
        "optimizers": [{"type": "sgd", "learning_rate": 0.01}],
    } | changes


def test_trajectories_answer_every_minimum_beside_minimum(idle_client: TestClient) -> None:
    result = idle_client.post(f"{API}/optimizers/trajectories", json=body()).json()
    assert result["minimum"] == [3.0, 2.0]
    assert len(result["minima"]) == 4 and result["minima"][0] == [3.0, 2.0]
    saddle = idle_client.post(f"{API}/optimizers/trajectories", json=body(function="saddle"))
    assert saddle.json()["minimum"] is None and saddle.json()["minima"] == []


def test_values_are_f_plus_the_penalty(idle_client: TestClient) -> None:
    optimizers = [{"type": "sgd", "learning_rate": 0.01, "l1": 0.5, "l2": 2.0}]
    result = idle_client.post(
        f"{API}/optimizers/trajectories",
        json=body(function="quadratic", start=[1.0, -2.0], optimizers=optimizers),
    ).json()
    (trajectory,) = result["trajectories"]
    for (x, y), value in zip(trajectory["points"], trajectory["values"], strict=True):
        f = x**2 + 10 * y**2
        assert value == pytest.approx(f + 0.5 * (abs(x) + abs(y)) + 2.0 * (x**2 + y**2))


def test_steps_times_optimizers_over_the_setting_is_a_422_naming_it(make_client: Any) -> None:
    client = make_client(executor="none", max_trajectory_work=100)
    fine = client.post(
        f"{API}/optimizers/trajectories",
        json=body(steps=50, optimizers=[{"type": "sgd"}, {"type": "adam"}]),
    )
    assert fine.status_code == 200, fine.text
    over = client.post(
        f"{API}/optimizers/trajectories",
        json=body(steps=34, optimizers=[{"type": "sgd"}, {"type": "adam"}, {"type": "rmsprop"}]),
    )
    assert over.status_code == 422, over.text
    assert "ANNLAB_MAX_TRAJECTORY_WORK" in over.text and "102" in over.text


def test_the_default_work_bound_refuses_the_probes_request(idle_client: TestClient) -> None:
    """Issue 16: 20 optimizers × 95,157 steps spent 13.5 s of CPU inside one request."""
    response = idle_client.post(
        f"{API}/optimizers/trajectories",
        json=body(steps=95_157, optimizers=[{"type": "sgd"}] * 20),
    )
    assert response.status_code == 422 and "ANNLAB_MAX_TRAJECTORY_WORK" in response.text


def test_trajectory_routes_run_off_the_event_loop() -> None:
    """Plain ``def`` endpoints: FastAPI runs them in its thread pool."""
    from app.api.optimizers import router

    endpoints = {route.path: route.endpoint for route in router.routes}  # type: ignore[attr-defined]
    assert set(endpoints) == {"/optimizers/trajectories", "/optimizers/functions"}
    assert not any(asyncio.iscoroutinefunction(endpoint) for endpoint in endpoints.values())


def test_functions_catalogue_gives_formula_minima_and_window(idle_client: TestClient) -> None:
    response = idle_client.get(f"{API}/optimizers/functions")
    assert response.status_code == 200, response.text
    functions = {item["name"]: item for item in response.json()["functions"]}
    assert set(functions) == set(SURFACES)
    assert len(functions["himmelblau"]["minima"]) == 4 and functions["saddle"]["minima"] == []
    for name, item in functions.items():
        assert item["formula"] == SURFACES[name].formula
        (x_lo, x_hi), (y_lo, y_hi) = item["window"]["x"], item["window"]["y"]
        for x, y in item["minima"]:
            assert x_lo < x < x_hi and y_lo < y < y_hi
