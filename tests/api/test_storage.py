"""The storage layer on SQLite and on PostgreSQL: migrations, claims, requeues."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, event, inspect
from sqlalchemy.orm import Session, sessionmaker

from app.db import progress
from app.db import runs as run_store
from app.db.engine import make_engine, make_session_factory, transaction
from app.db.migrate import head_revision, is_at_head, upgrade_to_head
from app.db.tables import Base
from app.db.users import LOCAL_USER_ID, ensure_local_user

from .conftest import API, make_settings
from .test_lifecycle import check_whole_life


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade_to_head(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        ensure_local_user(session=session)
    return factory


def queue_run(factory: sessionmaker[Session], **values: Any) -> str:
    with transaction(factory) as session:
        row = run_store.create_run(
            session=session,
            owner_id=LOCAL_USER_ID,
            dataset_id="iris",
            spec={},
            name="r",
            epochs=10,
            n_parameters=1,
            **values,
        )
        return row.id


def test_the_migrations_build_exactly_the_models(engine: Engine) -> None:
    assert is_at_head(engine) and head_revision() == "0007_audit"
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        assert compare_metadata(context, Base.metadata) == []
    tables = set(inspect(engine).get_table_names())
    expected = {"users", "datasets", "runs", "run_metrics", "run_weights", "checkpoints"}
    assert expected | {"run_snapshots"} <= tables


def test_claims_take_the_oldest_run_once(factory: sessionmaker[Session]) -> None:
    ids = [queue_run(factory) for _ in range(3)]
    claimed = []
    for worker in ("w1", "w2", "w3", "w4"):
        with transaction(factory) as session:
            claimed.append(run_store.claim_next(session=session, worker_id=worker))
    assert claimed == [*ids, None]


def test_concurrent_claims_never_share_a_run(factory: sessionmaker[Session]) -> None:
    ids = {queue_run(factory) for _ in range(20)}
    claimed: list[str] = []
    lock = threading.Lock()

    def work(worker: str) -> None:
        for _ in range(len(ids) + 1):  # every run, then the None that ends the loop
            with transaction(factory) as session:
                run_id = run_store.claim_next(session=session, worker_id=worker)
            if run_id is None:
                return
            with lock:
                claimed.append(run_id)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(ids)


def test_a_run_whose_worker_dies_three_times_fails(factory: sessionmaker[Session]) -> None:
    run_id = queue_run(factory)
    for attempt in range(1, 4):
        with transaction(factory) as session:
            assert run_store.claim_next(session=session, worker_id="w") == run_id
        with transaction(factory) as session:
            requeued = progress.requeue(session=session, run_ids=[run_id], crashed=True)
        assert requeued == ([run_id] if attempt < 3 else [])
    with factory() as session:
        row = run_store.get_run(session=session, run_id=run_id, owner_id=None)
        assert row is not None
        assert (row.status, row.stop_reason, row.attempts) == ("failed", "error", 3)
        assert "died 3 times" in (row.error or "")


def test_requeue_rewinds_progress_to_the_checkpoint(factory: sessionmaker[Session]) -> None:
    run_id = queue_run(factory)
    with transaction(factory) as session:
        run_store.claim_next(session=session, worker_id="w")
    epochs = [
        {
            "epoch": n,
            "epochs": 10,
            "step": 10 * n,
            "train_loss": 1.0 / n,
            "val_loss": None,
            "train_accuracy": 0.5,
            "val_accuracy": None,
            "learning_rate": 0.1,
        }
        for n in range(1, 6)
    ]
    with transaction(factory) as session:
        assert progress.record_progress(
            session=session, run_id=run_id, worker_id="w", epochs=epochs[:3]
        )
        progress.save_checkpoint(
            session=session, run_id=run_id, worker_id="w", epoch=3, step=30, data=b"x"
        )
        assert progress.record_progress(
            session=session, run_id=run_id, worker_id="w", epochs=epochs[3:]
        )
    with transaction(factory) as session:
        assert progress.requeue(session=session, run_ids=[run_id], crashed=False) == [run_id]
    with factory() as session:
        row = run_store.get_run(session=session, run_id=run_id, owner_id=None)
        assert row is not None
        assert (row.status, row.epoch, row.step, row.attempts) == ("queued", 3, 30, 0)
        assert row.metrics == {
            "train_loss": pytest.approx(1 / 3),
            "val_loss": None,
            "train_accuracy": 0.5,
            "val_accuracy": None,
            "learning_rate": 0.1,
        }
        assert [m.epoch for m in run_store.get_metrics(session=session, run_id=run_id)] == [1, 2, 3]


def epoch_rows(numbers: range) -> list[dict[str, Any]]:
    return [
        {"epoch": n, "epochs": 10, "step": 10 * n, "train_loss": 1.0 / n, "learning_rate": 0.1}
        for n in numbers
    ]


def test_a_rewind_without_checkpoint_forgets_every_recorded_epoch(
    factory: sessionmaker[Session],
) -> None:
    run_id = queue_run(factory)
    with transaction(factory) as session:
        run_store.claim_next(session=session, worker_id="w")
    with transaction(factory) as session:
        assert progress.record_progress(
            session=session, run_id=run_id, worker_id="w", epochs=epoch_rows(range(1, 4))
        )
    with transaction(factory) as session:
        progress.rewind_to_checkpoint(session=session, run_id=run_id)
    with factory() as session:
        row = run_store.get_run(session=session, run_id=run_id, owner_id=None)
        assert row is not None
        assert (row.epoch, row.step, row.metrics, row.best_epoch) == (0, 0, None, None)
        assert run_store.get_metrics(session=session, run_id=run_id) == []


def test_the_rewind_of_a_fresh_run_only_reads(
    factory: sessionmaker[Session], engine: Engine
) -> None:
    """Most claims are of runs that never trained: their rewind must not write."""
    run_id = queue_run(factory)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.split()[0].upper())

    event.listen(engine, "before_cursor_execute", record)
    try:
        with transaction(factory) as session:
            progress.rewind_to_checkpoint(session=session, run_id=run_id)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert statements and set(statements) <= {"SELECT", "BEGIN"}, statements


def test_recording_epochs_again_replaces_them(factory: sessionmaker[Session]) -> None:
    run_id = queue_run(factory)
    with transaction(factory) as session:
        run_store.claim_next(session=session, worker_id="w")
    again = [{**row, "train_loss": 9.0} for row in epoch_rows(range(2, 4))]
    for epochs in (epoch_rows(range(1, 5)), again):
        with transaction(factory) as session:
            assert progress.record_progress(
                session=session, run_id=run_id, worker_id="w", epochs=epochs
            )
    with factory() as session:
        stored = run_store.get_metrics(session=session, run_id=run_id)
        assert [(m.epoch, m.train_loss) for m in stored] == [
            (1, 1.0),
            (2, 9.0),
            (3, 9.0),
            (4, 0.25),
        ]


def test_a_worker_cannot_write_to_a_run_it_lost(factory: sessionmaker[Session]) -> None:
    run_id = queue_run(factory)
    with transaction(factory) as session:
        run_store.claim_next(session=session, worker_id="w")
    with transaction(factory) as session:
        run_store.delete_run(session=session, run_id=run_id)
    with transaction(factory) as session:
        assert not progress.record_progress(
            session=session, run_id=run_id, worker_id="w", epochs=[]
        )
        assert not progress.finish_run(
            session=session,
            run_id=run_id,
            worker_id="w",
            status="succeeded",
            stop_reason="completed",
        )


def test_idempotency_keys_are_unique_per_owner(factory: sessionmaker[Session]) -> None:
    from sqlalchemy.exc import IntegrityError

    queue_run(factory, idempotency_key="k", request_hash="h")
    with pytest.raises(IntegrityError):
        queue_run(factory, idempotency_key="k", request_hash="h")


def test_the_key_api_paths_on_this_database(database_url: str, tmp_path: Any) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app

    settings = make_settings(tmp_path / "data", database_url=database_url)
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        assert client.get(f"{API}/datasets").json()["total"] == 7
        dataset = client.post(
            f"{API}/datasets",
            json={
                "name": "g",
                "task": "classification",
                "features": [[0], [1], [2], [3]],
                "targets": [0, 0, 1, 1],
            },
        )
        assert dataset.status_code == 201, dataset.text
        assert client.delete(f"{API}/datasets/{dataset.json()['id']}").status_code == 204
        key = {"Idempotency-Key": "same"}
        spec = {
            "dataset": "xor",
            "model": {"layers": [{"units": 2, "activation": "softmax"}]},
            "optimizer": {"type": "sgd"},
            "training": {"epochs": 2},
        }
        first = client.post(f"{API}/runs", json=spec, headers=key)
        assert client.post(f"{API}/runs", json=spec, headers=key).json()["id"] == first.json()["id"]
        check_whole_life(client)


def test_readyz_is_503_when_the_schema_is_behind(database_url: str, tmp_path: Any) -> None:
    from fastapi.testclient import TestClient
    from sqlalchemy import text

    from app.main import create_app

    settings = make_settings(tmp_path / "data", database_url=database_url, executor="none")
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        engine = client.app.state.engine  # type: ignore[attr-defined]
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = 'old'"))
        response = client.get("/readyz")
        assert response.status_code == 503 and "migration" in response.json()["status"]
        engine.dispose()
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE alembic_version"))
        assert client.get("/readyz").status_code == 503


def test_a_claim_by_id_takes_that_run_only(factory: sessionmaker[Session]) -> None:
    older, newer = queue_run(factory), queue_run(factory)
    with transaction(factory) as session:
        assert run_store.claim(session=session, run_id=newer, worker_id="w1")
    with transaction(factory) as session:
        assert not run_store.claim(session=session, run_id=newer, worker_id="w2"), "taken"
        assert not run_store.claim(session=session, run_id="run_nope", worker_id="w2")
        assert run_store.get_status(session=session, run_id=older) == "queued"
        row = run_store.get_run(session=session, run_id=newer, owner_id=None)
        assert row is not None and (row.status, row.claimed_by) == ("running", "w1")
        assert row.heartbeat_at is not None, "the claim starts the lease"


def test_a_claim_by_id_respects_the_per_user_limit(factory: sessionmaker[Session]) -> None:
    first, second = queue_run(factory), queue_run(factory)
    with transaction(factory) as session:
        assert run_store.claim(
            session=session, run_id=first, worker_id="w1", max_running_per_user=1
        )
    with transaction(factory) as session:
        assert not run_store.claim(
            session=session, run_id=second, worker_id="w2", max_running_per_user=1
        )
        assert run_store.claim(session=session, run_id=second, worker_id="w2")


def test_an_upload_stored_from_its_file_reads_back_bit_for_bit(
    factory: sessionmaker[Session], tmp_path: Any
) -> None:
    """The API hands the store the offload process's .npz file: SQLite receives it in
    pieces through the blob handle (pieces smaller than the file here), PostgreSQL as
    one value; either way the worker's read and the copying read agree with it."""
    import numpy as np

    from app.db import datasets as dataset_store
    from app.db.datasets import DatasetSummary
    from core.data import Dataset
    from core.loaders import dataset_to_npz_bytes

    rng = np.random.default_rng(0)
    dataset = Dataset(
        "up", "classification", rng.normal(size=(3_000, 5)), rng.integers(0, 3, 3_000),
        ["a", "b", "c"], ["f1", "f2", "f3", "f4", "f5"],
    )  # fmt: skip
    blob = dataset_to_npz_bytes(dataset)
    path = tmp_path / "encoded.npz"
    path.write_bytes(blob)
    pieces: list[int] = []
    original_piece = dataset_store.BLOB_PIECE_BYTES
    dataset_store.BLOB_PIECE_BYTES = 4096
    try:
        with transaction(factory) as session, open(path, "rb") as f:
            f.read(10)  # not at the start: the store rewinds
            row = dataset_store.create_dataset(
                session=session,
                owner_id=LOCAL_USER_ID,
                dataset=DatasetSummary.of(dataset),
                data=f,
            )
            dataset_id = row.id
            pieces.append(f.tell())
    finally:
        dataset_store.BLOB_PIECE_BYTES = original_piece
    assert pieces == [len(blob)]
    with factory() as session:
        stored = session.get(dataset_store.DatasetRow, dataset_id)
        assert stored is not None and bytes(stored.data) == blob
        for copy in (True, False):
            back = dataset_store.load_dataset_arrays(
                session=session, dataset_id=dataset_id, copy=copy
            )
            assert back is not None
            assert back.features.tobytes() == dataset.features.tobytes()
            assert back.targets.tolist() == dataset.targets.tolist()
