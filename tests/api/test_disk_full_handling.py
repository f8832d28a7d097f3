"""A full disk without root (issue 15, item 1; the real tmpfs test is
tests/e2e/test_disk_full.py): a worker's write waits and retries, and gives up only
past its deadline with a message naming the disk; the API answers 507 naming it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from app.db import retry
from app.db.engine import DiskFull, is_disk_full
from app.services import datasets

API = "/api/v1"
FULL = OperationalError("INSERT", {}, Exception("database or disk is full"))


def test_a_write_on_a_full_disk_waits_and_retries_until_space_comes_back() -> None:
    calls: list[int] = []
    pauses: list[float] = []

    def write() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise FULL
        return "stored"

    assert retry.retry_locked(write, sleep=pauses.append, what="its checkpoint") == "stored"
    assert len(calls) == 4 and len(pauses) == 3


def test_past_the_deadline_the_error_names_the_write_and_the_disk() -> None:
    def write() -> None:
        raise FULL

    with pytest.raises(DiskFull) as caught:
        retry.retry_locked(write, deadline_seconds=0.0, sleep=lambda _: None, what="a snapshot")
    message = str(caught.value)
    assert "disk" in message and "full" in message and "a snapshot" in message
    assert "ANNLAB_DATA_DIR" in message


def test_what_counts_as_a_full_disk() -> None:
    assert is_disk_full(FULL)
    assert is_disk_full(OSError(28, "No space left on device"))
    assert not is_disk_full(OperationalError("UPDATE", {}, Exception("database is locked")))

    class PgDiskFull(Exception):
        sqlstate = "53100"

    assert is_disk_full(OperationalError("INSERT", {}, PgDiskFull("could not extend file")))


def test_an_upload_on_a_full_disk_is_a_507_naming_the_disk(
    idle_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(**_: object) -> None:
        raise FULL

    monkeypatch.setattr(datasets.dataset_store, "create_dataset", full)
    body = {"name": "u", "task": "regression", "features": [[1.0], [2.0]], "targets": [1.0, 2.0]}
    answer = idle_client.post(f"{API}/datasets", json=body)
    assert answer.status_code == 507, answer.text
    assert "disk" in answer.json()["detail"] and "ANNLAB_DATA_DIR" in answer.json()["detail"]
    assert answer.headers["retry-after"]
    assert idle_client.get("/healthz").status_code == 200


def test_another_database_error_is_still_a_500(
    idle_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**_: object) -> None:
        raise OperationalError("INSERT", {}, Exception("no such table: datasets"))

    monkeypatch.setattr(datasets.dataset_store, "create_dataset", broken)
    body = {"name": "u", "task": "regression", "features": [[1.0], [2.0]], "targets": [1.0, 2.0]}
    with TestClient(idle_client.app, raise_server_exceptions=False) as client:
        assert client.post(f"{API}/datasets", json=body).status_code == 500
