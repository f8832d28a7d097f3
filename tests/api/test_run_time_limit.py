"""ANNLAB_MAX_RUN_SECONDS counts a run's whole training (issue 16): every slice,
pause and resume adds to ``runs.trained_seconds``, and the limit bounds the sum,
not one worker's stretch. A run trained in slices far shorter than the limit
still ends at it, ``succeeded``/``interrupted`` with its model and an ``error``
naming the variable, as a run trained in one go does. The worker is a thread the
test owns (the Celery case, with real processes: tests/e2e/test_cluster.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.db.engine import transaction
from app.db.tables import RunRow
from app.jobs.worker import WorkerConfig
from tests.support.specs import long_spec
from tests.support.workers import worker_thread

from .conftest import API
from .test_slicing import add_user, run_of, until

SLICE = 0.2
LIMIT = 1.0

Start = Callable[[WorkerConfig], threading.Event]


@pytest.fixture
def drive(make_client: Any) -> Iterator[tuple[TestClient, Start]]:
    """An app without executor; ``start(config)`` runs one worker thread with it."""
    client = make_client(auth=True, executor="none")
    with ExitStack() as workers:

        def start(config: WorkerConfig) -> threading.Event:
            factory = client.app.state.session_factory  # type: ignore[attr-defined]
            return workers.enter_context(worker_thread(factory, config))

        yield client, start


def stored_trained_seconds(client: TestClient, run_id: str) -> float:
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    with factory() as session:
        row = session.get(RunRow, run_id)
        assert row is not None
        return float(row.trained_seconds)


def assert_ended_by_the_limit(
    client: TestClient, run_id: str, headers: dict[str, str], limit: float
) -> dict[str, Any]:
    done = until(client, run_id, headers, "succeeded", "failed", "cancelled")
    assert (done["status"], done["stop_reason"]) == ("succeeded", "interrupted"), done
    assert f"ANNLAB_MAX_RUN_SECONDS={limit:g}" in done["error"], done["error"]
    weights = client.get(f"{API}/runs/{run_id}/weights", headers=headers)
    assert weights.status_code == 200, weights.text
    return done


def test_a_run_trained_in_slices_ends_at_the_limit_with_its_model(
    drive: tuple[TestClient, Start], caplog: pytest.LogCaptureFixture
) -> None:
    client, start = drive
    alice = add_user(client, "alice")
    # Every slice ends (as under Celery) after SLICE s, five times shorter than the limit:
    # measured per slice, the run would train its 100,000 epochs.
    wake = start(
        WorkerConfig(
            worker_id="sliced",
            checkpoint_seconds=10.0,
            max_run_seconds=LIMIT,
            slice_seconds=SLICE,
            slice_always=True,
        )
    )
    caplog.set_level("INFO", logger="annlab.worker")
    run_id = client.post(f"{API}/runs", json=long_spec(), headers=alice).json()["id"]
    wake.set()
    assert_ended_by_the_limit(client, run_id, alice, LIMIT)
    pauses = [r for r in caplog.records if f"run {run_id} paused after its slice" in r.message]
    assert len(pauses) >= 2, "the run was trained in several slices"
    # The sum of the slices is what ended it (a logical consequence, not a timing).
    assert stored_trained_seconds(client, run_id) > LIMIT


def test_a_resumed_run_counts_what_it_trained_before(drive: tuple[TestClient, Start]) -> None:
    """What earlier workers trained (a worker that died, a pause for shutdown) is in the
    row: a run that had already trained its limit ends as soon as a worker resumes it."""
    client, start = drive
    alice = add_user(client, "alice")
    run_id = client.post(f"{API}/runs", json=long_spec(), headers=alice).json()["id"]
    with transaction(client.app.state.session_factory) as session:  # type: ignore[attr-defined]
        session.execute(update(RunRow).where(RunRow.id == run_id).values(trained_seconds=3600.0))
    wake = start(WorkerConfig(worker_id="resumer", checkpoint_seconds=10.0, max_run_seconds=3600.0))
    wake.set()
    done = assert_ended_by_the_limit(client, run_id, alice, 3600.0)
    assert done["progress"]["epoch"] < 100_000


def test_without_a_limit_the_trained_seconds_still_add_up(
    drive: tuple[TestClient, Start],
) -> None:
    """The column is kept whatever the limit: each slice adds to it, a finished run keeps it."""
    client, start = drive
    alice = add_user(client, "alice")
    wake = start(
        WorkerConfig(
            worker_id="free",
            checkpoint_seconds=10.0,
            max_run_seconds=0,
            slice_seconds=SLICE,
            slice_always=True,
        )
    )
    run_id = client.post(f"{API}/runs", json=long_spec(60), headers=alice).json()["id"]
    wake.set()
    done = until(client, run_id, alice, "succeeded", "failed")
    assert (done["status"], done["error"]) == ("succeeded", None), done
    assert stored_trained_seconds(client, run_id) > 0
    assert run_of(client, run_id, alice)["progress"]["epoch"] == 60
