"""Fair sharing (issue 16): a run that trained for ANNLAB_SLICE_SECONDS while another
user's run waits is paused with its exact checkpoint and requeued behind it; and a
locked database does not fail a run. The worker is driven by the test (its own
thread, its own config), not by the app's executor."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from app.db import progress, retry
from app.db.engine import transaction
from app.db.users import create_user
from app.jobs.worker import WorkerConfig
from tests.support.specs import iris_spec, long_spec
from tests.support.waiting import wait_for
from tests.support.workers import worker_thread

from .conftest import API

SLICE = 0.3


def add_user(client: TestClient, name: str) -> dict[str, str]:
    with transaction(client.app.state.session_factory) as session:  # type: ignore[attr-defined]
        return {"Authorization": f"Bearer {create_user(session=session, name=name).key}"}


def run_of(client: TestClient, run_id: str, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get(f"{API}/runs/{run_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def until(client: TestClient, run_id: str, headers: dict[str, str], *statuses: str) -> Any:
    def look() -> dict[str, Any] | None:
        run = run_of(client, run_id, headers)
        return run if run["status"] in statuses else None

    return wait_for(look, timeout=60, message=f"run {run_id} never {statuses}")


@pytest.fixture
def driven(make_client: Any) -> Iterator[tuple[TestClient, threading.Event]]:
    """An app without executor, and one worker thread (slice SLICE s) the test owns."""
    client = make_client(auth=True, executor="none")
    config = WorkerConfig(
        worker_id="test-worker", checkpoint_seconds=10.0, max_run_seconds=0, slice_seconds=SLICE
    )
    with worker_thread(client.app.state.session_factory, config) as wake:  # type: ignore[attr-defined]
        yield client, wake


def test_a_giant_run_yields_to_another_users_run_and_ends_bit_for_bit(
    driven: tuple[TestClient, threading.Event],
) -> None:
    client, wake = driven
    alice, bob = add_user(client, "alice"), add_user(client, "bob")
    giant_spec = long_spec(epochs=300, seed=3)
    giant = client.post(f"{API}/runs", json=giant_spec, headers=alice).json()["id"]
    wake.set()
    until(client, giant, alice, "running")
    submitted = time.monotonic()
    small = client.post(f"{API}/runs", json=iris_spec(epochs=5), headers=bob).json()["id"]
    wake.set()
    done = until(client, small, bob, "succeeded", "failed")
    waited = time.monotonic() - submitted
    assert done["status"] == "succeeded", done
    paused = run_of(client, giant, alice)
    assert paused["status"] in ("queued", "running"), paused  # paused and requeued, not done
    assert paused["progress"]["epoch"] < 300
    print(f"bob's run waited {waited:.2f} s behind a giant run (slice {SLICE} s)")
    # The giant run resumes from its checkpoint and ends with the bits of a run never paused.
    until(client, giant, alice, "succeeded")
    again = client.post(f"{API}/runs", json=giant_spec, headers=alice).json()["id"]
    wake.set()
    until(client, again, alice, "succeeded")
    sliced = client.get(f"{API}/runs/{giant}/weights", headers=alice).json()
    whole = client.get(f"{API}/runs/{again}/weights", headers=alice).json()
    assert sliced["layers"] == whole["layers"]


def test_a_run_alone_is_never_sliced(driven: tuple[TestClient, threading.Event]) -> None:
    client, wake = driven
    alice = add_user(client, "alice")
    first = client.post(f"{API}/runs", json=long_spec(epochs=120), headers=alice).json()["id"]
    second = client.post(f"{API}/runs", json=iris_spec(epochs=5), headers=alice).json()["id"]
    wake.set()
    until(client, first, alice, "succeeded")
    # the same user's queued run does not take the worker from their first one
    assert run_of(client, second, alice)["status"] in ("queued", "running", "succeeded")
    until(client, second, alice, "succeeded")


def test_retry_locked_waits_out_a_locked_database() -> None:
    calls: list[int] = []
    pauses: list[float] = []

    def write() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("UPDATE runs", {}, Exception("database is locked"))
        return "ok"

    assert retry.retry_locked(write, sleep=pauses.append) == "ok"
    assert len(calls) == 3 and len(pauses) == 2

    def broken() -> None:
        raise OperationalError("UPDATE runs", {}, Exception("no such table: runs"))

    with pytest.raises(OperationalError):
        retry.retry_locked(broken, sleep=pauses.append)


def test_a_locked_progress_write_does_not_fail_the_run(
    driven: tuple[TestClient, threading.Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, wake = driven
    alice = add_user(client, "alice")
    failures = [0]

    def flaky(real: Callable[..., bool]) -> Callable[..., bool]:
        def write(**kwargs: Any) -> bool:
            if failures[0] < 3:
                failures[0] += 1
                raise OperationalError("UPDATE runs", {}, Exception("database is locked"))
            return real(**kwargs)

        return write

    # a short run writes its progress with its outcome: either write may meet the lock
    monkeypatch.setattr(progress, "record_progress", flaky(progress.record_progress))
    monkeypatch.setattr(progress, "finish_run", flaky(progress.finish_run))
    run_id = client.post(f"{API}/runs", json=iris_spec(epochs=30), headers=alice).json()["id"]
    wake.set()
    done = until(client, run_id, alice, "succeeded", "failed")
    assert done["status"] == "succeeded", done
    assert failures[0] == 3
    metrics = client.get(f"{API}/runs/{run_id}/metrics", headers=alice).json()
    assert metrics["epoch"] == list(range(1, 31))
