"""Fixtures shared by the test suites: database URLs (SQLite file or PostgreSQL schema)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

POSTGRES_URL = os.environ.get(
    "ANNLAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

_postgres_ok: bool | None = None


def postgres_reachable() -> bool:
    global _postgres_ok
    if _postgres_ok is None:
        try:
            import psycopg

            plain = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(plain, connect_timeout=2) as connection:
                connection.execute("SELECT 1")
            _postgres_ok = True
        except Exception:
            _postgres_ok = False
    return _postgres_ok


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections live in a fresh, private schema (dropped afterwards)."""
    if not postgres_reachable():
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}")
    import psycopg

    schema = f"annlab_test_{uuid.uuid4().hex[:12]}"
    plain = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage/API test once on a SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'annlab.db'}"
    return request.getfixturevalue("postgres_url")


# ------------------------------------------------------- two workers (pytest-xdist)
#
# `make test` runs the suite on two pytest-xdist workers, one test file at a time per
# worker, except that these groups run one after another on a single worker: they
# share fixed ports (tests/container), the real broker's queues and Redis database
# (the cluster tests), the container engine, and they measure servers they start.
SERIAL_GROUPS = ("tests/e2e/", "tests/container/", "tests/bench/", "tests/test_compose_cluster.py")
SERIAL_UNIT = "serial groups"


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Files as work units, the serial groups as one unit handed out first (the
    longest: it bounds the run, so it must not start last)."""
    from xdist.scheduler import LoadScopeScheduling

    class FilesWithSerialGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith(SERIAL_GROUPS):
                return SERIAL_UNIT
            return nodeid.split("::", 1)[0]

        def _assign_work_unit(self, node: Any) -> None:
            if SERIAL_UNIT in self.workqueue:
                self.workqueue.move_to_end(SERIAL_UNIT, last=False)
            super()._assign_work_unit(node)

    return FilesWithSerialGroups(config, log)


#: Figures the workers measured (tests/container), printed by the controller.
WORKER_FIGURES: dict[str, str] = {}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    WORKER_FIGURES.update(getattr(node, "workeroutput", {}).get("container_figures", {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if WORKER_FIGURES:
        terminalreporter.section("container figures")
        for key, value in WORKER_FIGURES.items():
            terminalreporter.write_line(f"{key}: {value}")
