"""Fixtures of the terminal client's tests.

- ``server``: one real `annlab serve` (tests/e2e/server.py's helper) for the tests
  of what main serves today; ``api`` a client on it.
- ``mock_api``: an `httpx.MockTransport` that records every request and answers
  canned, API.md-shaped bodies, for the contract tests of endpoints main does not
  serve yet; ``cli_on(mock_api)`` points the `annlab` commands at it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from app import cli_client
from app.cli import cli
from app.client import AnnlabClient
from tests.e2e.server import Server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("annlab-cli")
    data_dir = root / "data"
    data_dir.mkdir()
    server = Server(name="cli", data_dir=data_dir, log_dir=root, env={"ANNLAB_WORKERS": "2"})
    try:
        server.start()
        yield server
    finally:
        if server.running:
            try:
                server.stop()
            finally:
                server.cleanup()
        server.cleanup()


@pytest.fixture
def api(server: Server) -> Iterator[AnnlabClient]:
    assert server.running, f"the server died\n{server.log_tail()}"
    with AnnlabClient(server.base_url) as client:
        yield client


@dataclass
class MockApi:
    """Canned answers by (method, path); every request kept for the assertions."""

    routes: dict[
        tuple[str, str], list[httpx.Response | Callable[[httpx.Request], httpx.Response]]
    ] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def add(self, method: str, path: str, *answers: Any, status: int = 200) -> None:
        """Answer ``method path`` (under /api/v1) with each answer in turn (the last one
        repeats); an answer is a JSON body, bytes, an `httpx.Response` or a function."""
        queue = self.routes.setdefault((method, "/api/v1" + path), [])
        for answer in answers:
            if isinstance(answer, httpx.Response) or callable(answer):
                queue.append(answer)
            elif isinstance(answer, bytes):
                queue.append(httpx.Response(status, content=answer))
            else:
                queue.append(httpx.Response(status, json=answer))

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.routes.get((request.method, request.url.path))
        if not queue:
            return httpx.Response(
                404, json={"detail": f"no canned answer for {request.method} {request.url.path}"}
            )
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return (
            answer(request)
            if callable(answer) and not isinstance(answer, httpx.Response)
            else answer
        )

    def client(self) -> AnnlabClient:
        return AnnlabClient(
            "http://annlab.test", "secret", transport=httpx.MockTransport(self.handle)
        )

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == "/api/v1" + path]


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)


@pytest.fixture
def mock_api() -> MockApi:
    return MockApi()


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """``run_cli(args, api=MockApi|None)``: the `annlab` command in-process (typer's
    CliRunner); with a MockApi, every command talks to it."""

    def invoke(args: list[str], mock: MockApi | None = None, input: str | None = None) -> Any:
        if mock is not None:
            monkeypatch.setattr(cli_client, "make_client", lambda url, key: mock.client())
        return CliRunner().invoke(cli, args, input=input, catch_exceptions=False)

    return invoke


def flat(text: str) -> str:
    """Output without rich's boxes and line breaks (typer draws usage errors in a box
    that wraps long messages), for asserting on a message."""
    import re

    return " ".join(re.sub(r"[│╭╮╰╯─┃━]", " ", text).split())
