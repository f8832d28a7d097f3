"""`annlab users rotate | delete | revoke` against a running app: keys die at once,
queued runs are cancelled, a deleted user's data is kept for admins or purged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli import cli
from tests.support.waiting import wait_for

from .conftest import API, long_spec
from .test_auth import AND_GATE, TINY, As, add_user


def users_cli(data_dir: Path, *args: str) -> Any:
    env = {"ANNLAB_DATA_DIR": str(data_dir), "ANNLAB_DATABASE_URL": None}
    return CliRunner().invoke(cli, ["users", *args], env=env)  # type: ignore[dict-item]


def _setup(make_client: Callable[..., TestClient], tmp_path: Path) -> tuple[dict[str, As], Path]:
    client = make_client(auth=True, executor="none")  # runs stay queued
    return {
        n: As(client, add_user(client, n, admin=n == "root")) for n in ("alice", "bob", "root")
    }, (tmp_path / "data")


def _queue(user: As, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        response = user.post(f"{API}/runs", json=TINY)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return ids


def test_rotate_prints_a_new_key_and_the_old_one_dies_at_once(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    users, data_dir = _setup(make_client, tmp_path)
    alice = users["alice"]
    run_id = _queue(alice, 1)[0]
    rotated = users_cli(data_dir, "rotate", "alice")
    assert rotated.exit_code == 0, rotated.output
    new_key = rotated.stdout.strip()
    assert new_key.startswith("annlab_") and "\n" not in new_key and new_key != alice.key
    assert "old key no longer works" in rotated.stderr
    assert alice.get(f"{API}/runs").status_code == 401
    fresh = As(alice.client, new_key)
    assert fresh.get(f"{API}/runs/{run_id}").json()["status"] == "queued"  # nothing else changed
    assert users["bob"].get(f"{API}/runs").status_code == 200
    assert users_cli(data_dir, "rotate", "nobody").exit_code == 1
    assert users_cli(data_dir, "revoke", "alice").exit_code == 0
    refused = users_cli(data_dir, "rotate", "alice")
    assert refused.exit_code == 1 and "revoked" in refused.stderr


def test_revoking_cancels_the_users_queued_runs(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    users, data_dir = _setup(make_client, tmp_path)
    alices, bobs = _queue(users["alice"], 3), _queue(users["bob"], 1)
    revoked = users_cli(data_dir, "revoke", "alice")
    assert revoked.exit_code == 0, revoked.output
    assert "cancelled 3 queued run(s)" in revoked.stdout
    root = users["root"]
    assert {root.get(f"{API}/runs/{i}").json()["status"] for i in alices} == {"cancelled"}
    assert root.get(f"{API}/runs/{bobs[0]}").json()["status"] == "queued"


def test_delete_keeps_the_data_for_admins(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    users, data_dir = _setup(make_client, tmp_path)
    alice, root = users["alice"], users["root"]
    dataset = alice.post(f"{API}/datasets", json=AND_GATE).json()["id"]
    keyed = alice.post(f"{API}/runs", json=TINY, headers={"Idempotency-Key": "k1"}).json()["id"]
    runs = [keyed, *_queue(alice, 1)]
    deleted = users_cli(data_dir, "delete", "alice")
    assert deleted.exit_code == 0, deleted.output
    assert "2 run(s) and 1 dataset(s) kept for the admins" in deleted.stdout
    assert "2 queued run(s) cancelled" in deleted.stdout
    assert alice.get(f"{API}/runs").status_code == 401
    assert {root.get(f"{API}/runs/{i}").json()["status"] for i in runs} == {"cancelled"}
    assert root.get(f"{API}/datasets/{dataset}").status_code == 200
    assert users["bob"].get(f"{API}/datasets/{dataset}").status_code == 404
    listed = users_cli(data_dir, "list").stdout
    assert "alice" not in listed and "bob" in listed
    assert users_cli(data_dir, "create", "alice").exit_code == 0  # the name is free again
    assert users_cli(data_dir, "delete", "alice", "--purge").exit_code == 0
    assert users_cli(data_dir, "delete", "local").exit_code == 1


def test_delete_with_purge_removes_their_runs_and_datasets(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    users, data_dir = _setup(make_client, tmp_path)
    bob, root = users["bob"], users["root"]
    dataset = bob.post(f"{API}/datasets", json=AND_GATE).json()["id"]
    runs = _queue(bob, 2)
    others = _queue(users["alice"], 1)
    purged = users_cli(data_dir, "delete", "bob", "--purge")
    assert purged.exit_code == 0, purged.output
    assert "2 run(s) and 1 dataset(s) deleted" in purged.stdout
    assert all(root.get(f"{API}/runs/{i}").status_code == 404 for i in runs)
    assert root.get(f"{API}/datasets/{dataset}").status_code == 404
    assert root.get(f"{API}/runs/{others[0]}").json()["status"] == "queued"


def test_purge_stops_a_running_run_before_deleting_it(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    client = make_client(auth=True)  # one worker thread
    bob, root = (As(client, add_user(client, n, admin=n == "root")) for n in ("bob", "root"))
    run_id = bob.post(f"{API}/runs", json=long_spec(100_000)).json()["id"]
    wait_for(
        lambda: root.get(f"{API}/runs/{run_id}").json()["status"] == "running",
        timeout=30,
        message="the long run never started",
    )
    purged = users_cli(tmp_path / "data", "delete", "bob", "--purge")
    assert purged.exit_code == 0, purged.output
    assert root.get(f"{API}/runs/{run_id}").status_code == 404
