"""Idempotency keys outlive their run: API.md remembers them 24 h even if the run is
deleted. The clock is moved by rewriting the stored timestamp, never by waiting."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db.engine import transaction
from app.db.tables import IdempotencyTombstoneRow
from tests.support.specs import iris_spec

API = "/api/v1"


def _age_tombstones(client: TestClient, hours: float) -> None:
    with transaction(client.app.state.session_factory) as session:
        for row in session.scalars(select(IdempotencyTombstoneRow)):
            row.created_at = row.created_at - timedelta(hours=hours)


def _submit(client: TestClient, key: str, **training: object):
    return client.post(f"{API}/runs", json=iris_spec(**training), headers={"Idempotency-Key": key})


def test_a_key_whose_run_was_deleted_is_a_409_not_a_second_run(idle_client: TestClient) -> None:
    first = _submit(idle_client, "kept")
    assert first.status_code == 202, first.text
    run_id = first.json()["id"]
    assert idle_client.delete(f"{API}/runs/{run_id}").status_code == 204

    again = _submit(idle_client, "kept")
    assert again.status_code == 409, again.text
    assert run_id in again.json()["detail"] and "deleted" in again.json()["detail"]
    assert idle_client.get(f"{API}/runs").json()["total"] == 0


def test_a_deleted_runs_key_with_another_body_is_still_a_422(idle_client: TestClient) -> None:
    run_id = _submit(idle_client, "body").json()["id"]
    assert idle_client.delete(f"{API}/runs/{run_id}").status_code == 204
    other = _submit(idle_client, "body", epochs=3)
    assert other.status_code == 422, other.text
    assert "Idempotency-Key" in other.json()["detail"]


def test_the_key_is_remembered_23_hours_and_free_again_after_24(idle_client: TestClient) -> None:
    run_id = _submit(idle_client, "day").json()["id"]
    assert idle_client.delete(f"{API}/runs/{run_id}").status_code == 204

    _age_tombstones(idle_client, hours=23)
    assert _submit(idle_client, "day").status_code == 409

    _age_tombstones(idle_client, hours=1.01)  # first used 24 h and a bit ago
    fresh = _submit(idle_client, "day")
    assert fresh.status_code == 202, fresh.text
    assert fresh.json()["id"] != run_id
    # and from now on the key belongs to the new run again
    assert _submit(idle_client, "day").json()["id"] == fresh.json()["id"]


def test_expired_tombstones_are_dropped_when_another_keyed_run_is_deleted(
    idle_client: TestClient,
) -> None:
    old = _submit(idle_client, "old").json()["id"]
    assert idle_client.delete(f"{API}/runs/{old}").status_code == 204
    _age_tombstones(idle_client, hours=25)
    new = _submit(idle_client, "new").json()["id"]
    assert idle_client.delete(f"{API}/runs/{new}").status_code == 204
    with idle_client.app.state.session_factory() as session:
        keys = sorted(row.key for row in session.scalars(select(IdempotencyTombstoneRow)))
    assert keys == ["new"]
