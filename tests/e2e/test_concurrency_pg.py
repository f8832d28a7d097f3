"""The 200-request mixed burst of ``test_concurrency`` against PostgreSQL.

Each test gets its own database ``annlab_e2e_<random>`` on the server given by
``ANNLAB_TEST_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``),
dropped afterwards; skipped only when PostgreSQL cannot be reached.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from .server import Server
from .test_concurrency import mixed_burst

BASE_URL = os.environ.get(
    "ANNLAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def pg_database_url() -> Iterator[str]:
    base = make_url(BASE_URL)
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"annlab_e2e_{secrets.token_hex(6)}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # unreachable, or no right to create databases
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {base.render_as_string()}: {exc}")
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_200_mixed_concurrent_requests_on_postgresql(make_server, pg_database_url: str) -> None:
    server: Server = make_server(
        "mixed-pg", ANNLAB_WORKERS="2", ANNLAB_DATABASE_URL=pg_database_url
    ).start()
    with server.client() as client:
        mixed_burst(server, client)
    server.stop()
