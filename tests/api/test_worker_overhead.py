"""The worker's own cost around the engine: its timers, and how often it writes.

A worker thread the test owns (``executor="none"``) trains the runs; nothing here
asserts a time, only what was timed and how many transactions were written.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.db import datasets as dataset_store
from app.db import progress, worker_reads
from app.jobs import job as job_module
from app.jobs import overhead
from app.jobs.overhead import DatasetCache, JobTimers
from app.jobs.worker import WorkerConfig
from core.errors import DatasetError
from tests.support.specs import iris_spec
from tests.support.waiting import wait_for
from tests.support.workers import worker_thread

from .conftest import API


@pytest.fixture
def driven(make_client: Any) -> Iterator[tuple[TestClient, threading.Event]]:
    """An app without executor, and one worker thread the test owns."""
    client = make_client(executor="none")
    config = WorkerConfig(worker_id="test-worker", checkpoint_seconds=10.0, max_run_seconds=0)
    with worker_thread(client.app.state.session_factory, config) as wake:  # type: ignore[attr-defined]
        yield client, wake


def train(client: TestClient, wake: threading.Event, spec: dict[str, Any]) -> dict[str, Any]:
    run_id = client.post(f"{API}/runs", json=spec).json()["id"]
    wake.set()

    def done() -> dict[str, Any] | None:
        run = client.get(f"{API}/runs/{run_id}").json()
        return run if run["status"] in ("succeeded", "failed", "cancelled") else None

    run = wait_for(done, timeout=60, message=f"run {run_id} never finished")
    assert run["status"] == "succeeded", run
    return dict(run)


def test_a_run_logs_its_timers_at_the_end(
    driven: tuple[TestClient, threading.Event], caplog: pytest.LogCaptureFixture
) -> None:
    client, wake = driven
    with caplog.at_level(logging.INFO, logger="annlab.worker"):
        run = train(client, wake, iris_spec(epochs=30))
        line = wait_for(
            lambda: next(
                (r.getMessage() for r in caplog.records if "timers:" in r.getMessage()), None
            ),
            timeout=10,
            message="no timers line",
        )
    match = re.fullmatch(rf"run {run['id']} timers: epochs=30 (.*)", line)
    assert match, line
    values = {k: float(v) for k, v in (kv.split("=") for kv in match.group(1).split())}
    expected = {"setup", "train", "writes", "polls", "checkpoints", "snapshots", "finish"}
    assert set(values) == expected | {"engine"}
    assert all(v >= 0 for v in values.values()), values
    assert values["setup"] > 0 and values["train"] > 0 and values["finish"] > 0
    inside = values["writes"] + values["polls"] + values["checkpoints"] + values["snapshots"]
    assert values["engine"] == pytest.approx(max(0.0, values["train"] - inside), abs=2e-4)


def test_timers_sum_what_they_time() -> None:
    timers = JobTimers()
    for _ in range(3):
        with timers.timing("writes"):
            pass
    assert timers.writes >= 0 and timers.callbacks == timers.writes
    assert timers.line().startswith("setup=0.0000 train=0.0000 ")


def test_snapshot_epochs_do_not_each_cost_a_transaction(
    driven: tuple[TestClient, threading.Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Snapshots ride with the timed progress flush: with flushes far apart, a 100-epoch
    run (12 snapshot epochs under the ``log`` plan) is written once, with its outcome
    (the first epoch waits for the flush interval like the others), and still stores
    every epoch's metrics and snapshot."""
    client, wake = driven
    monkeypatch.setattr(job_module, "FLUSH_SECONDS", 3600.0)
    monkeypatch.setattr(job_module, "HEARTBEAT_SECONDS", 3600.0)
    calls: list[tuple[str, int]] = []
    record, finish = progress.record_progress, progress.finish_run

    def recorded(**kwargs: Any) -> bool:
        calls.append(("progress", len(kwargs["epochs"])))
        return record(**kwargs)

    def finished(**kwargs: Any) -> bool:
        calls.append(("outcome", len(kwargs["epochs"])))
        return finish(**kwargs)

    monkeypatch.setattr(job_module.progress, "record_progress", recorded)
    monkeypatch.setattr(job_module.progress, "finish_run", finished)
    run = train(client, wake, iris_spec(epochs=100))
    assert calls == [("outcome", 100)], calls
    epochs = client.get(f"{API}/runs/{run['id']}/snapshots").json()["epochs"]
    assert epochs == [1, 2, 3, 5, 7, 10, 20, 30, 50, 70, 100]
    metrics = client.get(f"{API}/runs/{run['id']}/metrics").json()
    assert metrics["epoch"] == list(range(1, 101))


