"""ANNLAB_RATE_LIMIT: requests per API key to /api/ and /serve/; the next one is a 429
with Retry-After and a {"detail"} body; health checks and pages are never limited."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.config import Settings
from tests.support.waiting import wait_for

from .conftest import API
from .test_auth import As, add_user

#: Per hour, so that no window can pass while a test runs.
RATE = "3/hour"


def assert_limited(response: object, *, who: str = "API key") -> None:
    assert response.status_code == 429, response.text  # type: ignore[attr-defined]
    retry = int(response.headers["Retry-After"])  # type: ignore[attr-defined]
    assert 1 <= retry <= 3600
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"detail"}
    assert "ANNLAB_RATE_LIMIT" in body["detail"] and f"3 per hour per {who}" in body["detail"]
    assert f"retry in {retry} s" in body["detail"]


def test_each_key_gets_its_own_budget_then_a_429_with_retry_after(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(auth=True, executor="none", rate_limit=RATE)
    alice = As(client, add_user(client, "alice"))
    bob = As(client, add_user(client, "bob"))
    for _ in range(3):
        assert alice.get(f"{API}/runs").status_code == 200
    assert_limited(alice.get(f"{API}/runs"))
    assert_limited(alice.post(f"{API}/runs", json={"dataset": "iris"}))  # before the body
    assert bob.get(f"{API}/datasets").status_code == 200  # another key: its own budget


def test_health_checks_metrics_and_pages_are_never_limited(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(executor="none", rate_limit=RATE)
    for _ in range(4):
        client.get(f"{API}/runs")
    assert_limited(client.get(f"{API}/runs"), who="client address")  # no key: by address
    for path in ("/healthz", "/readyz", "/metrics", "/", "/runs/new"):
        for _ in range(4):
            assert client.get(path).status_code == 200, path


def test_with_auth_off_a_made_up_header_buys_no_new_budget(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(executor="none", rate_limit=RATE)
    for n in range(3):
        assert (
            client.get(f"{API}/runs", headers={"Authorization": f"Bearer {n}"}).status_code == 200
        )
    limited = client.get(f"{API}/runs", headers={"Authorization": "Bearer another"})
    assert_limited(limited, who="client address")


def test_mlflow_serving_routes_are_limited_too(make_client: Callable[..., TestClient]) -> None:
    client = make_client(executor="none", rate_limit=RATE)
    codes = [client.get("/serve/nosuch/1/ping").status_code for _ in range(3)]
    assert 429 not in codes
    assert_limited(client.get("/serve/nosuch/1/ping"), who="client address")


def test_without_the_setting_nothing_is_limited(make_client: Callable[..., TestClient]) -> None:
    client = make_client(executor="none")
    assert all(client.get(f"{API}/runs").status_code == 200 for _ in range(20))


@pytest.mark.parametrize("value", ["20/fortnight", "fast", "20"])
def test_a_malformed_rate_is_refused_naming_the_variable(value: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="ANNLAB_RATE_LIMIT"):
        Settings(data_dir=tmp_path, rate_limit=value)


def test_several_rates_each_apply() -> None:
    settings = Settings(rate_limit=" 20/second;600/minute ")
    assert settings.rate_limit == "20/second;600/minute"


# ------------------------------------------------ replicas sharing one budget (redis)


def _free_port() -> int:
    for port in range(19850, 19900):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("no free port in 19850-19899")


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:

        def answers() -> bool:
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        wait_for(answers, timeout=10, message="redis-server listening")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_replicas_pointed_at_one_redis_share_the_budget(
    make_client: Callable[..., TestClient], tmp_path: Path, redis_url: str
) -> None:
    first = make_client(executor="none", rate_limit=RATE, rate_limit_storage=redis_url)
    second = make_client(
        executor="none",
        rate_limit=RATE,
        rate_limit_storage=redis_url,
        data_dir=tmp_path / "other",
    )
    # auth off: counted by address, the TestClient's "testclient" for both
    assert first.get(f"{API}/runs").status_code == 200
    assert second.get(f"{API}/runs").status_code == 200
    assert first.get(f"{API}/runs").status_code == 200
    assert_limited(second.get(f"{API}/runs"), who="client address")
