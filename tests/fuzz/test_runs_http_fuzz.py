"""Random bodies through POST /api/v1/runs: 202 or a 4xx with a detail, never a 5xx."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

with warnings.catch_warnings():  # starlette asks for httpx2; the httpx client still works
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

from .conftest import build_app
from .strategies import any_spec_like

pytestmark = pytest.mark.timeout(180)

HTTP_FUZZ = settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def http(fuzz_data_dir) -> Iterator[TestClient]:
    data_dir = fuzz_data_dir / "http"
    data_dir.mkdir(exist_ok=True)
    with TestClient(build_app(data_dir), raise_server_exceptions=False) as client:
        yield client


def encode(document: object) -> bytes:
    """JSON as a client would send it; NaN/Infinity as Python's json writes them (not JSON)."""
    return json.dumps(document, allow_nan=True).encode()


def has_non_finite(document: object) -> bool:
    if isinstance(document, float):
        return not math.isfinite(document)
    if isinstance(document, dict):
        return any(has_non_finite(value) for value in document.values())
    if isinstance(document, list):
        return any(has_non_finite(value) for value in document)
    return False


def assert_client_error_or_accepted(response, body: bytes) -> None:
    assert response.status_code < 500, (
        f"POST /api/v1/runs -> {response.status_code} {response.text[:500]}\nbody: {body[:500]!r}"
    )
    if response.status_code >= 400:
        assert "detail" in response.json(), response.text[:300]
    else:
        assert response.status_code == 202, response.text[:300]


@HTTP_FUZZ
@given(document=any_spec_like)
def test_random_run_bodies_never_cause_a_server_error(http: TestClient, document: object) -> None:
    body = encode(document)
    response = http.post("/api/v1/runs", content=body, headers={"content-type": "application/json"})
    assert_client_error_or_accepted(response, body)
    if response.status_code == 202:
        assert not has_non_finite(document), "a spec with NaN/Infinity was accepted"
        http.delete(f"/api/v1/runs/{response.json()['id']}")


@HTTP_FUZZ
@given(
    body=st.binary(max_size=200)
    | st.text(max_size=200).map(str.encode)
    | st.sampled_from(
        [
            b"",
            b"{",
            b"null",
            b"[]",
            b"1e999",
            b'{"dataset": "iris"',
            b"\xff\xfe",
            b'"\\ud800"',
            b"{}" * 3,
        ]
    )
)
def test_malformed_bodies_are_client_errors(http: TestClient, body: bytes) -> None:
    response = http.post("/api/v1/runs", content=body, headers={"content-type": "application/json"})
    assert_client_error_or_accepted(response, body)
    assert response.status_code != 202


@pytest.mark.parametrize("depth", [10, 100, 999, 1001, 5000, 50_000])
def test_deep_nesting_is_a_client_error(http: TestClient, depth: int) -> None:
    for body in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        response = http.post(
            "/api/v1/runs", content=body.encode(), headers={"content-type": "application/json"}
        )
        assert 400 <= response.status_code < 500, (
            f"depth {depth}: {response.status_code} {response.text[:200]}"
        )
