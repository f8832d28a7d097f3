"""MLflow's ``/invocations`` in the fast lane (``app.api.fast_lane``), like a run's predict:
matched before the API's routes, no dependency solving on a warm call, and the same
answers as FastAPI's path (auth, 422 for a long name, ``?output=``, MLflow's errors)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fastapi.routing
import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from app.api.fast_lane import FastLane, FastLaneRoute
from app.api.mlflow_serve import InvocationsRoute
from app.api.predict import PredictRoute
from app.db.engine import transaction
from app.db.users import create_user
from tests.api.conftest import API, iris_spec, submit, wait_for
from tests.support import waiting

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
SPLIT = {"dataframe_split": {"columns": FEATURES, "data": ROWS}}
PATH = "/serve/iris/production/invocations"


def register(client: TestClient, **headers: str) -> dict[str, Any]:
    """iris@production from a short run; its predict answer for ``ROWS``."""
    run = client.post(f"{API}/runs", json=iris_spec(epochs=3), headers=headers).json()
    waiting.wait_for(
        lambda: (
            client.get(f"{API}/runs/{run['id']}", headers=headers).json()["status"]
            in {"succeeded", "failed", "cancelled"}
        ),
        timeout=30,
        message="the run never finished",
    )
    assert client.post(f"{API}/models", json={"name": "iris"}, headers=headers).status_code == 201
    versions = f"{API}/models/iris/versions"
    assert client.post(versions, json={"run_id": run["id"]}, headers=headers).status_code == 201
    alias = client.put(
        f"{API}/models/iris/aliases/production", json={"version": 1}, headers=headers
    )
    assert alias.status_code == 200
    answer = client.post(f"{API}/runs/{run['id']}/predict", json={"inputs": ROWS}, headers=headers)
    return {"run": run["id"], **answer.json()}


@pytest.fixture
def served(client: TestClient) -> dict[str, Any]:
    return register(client)


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The paths of the requests FastAPI solved dependencies for, inside the block."""
    seen: list[str] = []
    original = fastapi.routing.solve_dependencies

    async def counting(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["request"].url.path)
        return await original(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    yield seen


def test_warm_invocations_and_predictions_solve_no_dependency(
    client: TestClient, served: dict[str, Any], solved: list[str]
) -> None:
    for _ in range(3):
        response = client.post(PATH, json=SPLIT)
        assert response.json() == {"predictions": served["predictions"]}
    predict = client.post(f"{API}/runs/{served['run']}/predict", json={"inputs": ROWS})
    assert predict.status_code == 200
    assert solved == []
    # FastAPI's own path still answers what the lane leaves to it
    assert client.get("/serve/iris/production/ping").status_code == 200
    assert solved == ["/serve/iris/production/ping"]


def test_the_hot_routes_are_matched_first(idle_client: TestClient) -> None:
    """Their lanes head the app's routes (each included router on the way costs a
    match per candidate); their documented routes come next, before the API's."""
    app_routes = idle_client.app.router.routes  # type: ignore[attr-defined]
    lanes = [i for i, route in enumerate(app_routes) if isinstance(route, FastLane)]
    included = [
        i for i, route in enumerate(app_routes) if type(route).__name__ == "_IncludedRouter"
    ]
    assert [app_routes[i].path for i in lanes] == [
        f"{API}/runs/{{run_id}}/predict",
        "/serve/{name}/{reference}/invocations",
    ]
    assert max(lanes) < included[1], "before every router but predict's own"
    assert isinstance(app_routes[lanes[0]].documented, PredictRoute)
    assert isinstance(app_routes[lanes[1]].documented, InvocationsRoute)
    contexts = iter_route_contexts(app_routes)
    routes = [(c.path or "", c.original_route) for c in contexts]
    hot = [i for i, (_, route) in enumerate(routes) if isinstance(route, FastLaneRoute)]
    api = [
        i
        for i, (path, route) in enumerate(routes)
        if path.startswith(API) and not isinstance(route, FastLane | FastLaneRoute)
    ]
    assert [routes[i][0] for i in hot] == [
        f"{API}/runs/{{run_id}}/predict",
        "/serve/{name}/{reference}/invocations",
    ]
    assert hot[1] < min(api), "the API's routes come after the hot ones"
    paths = idle_client.get("/openapi.json").json()["paths"]
    assert list(paths["/serve/{name}/{reference}/invocations"]) == ["post"]
    assert list(paths[f"{API}/runs/{{run_id}}/predict"]) == ["post"]


@pytest.fixture
def handled(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The paths of the requests a FastAPI route (``APIRoute``) handled in the block."""
    seen: list[str] = []
    original = fastapi.routing.APIRoute.handle

    async def counting(self: fastapi.routing.APIRoute, scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        await original(self, scope, receive, send)

    monkeypatch.setattr(fastapi.routing.APIRoute, "handle", counting)
    yield seen


def test_warm_hot_requests_are_answered_by_their_lanes(
    client: TestClient, served: dict[str, Any], handled: list[str]
) -> None:
    predict = f"{API}/runs/{served['run']}/predict"
    epoch = client.get(f"{API}/runs/{served['run']}/snapshots").json()["epochs"][0]
    handled.clear()
    assert client.post(PATH, json=SPLIT).json() == {"predictions": served["predictions"]}
    answer = client.post(predict, json={"inputs": ROWS})
    assert answer.json() == {"outputs": served["outputs"], "predictions": served["predictions"]}
    assert handled == []
    # what a lane leaves goes on to the documented route: a query to validate, a wrong
    # method (its 405), a long id (its 422)
    assert client.post(f"{predict}?epoch={epoch}", json={"inputs": ROWS}).status_code == 200
    assert client.get(predict).status_code == 405
    assert client.post(f"{API}/runs/{'x' * 201}/predict", json={"inputs": ROWS}).status_code == 422
    assert handled == [predict, predict, f"{API}/runs/{'x' * 201}/predict"]


def test_the_lane_answers_as_fastapis_path(client: TestClient, served: dict[str, Any]) -> None:
    long_name = client.post(f"/serve/{'x' * 65}/production/invocations", json=SPLIT)
    assert long_name.status_code == 422
    assert long_name.json()["detail"][0]["type"] == "string_too_long"
    long_reference = client.post(f"/serve/iris/{'p' * 65}/invocations", json=SPLIT)
    assert long_reference.status_code == 422
    at_the_limit = client.post(f"/serve/{'x' * 64}/production/invocations", json=SPLIT)
    assert at_the_limit.status_code == 404
    assert at_the_limit.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    probabilities = client.post(PATH, json=SPLIT, params={"output": "probabilities"})
    assert probabilities.json() == {"predictions": served["outputs"]}
    other_query = client.post(PATH + "?unused=1", json=SPLIT)
    assert other_query.json() == {"predictions": served["predictions"]}
    repeated = client.post(PATH + "?output=probabilities&output=classes", json=SPLIT)
    assert repeated.status_code == 400 and "'classes'" in repeated.json()["message"]
    empty = client.post(PATH + "?output=", json=SPLIT)
    assert empty.status_code == 400 and empty.json()["error_code"] == "BAD_REQUEST"
    wrong_method = client.get(PATH)
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"


def test_with_auth_the_lane_needs_the_key_and_the_owner(make_client: Any) -> None:
    client = make_client(auth=True)
    with transaction(client.app.state.session_factory) as session:  # type: ignore[attr-defined]
        ann = {"Authorization": f"Bearer {create_user(session=session, name='ann').key}"}
        bob = {"Authorization": f"Bearer {create_user(session=session, name='bob').key}"}
    expected = register(client, **ann)
    assert (
        client.post(PATH, json=SPLIT, headers=ann).json()["predictions"]
        == (expected["predictions"])
    )
    anonymous = client.post(PATH, json=SPLIT)
    assert anonymous.status_code == 401 and "detail" in anonymous.json()
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    wrong_key = client.post(PATH, json=SPLIT, headers={"Authorization": "Bearer nope"})
    assert wrong_key.status_code == 401
    others = client.post(PATH, json=SPLIT, headers=bob)  # ann's model: as if unknown
    assert others.status_code == 404 and others.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_models_serve_takes_the_lane_too(
    client: TestClient, served: dict[str, Any], solved: list[str]
) -> None:
    from app.serve_model import create_serving_app

    settings = client.app.state.settings  # type: ignore[attr-defined]
    app = create_serving_app(settings, "iris", "production")
    routes = [context.original_route for context in iter_route_contexts(app.router.routes)]
    assert any(isinstance(route, InvocationsRoute) for route in routes)
    lanes = [route for route in app.router.routes if isinstance(route, FastLane)]
    assert [lane.path for lane in lanes] == ["/invocations"]
    with TestClient(app) as one:
        assert one.post("/invocations", json=SPLIT).json() == {"predictions": served["predictions"]}
        probabilities = one.post("/invocations?output=probabilities", json=SPLIT)
        assert probabilities.json() == {"predictions": served["outputs"]}
        listed = one.post("/invocations", json=[ROWS])
        assert listed.status_code == 400 and listed.json()["error_code"] == "BAD_REQUEST"
    assert solved == []


def test_a_cold_invocation_loads_the_model(client: TestClient) -> None:
    run = submit(client, iris_spec(epochs=2))
    assert wait_for(client, run["id"])["status"] == "succeeded"
    client.post(f"{API}/models", json={"name": "cold"})
    client.post(f"{API}/models/cold/versions", json={"run_id": run["id"]})
    client.app.state.model_cache.evict(run["id"])  # type: ignore[attr-defined]
    answer = client.post("/serve/cold/1/invocations", json={"inputs": ROWS})
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 2
