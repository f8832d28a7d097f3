"""The predict route's fast path: no database on a warm call, orjson + NumPy checks
that answer as the schema would, and an event loop that never waits for a model."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from app.db.engine import transaction
from app.db.users import create_user
from app.services.serving import ModelKey
from tests.support import waiting

from .conftest import API, TERMINAL, iris_spec, submit, wait_for

JSON = {"content-type": "application/json"}
ROW = [5.1, 3.5, 1.4, 0.2]


@contextmanager
def statements(client: TestClient) -> Iterator[list[str]]:
    """The SQL the app's engine runs inside the block."""
    seen: list[str] = []
    engine = client.app.state.engine  # type: ignore[attr-defined]

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def trained(client: TestClient, **headers: str) -> str:
    run = submit(client, iris_spec(epochs=2), **headers)
    assert wait_for(client, run["id"])["status"] == "succeeded"
    return run["id"]


def test_a_warm_prediction_runs_no_query(client: TestClient) -> None:
    path = f"{API}/runs/{trained(client)}/predict"
    with statements(client) as cold:
        first = client.post(path, json={"inputs": [ROW]})
    assert first.status_code == 200, first.text
    assert cold, "the first prediction loads the model from the database"
    with statements(client) as warm:
        for _ in range(3):
            again = client.post(path, json={"inputs": [ROW]})
            assert again.json() == first.json()
    assert warm == []


def test_with_auth_a_warm_prediction_only_looks_up_the_key(make_client: Any) -> None:
    client = make_client(auth=True)
    with transaction(client.app.state.session_factory) as session:  # type: ignore[attr-defined]
        key = create_user(session=session, name="alice").key
    headers = {"Authorization": f"Bearer {key}"}
    run = client.post(f"{API}/runs", json=iris_spec(epochs=2), headers=headers).json()
    path = f"{API}/runs/{run['id']}/predict"
    waiting.wait_for(
        lambda: client.get(f"{API}/runs/{run['id']}", headers=headers).json()["status"] in TERMINAL,
        timeout=30,
        message="the run never finished",
    )
    assert client.get(f"{API}/runs/{run['id']}", headers=headers).json()["status"] == "succeeded"
    assert client.post(path, json={"inputs": [ROW]}, headers=headers).status_code == 200
    with statements(client) as warm:
        assert client.post(path, json={"inputs": [ROW]}, headers=headers).status_code == 200
    selects = [s for s in warm if s.lstrip().upper().startswith("SELECT")]
    assert selects and all("users" in s and "runs" not in s for s in selects), warm


@pytest.fixture(params=["default", "raised"])
def recursion_limit(request: pytest.FixtureRequest) -> Iterator[int]:
    """Python's recursion limit as it starts, or raised as some libraries (Hypothesis)
    leave it: Python's JSON parser then reads nesting it refuses by default."""
    before = sys.getrecursionlimit()
    if request.param == "raised":
        sys.setrecursionlimit(20_000)
    try:
        yield sys.getrecursionlimit()
    finally:
        sys.setrecursionlimit(before)


@pytest.mark.parametrize("depth", [1100, 3000])
def test_nesting_past_orjsons_limit_is_400_even_when_the_guard_allows_it(
    make_client: Any, depth: int, recursion_limit: int
) -> None:
    client = make_client(max_json_depth=10_000)
    path = f"{API}/runs/{trained(client)}/predict"
    for body in ("[" * depth + "]" * depth, '{"inputs": ' + "[" * depth + "]" * depth + "}"):
        response = client.post(path, content=body, headers=JSON)
        assert response.status_code == 400, response.text
        assert "nested" in response.text


def test_a_deep_invalid_body_elsewhere_is_a_422_with_a_short_excerpt(make_client: Any) -> None:
    """A deep body Python's parser reads (the guard allows it, the recursion limit is
    raised) is echoed back cut to a few levels: orjson cannot write 1,100 levels."""
    client = make_client(max_json_depth=10_000)
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)
    try:
        body = '{"dataset": "iris", "model": ' + "[" * 1100 + "]" * 1100 + "}"
        response = client.post(f"{API}/runs", content=body, headers=JSON)
    finally:
        sys.setrecursionlimit(before)
    assert response.status_code == 422, response.text
    assert "… nested deeper" in response.text
    assert len(response.content) < 4000


def test_the_fast_path_accepts_what_the_schema_accepts(client: TestClient) -> None:
    path = f"{API}/runs/{trained(client)}/predict"
    expected = client.post(path, json={"inputs": [[5.0, 3.0, 1.0, 0.0]]}).json()
    for inputs in (
        [[5, 3, 1, 0]],  # integers
        [[5, 3, 1, 2**64 - 1]],  # past int64
    ):
        response = client.post(path, json={"inputs": inputs})
        assert response.status_code == 200, (inputs, response.text)
        if inputs[0][3] == 0:
            assert response.json() == expected, inputs


