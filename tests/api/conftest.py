"""Apps built by ``create_app(settings)`` on a temporary data dir, and HTTP helpers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.support import waiting
from tests.support.specs import iris_spec, long_spec

__all__ = ["iris_spec", "long_spec"]

API = "/api/v1"
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "executor": "thread",
        "workers": 1,
        "checkpoint_seconds": 0.2,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """``make_client(**settings)`` → a started TestClient; all are closed at the end."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        overrides.setdefault("data_dir", tmp_path / "data")
        client = TestClient(create_app(make_settings(**overrides)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in reversed(clients):
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    """An app with one worker thread on SQLite."""
    return make_client()


@pytest.fixture
def idle_client(make_client: Callable[..., TestClient], tmp_path: Path) -> TestClient:
    """An app without workers and with its own database: submitted runs stay queued
    (with ``client``'s data dir, ``client``'s worker would train them)."""
    return make_client(executor="none", data_dir=tmp_path / "idle-data")


# --------------------------------------------------------------------- helpers


def submit(client: TestClient, spec: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = client.post(f"{API}/runs", json=spec, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()


def get_run(client: TestClient, run_id: str) -> dict[str, Any]:
    response = client.get(f"{API}/runs/{run_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(
    client: TestClient,
    run_id: str,
    predicate: Callable[[dict[str, Any]], bool] = lambda run: run["status"] in TERMINAL,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """The run once ``predicate`` holds for it (default: finished)."""
    seen: dict[str, Any] = {}

    def look() -> dict[str, Any] | None:
        seen.update(get_run(client, run_id))
        return dict(seen) if predicate(seen) else None

    return waiting.wait_for(
        look,
        timeout=timeout,
        message=f"run {run_id}",
        describe=lambda: json.dumps(seen)[:1000],
    )


def sse_events(client: TestClient, path: str) -> list[tuple[str, Any]]:
    events: list[tuple[str, Any]] = []
    with client.stream("GET", path) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        kind, data = "message", []
        for line in response.iter_lines():
            if line == "":
                if data:
                    events.append((kind, json.loads("\n".join(data))))
                kind, data = "message", []
            elif line.startswith(":"):
                continue
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "event":
                    kind = value
                elif name == "data":
                    data.append(value)
    return events
