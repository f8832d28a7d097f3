"""The audit table: every user and admin action leaves one event, written in the
action's own transaction (a refused or failed action leaves none)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from app.db.audit import list_events
from app.db.engine import transaction
from app.services import audit

from .conftest import API
from .test_auth import AND_GATE, TINY, As, add_user


def events(client: TestClient, **filters: Any) -> list[tuple[str, str, str | None, str | None]]:
    """(actor, action, subject, target), oldest first."""
    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        rows = list_events(session=session, limit=1000, **filters)
    return [(row.actor, row.action, row.subject, row.target) for row in reversed(rows)]


def test_runs_datasets_and_models_leave_one_event_each_naming_actor_and_owner(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(auth=True)
    alice = As(client, add_user(client, "alice"))
    root = As(client, add_user(client, "root", admin=True))
    dataset = alice.post(f"{API}/datasets", json=AND_GATE).json()["id"]
    run_id = alice.post(f"{API}/runs", json=TINY).json()["id"]
    finished = _wait_succeeded(alice, run_id)
    assert finished["status"] == "succeeded"
    assert root.post(f"{API}/models", json={"name": "xor"}).status_code == 201
    assert root.post(f"{API}/models/xor/versions", json={"run_id": run_id}).status_code == 201
    assert (
        root.request("PUT", f"{API}/models/xor/aliases/prod", json={"version": 1}).status_code
        == 200
    )
    assert root.delete(f"{API}/models/xor/aliases/prod").status_code == 204
    assert root.delete(f"{API}/models/xor").status_code == 204
    queued = alice.post(f"{API}/runs", json=TINY).json()["id"]
    assert root.post(f"{API}/runs/{queued}/cancel").status_code in (202, 409)
    assert alice.delete(f"{API}/runs/{run_id}").status_code == 204
    assert root.delete(f"{API}/datasets/{dataset}").status_code == 204
    seen = events(client)
    # runs may finish before the cancel reaches them: then there is no cancel event
    expected = [
        ("alice", "dataset.uploaded", "alice", dataset),
        ("alice", "run.submitted", "alice", run_id),
        ("root", "model.created", "root", "xor"),
        ("root", "model.version_registered", "root", "xor"),
        ("root", "model.alias_set", "root", "xor"),
        ("root", "model.alias_deleted", "root", "xor"),
        ("root", "model.deleted", "root", "xor"),
        ("alice", "run.submitted", "alice", queued),
        ("root", "run.cancelled", "alice", queued),
        ("alice", "run.deleted", "alice", run_id),
        ("root", "dataset.deleted", "alice", dataset),
    ]
    assert [event for event in seen if event != expected[8]] == [
        event for event in expected if event != expected[8]
    ]
    assert next(e[1] for e in events(client, user="root")) == "model.created"
    assert {e[1] for e in events(client, user="alice")} >= {"run.deleted", "dataset.deleted"}


def _wait_succeeded(user: As, run_id: str) -> dict[str, Any]:
    from tests.support.waiting import wait_for as wait

    def look() -> dict[str, Any] | None:
        run: dict[str, Any] = user.get(f"{API}/runs/{run_id}").json()
        return run if run["status"] in ("succeeded", "failed", "cancelled") else None

    return wait(look, timeout=30, message=f"run {run_id} finished")


def test_a_refused_action_leaves_no_event(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    client = make_client(executor="none", max_queued_runs=1, database_url=database_url)
    assert client.post(f"{API}/runs", json=TINY).status_code == 202
    assert client.post(f"{API}/runs", json=TINY).status_code == 429  # queue full
    assert client.post(f"{API}/runs", json={**TINY, "dataset": "nosuch"}).status_code == 404
    dataset = client.post(f"{API}/datasets", json=AND_GATE).json()["id"]
    client.post(f"{API}/runs/{client.get(f'{API}/runs').json()['items'][0]['id']}/cancel")
    assert client.post(f"{API}/runs", json={**TINY, "dataset": dataset}).status_code == 202
    assert client.delete(f"{API}/datasets/{dataset}").status_code == 409  # in use
    assert [e[1] for e in events(client)] == [
        "run.submitted",
        "dataset.uploaded",
        "run.cancelled",
        "run.submitted",
    ]


def test_the_event_is_rolled_back_with_its_action(make_client: Callable[..., TestClient]) -> None:
    client = make_client(executor="none")
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    try:
        with transaction(factory) as session:
            audit.record(session=session, actor="cli", action="user.created", subject="x")
            raise RuntimeError("the action failed after its event was added")
    except RuntimeError:
        pass
    assert events(client) == []