def upload(client: TestClient) -> str:
    rows = [[float(i % 7), float(i % 5), float(i % 3)] for i in range(60)]
    body = {
        "name": "small",
        "task": "classification",
        "features": rows,
        "targets": [i % 3 for i in range(60)],
    }
    response = client.post(f"{API}/datasets", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_runs_on_the_same_upload_decode_it_once(
    driven: tuple[TestClient, threading.Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, wake = driven
    dataset_id = upload(client)
    loads: list[str] = []
    original = dataset_store.load_dataset_arrays

    def counted(**kwargs: Any) -> Any:
        if kwargs.get("copy", True) is False:  # the worker's: views into the blob
            loads.append(kwargs["dataset_id"])
        return original(**kwargs)

    monkeypatch.setattr(overhead.dataset_store, "load_dataset_arrays", counted)
    spec = {**iris_spec(epochs=3), "dataset": dataset_id}
    first, second = train(client, wake, spec), train(client, wake, spec)
    assert loads == [dataset_id]
    one = client.get(f"{API}/runs/{first['id']}/weights").json()["layers"]
    assert client.get(f"{API}/runs/{second['id']}/weights").json()["layers"] == one
    train(client, wake, iris_spec(epochs=2))  # a built-in (cached by core.datasets)
    train(client, wake, spec)
    assert loads == [dataset_id]


def test_the_cache_asks_whether_the_upload_still_exists(make_client: Any) -> None:
    client = make_client(executor="none")
    dataset_id = upload(client)
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    cache = DatasetCache()
    with factory() as session:
        data = cache.get(session, dataset_id)
    assert data is not None and not data.features.flags.writeable
    with pytest.raises(ValueError):
        data.features[0, 0] = 1.0  # shared with later runs: nobody may change it
    with factory() as session:
        dataset_store.delete_dataset(session=session, dataset_id=dataset_id)
        session.commit()
    with factory() as session:
        assert cache.get(session, dataset_id) is None
    assert cache.dataset is None


def test_the_worker_reads_an_sqlite_upload_through_the_blob_handle(
    make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not the column (SQLite's whole-blob buffer, then the driver's bytes copy): the same
    arrays, bit for bit, read-only; a damaged blob is a DatasetError, never a crash."""
    client = make_client(executor="none")
    dataset_id = upload(client)
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    reads: list[str] = []
    original = dataset_store._read_sqlite_blob
    monkeypatch.setattr(
        dataset_store,
        "_read_sqlite_blob",
        lambda session, row: reads.append(row.id) or original(session, row),
    )
    with factory() as session:
        viewed = dataset_store.load_dataset_arrays(
            session=session, dataset_id=dataset_id, copy=False
        )
        copied = dataset_store.load_dataset_arrays(session=session, dataset_id=dataset_id)
    assert reads == [dataset_id]
    assert viewed is not None and copied is not None
    assert viewed.features.tobytes() == copied.features.tobytes()
    assert viewed.targets.tolist() == copied.targets.tolist()
    assert viewed.class_names == copied.class_names
    assert not viewed.features.flags.writeable and not viewed.targets.flags.writeable
    with factory.begin() as session:
        row = session.get(dataset_store.DatasetRow, dataset_id)
        row.data = row.data[:100] + b"\0" * (len(row.data) - 100)
    with factory() as session, pytest.raises(DatasetError, match="cannot be read"):
        dataset_store.load_dataset_arrays(session=session, dataset_id=dataset_id, copy=False)


def test_a_fresh_short_run_is_one_read_and_one_write_after_its_claim(
    driven: tuple[TestClient, threading.Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Setup reads the run and its checkpoint without the write lock (nothing to rewind),
    and a run shorter than the flush interval writes once: its outcome. A run with
    progress recorded (a resumed one) still rewinds first."""
    client, wake = driven
    monkeypatch.setattr(job_module, "FLUSH_SECONDS", 3600.0)
    monkeypatch.setattr(job_module, "HEARTBEAT_SECONDS", 3600.0)
    writes: list[str] = []
    rewinds: list[str] = []
    real_transaction, real_rewind = job_module.transaction, progress.rewind_to_checkpoint

    def counted_transaction(factory: Any) -> Any:
        writes.append("transaction")
        return real_transaction(factory)

    def counted_rewind(**kwargs: Any) -> None:
        rewinds.append(kwargs["run_id"])
        real_rewind(**kwargs)

    monkeypatch.setattr(job_module, "transaction", counted_transaction)
    monkeypatch.setattr(job_module.progress, "rewind_to_checkpoint", counted_rewind)
    run = train(client, wake, iris_spec(epochs=20))
    assert writes == ["transaction"], writes  # the outcome's, with every epoch
    assert rewinds == []
    assert client.get(f"{API}/runs/{run['id']}/metrics").json()["epoch"] == list(range(1, 21))

    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        claimed = worker_reads.read_claimed(session=session, run_id=run["id"])
    assert claimed is not None and claimed.rewind  # epochs recorded: a resume rewinds
    assert claimed.spec["training"]["epochs"] == 20 and claimed.checkpoint is None
