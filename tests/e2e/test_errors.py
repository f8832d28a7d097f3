"""Error statuses over a socket: 404, 409, 413, and Idempotency-Key semantics."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from .server import API, iris_spec, long_spec, submit, wait_epoch, wait_status

pytestmark = pytest.mark.timeout(120)

UNKNOWN = "no-such-id-0000"

ID_ROUTES = [
    ("GET", f"{API}/runs/{UNKNOWN}", None),
    ("GET", f"{API}/runs/{UNKNOWN}/metrics", None),
    ("GET", f"{API}/runs/{UNKNOWN}/events", None),
    ("GET", f"{API}/runs/{UNKNOWN}/weights", None),
    ("GET", f"{API}/runs/{UNKNOWN}/weights?format=npz", None),
    ("POST", f"{API}/runs/{UNKNOWN}/cancel", None),
    ("POST", f"{API}/runs/{UNKNOWN}/predict", {"inputs": [[1.0, 2.0, 3.0, 4.0]]}),
    ("DELETE", f"{API}/runs/{UNKNOWN}", None),
    ("GET", f"{API}/datasets/{UNKNOWN}", None),
    ("DELETE", f"{API}/datasets/{UNKNOWN}", None),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), ID_ROUTES, ids=[f"{m} {p}" for m, p, _ in ID_ROUTES]
)
def test_unknown_id_is_404_on_every_id_route(
    client: httpx.Client, method: str, path: str, body: dict | None
) -> None:
    response = client.request(method, path, json=body)
    assert response.status_code == 404, f"{method} {path} -> {response.status_code} {response.text}"
    assert "detail" in response.json()


def test_a_spec_naming_an_unknown_dataset_is_rejected_not_queued(client: httpx.Client) -> None:
    spec = iris_spec() | {"dataset": UNKNOWN}
    response = client.post(f"{API}/runs", json=spec)
    assert response.status_code in (404, 422), response.text


@pytest.mark.parametrize(
    "query", ["offset=9223372036854775808", "offset=99999999999999999999", "limit=0"]
)
def test_out_of_range_paging_is_422_not_500(client: httpx.Client, query: str) -> None:
    response = client.get(f"{API}/runs?{query}")
    assert response.status_code == 422, (
        f"GET /runs?{query} -> {response.status_code} {response.text[:200]}"
    )


# ------------------------------------------------------------------------ 409


@pytest.fixture
def running_run(client: httpx.Client) -> Iterator[dict]:
    run = submit(client, long_spec(epochs=100_000, name="e2e 409"))
    yield run
    client.post(f"{API}/runs/{run['id']}/cancel")
    wait_status(client, run["id"], timeout=10)


def test_weights_and_predict_are_409_before_success(
    client: httpx.Client, running_run: dict
) -> None:
    run_id = running_run["id"]
    for current in ("queued or running", "running"):
        if current == "running":
            wait_epoch(client, run_id, 1)
        weights = client.get(f"{API}/runs/{run_id}/weights")
        npz = client.get(f"{API}/runs/{run_id}/weights", params={"format": "npz"})
        predict = client.post(
            f"{API}/runs/{run_id}/predict", json={"inputs": [[5.1, 3.5, 1.4, 0.2]]}
        )
        assert (weights.status_code, npz.status_code, predict.status_code) == (409, 409, 409), (
            f"while {current}: weights {weights.status_code} {weights.text[:200]}, npz {npz.status_code}, "
            f"predict {predict.status_code} {predict.text[:200]}"
        )


def test_weights_and_predict_are_409_after_cancel(client: httpx.Client, running_run: dict) -> None:
    run_id = running_run["id"]
    wait_epoch(client, run_id, 1)
    assert client.post(f"{API}/runs/{run_id}/cancel").status_code == 202
    assert wait_status(client, run_id, timeout=5)["status"] == "cancelled"
    assert client.get(f"{API}/runs/{run_id}/weights").status_code == 409
    assert (
        client.post(
            f"{API}/runs/{run_id}/predict", json={"inputs": [[5.1, 3.5, 1.4, 0.2]]}
        ).status_code
        == 409
    )


def test_cancelling_a_finished_run_is_409(client: httpx.Client) -> None:
    run = submit(client, iris_spec(epochs=2))
    assert wait_status(client, run["id"])["status"] == "succeeded"
    response = client.post(f"{API}/runs/{run['id']}/cancel")
    assert response.status_code == 409, response.text
    assert get_status(client, run["id"]) == "succeeded"


def get_status(client: httpx.Client, run_id: str) -> str:
    return client.get(f"{API}/runs/{run_id}").json()["status"]


# ------------------------------------------------------------------------ 413

LIMIT = 65536  # ANNLAB_MAX_BODY_BYTES of the shared server (conftest.SHARED_ENV)


def oversized_body() -> bytes:
    """Valid JSON, 4x the limit: only its size is wrong."""
    padding = "x" * (4 * LIMIT)
    return ('{"inputs": [[1.0, 2.0, 3.0, 4.0]], "pad": "' + padding + '"}').encode()


def chunks(body: bytes, size: int = 8192) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize("path", [f"{API}/runs", f"{API}/datasets"])
def test_oversized_body_with_content_length_is_413(client: httpx.Client, path: str) -> None:
    body = oversized_body()
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.request.headers["content-length"] == str(len(body))
    assert response.status_code == 413, (
        f"POST {path} ({len(body)} bytes) -> {response.status_code} {response.text[:300]}"
    )


@pytest.mark.parametrize("path", [f"{API}/runs", f"{API}/datasets"])
def test_oversized_chunked_body_is_413(client: httpx.Client, path: str) -> None:
    body = oversized_body()
    response = client.post(path, content=chunks(body), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 413, (
        f"chunked POST {path} -> {response.status_code} {response.text[:300]}"
    )


def test_a_body_under_the_limit_is_read(client: httpx.Client) -> None:
    spec = iris_spec(epochs=1) | {"name": "n" * 150}
    response = client.post(f"{API}/runs", json=spec)
    assert response.status_code == 202, response.text
    wait_status(client, response.json()["id"])


def test_deeply_nested_json_is_a_client_error(client: httpx.Client) -> None:
    body = "[" * 5000 + "]" * 5000
    response = client.post(
        f"{API}/runs", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 413, 422), f"{response.status_code} {response.text[:300]}"


# -------------------------------------------------------------- idempotency


def test_the_same_idempotency_key_twice_makes_one_run(client: httpx.Client) -> None:
    key = f"e2e-{uuid.uuid4()}"
    spec = iris_spec(epochs=2) | {"name": f"idempotent {key}"}
    first = client.post(f"{API}/runs", json=spec, headers={"Idempotency-Key": key})
    second = client.post(f"{API}/runs", json=spec, headers={"Idempotency-Key": key})
    assert first.status_code == 202, first.text
    assert second.status_code in (200, 201, 202), second.text
    assert second.json()["id"] == first.json()["id"]
    listing = client.get(f"{API}/runs", params={"limit": 100}).json()["items"]
    assert [run["spec"]["name"] for run in listing].count(spec["name"]) == 1
    wait_status(client, first.json()["id"])


def test_the_same_idempotency_key_with_another_body_is_422(client: httpx.Client) -> None:
    key = f"e2e-{uuid.uuid4()}"
    first = client.post(f"{API}/runs", json=iris_spec(epochs=2), headers={"Idempotency-Key": key})
    assert first.status_code == 202, first.text
    other = client.post(f"{API}/runs", json=iris_spec(epochs=3), headers={"Idempotency-Key": key})
    assert other.status_code == 422, other.text
    wait_status(client, first.json()["id"])


def test_an_idempotency_key_over_255_characters_is_rejected(client: httpx.Client) -> None:
    response = client.post(
        f"{API}/runs", json=iris_spec(epochs=1), headers={"Idempotency-Key": "k" * 256}
    )
    assert 400 <= response.status_code < 500, response.text
