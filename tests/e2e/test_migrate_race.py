"""Server and workers started at once on a fresh PostgreSQL database migrate it once,
taking turns, instead of racing to create the same tables."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine

from app.db.migrate import is_at_head, upgrade_to_head

pytestmark = pytest.mark.postgres


def test_concurrent_upgrades_of_a_fresh_database_all_succeed(postgres_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def migrate() -> None:
        engine = create_engine(postgres_url)
        try:
            barrier.wait()
            upgrade_to_head(engine)
        except BaseException as error:
            errors.append(error)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=migrate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    engine = create_engine(postgres_url)
    try:
        assert is_at_head(engine)
    finally:
        engine.dispose()