@pytest.mark.parametrize(
    "inputs",
    [
        [[5, 3.0, 1, False]],  # booleans are not numbers (as in uploads and specs)
        [[True, 3.0, 1, 0]],
        [["5", "3.0", 1, 0]],  # nor are numeric strings
        [[5, 3.0, 1, "1.5"]],
    ],
)
def test_booleans_and_numeric_strings_are_not_numbers(client: TestClient, inputs: Any) -> None:
    path = f"{API}/runs/{trained(client)}/predict"
    response = client.post(path, json={"inputs": inputs})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][:2] == ["body", "inputs"]


def test_rejections_keep_fastapis_shapes(client: TestClient) -> None:
    path = f"{API}/runs/{trained(client)}/predict"
    malformed = client.post(path, content=b'{"inputs": [[1, ', headers=JSON)
    assert malformed.status_code == 400
    assert malformed.json()["detail"][0]["type"] == "json_invalid"
    nan = client.post(path, content=b'{"inputs": [[1, 2, NaN, 4]]}', headers=JSON)
    assert nan.status_code == 422
    assert nan.json()["detail"][0]["loc"] == ["body", "inputs", 0, 2]
    assert nan.json()["detail"][0]["type"] == "finite_number"
    for body, loc in (
        (b'{"inputs": [[1, 2, 3, 4]], "extra": 1}', ["body", "extra"]),
        (b'{"inputs": [[1, 2, null, 4]]}', ["body", "inputs", 0, 2]),
        (b'{"inputs": [[1, 2, [3], 4]]}', ["body", "inputs", 0, 2]),
        (b'{"inputs": [1, 2, 3, 4]}', ["body", "inputs"]),  # a flat row: one message
        (b'{"inputs": "1, 2, 3, 4"}', ["body", "inputs"]),
        (b"[[1, 2, 3, 4]]", ["body"]),
        (b'{"inputs": []}', ["body", "inputs"]),
        (b"", ["body"]),
    ):
        response = client.post(path, content=body, headers=JSON)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"][0]["loc"] == loc, (body, response.text)
    text = client.post(path, content=b"inputs=1", headers={"content-type": "text/plain"})
    assert text.status_code == 422
    ragged = client.post(path, json={"inputs": [ROW, ROW[:2]]})
    assert ragged.status_code == 422 and "got rows of [2, 4]" in ragged.json()["detail"]


def test_many_rows_are_predicted_in_the_thread_pool_alike(client: TestClient) -> None:
    path = f"{API}/runs/{trained(client)}/predict"
    rows = (np.random.default_rng(0).normal(size=(2500, 4)) + 4).tolist()
    many = client.post(path, json={"inputs": rows})
    assert many.status_code == 200
    one_by_one = [client.post(path, json={"inputs": [row]}).json() for row in rows[:5]]
    assert [r["predictions"][0] for r in one_by_one] == many.json()["predictions"][:5]
    np.testing.assert_allclose(
        [r["outputs"][0] for r in one_by_one], many.json()["outputs"][:5], rtol=1e-12
    )


def test_a_busy_model_never_blocks_the_event_loop(client: TestClient) -> None:
    run_id = trained(client)
    path = f"{API}/runs/{run_id}/predict"
    assert client.post(path, json={"inputs": [ROW]}).status_code == 200
    model = client.app.state.model_cache.get(ModelKey(run_id)).model  # type: ignore[attr-defined]
    assert model.try_predict(np.array([ROW])) is not None
    results: list[int] = []
    with model._lock:  # another prediction holds the model
        assert model.try_predict(np.array([ROW])) is None
        waiting = threading.Thread(
            target=lambda: results.append(client.post(path, json={"inputs": [ROW]}).status_code)
        )
        waiting.start()
        waiting.join(timeout=0.3)
        assert waiting.is_alive(), "the prediction waits for the model (in a thread)"
        assert client.get("/healthz").status_code == 200, "while the event loop answers others"
    waiting.join(timeout=10)
    assert results == [200]


def test_the_fast_lane_leaves_long_ids_and_other_methods_to_the_documented_route(
    idle_client: TestClient,
) -> None:
    from fastapi.routing import iter_route_contexts

    from app.api.fast_lane import FastLane
    from app.api.predict import PredictRoute

    api_routes = [
        context
        for context in iter_route_contexts(idle_client.app.router.routes)  # type: ignore[attr-defined]
        if (context.path or "").startswith(API)
    ]
    lane = api_routes[0].original_route
    assert isinstance(lane, FastLane), "the first API route"
    assert isinstance(lane.documented, PredictRoute)
    long_id = idle_client.post(f"{API}/runs/{'x' * 201}/predict", json={"inputs": [ROW]})
    assert long_id.status_code == 422
    assert long_id.json()["detail"][0]["type"] == "string_too_long"
    assert (
        idle_client.post(f"{API}/runs/{'x' * 200}/predict", json={"inputs": [ROW]}).status_code
        == 404
    )
    wrong = idle_client.get(f"{API}/runs/nope/predict")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    paths = idle_client.get("/openapi.json").json()["paths"]
    assert list(paths[f"{API}/runs/{{run_id}}/predict"]) == ["post"]
