"""Fixtures that start real `annlab serve` processes.

- ``server``: one shared server for the whole e2e session (tests that only need
  *a* server: lifecycle, errors, idempotency, concurrency).
- ``make_server``: a fresh server on its own temporary data directory, for tests
  that stop, kill or restart it.

Every server a test touched has its log attached to that test's report when it
fails ("annlab server ... log" section).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from .server import Server

#: Settings of the shared server: a small body limit for the 413 tests, two workers.
SHARED_ENV = {
    "ANNLAB_WORKERS": "2",
    "ANNLAB_MAX_BODY_BYTES": "65536",
}

_SERVERS = pytest.StashKey[list[Server]]()


def _attach(request: pytest.FixtureRequest, server: Server) -> None:
    request.node.stash.setdefault(_SERVERS, []).append(server)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    if report.failed or (report.when == "call" and hasattr(report, "wasxfail")):
        for server in item.stash.get(_SERVERS, []):
            report.sections.append(
                (f"annlab server {server.name} log (tail)", server.log_tail(300))
            )
    return report


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("annlab-shared")
    data_dir = root / "data"
    data_dir.mkdir()
    server = Server(name="shared", data_dir=data_dir, log_dir=root, env=dict(SHARED_ENV))
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
def server(request: pytest.FixtureRequest, shared_server: Server) -> Server:
    assert shared_server.running, f"the shared server died\n{shared_server.log_tail()}"
    _attach(request, shared_server)
    return shared_server


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


@pytest.fixture
def make_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """``make_server(name, **env)`` → a not-yet-started Server on a fresh data dir."""
    created: list[Server] = []

    def make(name: str = "server", **env: str) -> Server:
        data_dir = tmp_path / f"{name}-data"
        data_dir.mkdir()
        server = Server(name=name, data_dir=data_dir, log_dir=tmp_path, env=dict(env))
        created.append(server)
        _attach(request, server)
        return server

    yield make
    for server in created:
        server.cleanup()
