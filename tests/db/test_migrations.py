"""Every migration, up and down, on a populated database (SQLite and PostgreSQL).

Generic on purpose: the revisions come from Alembic's ScriptDirectory, the rows are
inserted once at the first revision's schema, and after every single step (up to
head, then back down to the first revision) every table that existed at the start
still holds the same rows: the same count, and the same values in each column that
both schemas have. A new migration is covered as soon as it is in migrations/versions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, MetaData, Table, inspect, select, text

from app.db import migrate
from app.db.engine import make_engine

ANNLAB = Path(sys.executable).with_name("annlab")
T0 = datetime(2026, 1, 2, 3, 4, 5)

Snapshot = dict[str, list[dict[str, Any]]]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _rows_at_first_revision() -> dict[str, list[dict[str, Any]]]:
    """Rows for the schema of the first revision (0001): two users, datasets, runs
    in every state, metrics, weights and a checkpoint, references between them."""
    users = [
        {"id": "local", "name": "local", "key_hash": None, "is_admin": True, "created_at": T0},
        {
            "id": "usr_a",
            "name": "alice",
            "key_hash": "h" * 64,
            "is_admin": False,
            "created_at": T0,
            "revoked_at": None,
        },
        {
            "id": "usr_b",
            "name": "bob",
            "key_hash": "g" * 64,
            "is_admin": False,
            "created_at": T0,
            "revoked_at": T0 + timedelta(days=1),
        },
    ]
    datasets = [
        {
            "id": f"ds_{i}",
            "owner_id": owner,
            "name": f"data {i} é",
            "task": "classification",
            "n_samples": 10 + i,
            "n_features": 2,
            "n_outputs": 2,
            "class_names": ["a", "b"],
            "feature_names": ["x", "y"],
            "created_at": T0,
            "data": bytes(range(256)) * (i + 1),
        }
        for i, owner in enumerate(["usr_a", "usr_b", "local"])
    ]
    runs = []
    for i, status in enumerate(["queued", "running", "succeeded", "failed", "cancelled"] * 2):
        finished = status in ("succeeded", "failed", "cancelled")
        runs.append(
            {
                "id": f"run_{i:02d}",
                "owner_id": ["usr_a", "usr_b"][i % 2],
                "dataset_id": "iris" if i % 3 else "ds_0",
                "name": f"run {i}",
                "spec": {"model": {"layers": [{"units": 3}]}, "training": {"epochs": 5}, "i": i},
                "status": status,
                "created_at": T0 + timedelta(seconds=i),
                "started_at": T0 if status != "queued" else None,
                "finished_at": T0 + timedelta(minutes=1) if finished else None,
                "epoch": 5 if finished else 0,
                "epochs": 5,
                "step": 10**10 + i,
                "metrics": {"train_loss": 0.5} if finished else None,
                "best_epoch": 4 if status == "succeeded" else None,
                "stop_reason": "completed" if status == "succeeded" else None,
                "error": "boom" if status == "failed" else None,
                "n_parameters": 17,
                "cancel_requested": status == "cancelled",
                "attempts": 1,
                "claimed_by": "w1" if status == "running" else None,
                "heartbeat_at": T0 if status == "running" else None,
                "idempotency_key": f"key-{i}" if i % 2 else None,
                "request_hash": "r" * 64,
            }
        )
    metrics = [
        {
            "run_id": run["id"],
            "epoch": epoch,
            "step": epoch * 2,
            "train_loss": 1.0 / epoch,
            "val_loss": None,
            "train_accuracy": 0.5,
            "val_accuracy": None,
            "learning_rate": 0.1,
        }
        for run in runs
        if run["finished_at"]
        for epoch in range(1, 6)
    ]
    weights = [
        {"run_id": run["id"], "data": b"PK\x03\x04" + run["id"].encode() * 50}
        for run in runs
        if run["status"] == "succeeded"
    ]
    checkpoints = [
        {"run_id": "run_01", "epoch": 2, "step": 4, "data": b"\x00\xff" * 1000, "updated_at": T0}
    ]
    return {
        "users": users,
        "datasets": datasets,
        "runs": runs,
        "run_metrics": metrics,
        "run_weights": weights,
        "checkpoints": checkpoints,
    }


def _table(connection: Connection, name: str) -> Table:
    return Table(name, MetaData(), autoload_with=connection)


def _snapshot(engine: Engine, names: list[str]) -> Snapshot:
    """Every row of the tables, ordered by primary key, as plain dicts."""
    snapshot: Snapshot = {}
    with engine.connect() as connection:
        for name in names:
            table = _table(connection, name)
            order = list(table.primary_key.columns)
            snapshot[name] = [
                dict(row._mapping) for row in connection.execute(select(table).order_by(*order))
            ]
    return snapshot


def _kept(before: Snapshot, after: Snapshot, where: str) -> dict[str, int]:
    """Assert every row of ``before`` is in ``after`` (columns both have); the counts."""
    counts = {}
    for name, rows in before.items():
        assert name in after, f"{where}: table {name} is gone"
        assert len(after[name]) == len(rows), f"{where}: {name} {len(rows)} -> {len(after[name])}"
        for old, new in zip(rows, after[name], strict=True):
            common = old.keys() & new.keys()
            assert {k: old[k] for k in common} == {k: new[k] for k in common}, f"{where}: {name}"
        counts[name] = len(rows)
    return counts


def test_every_revision_up_and_down_keeps_every_row(engine: Engine) -> None:
    revisions = migrate.revisions_base_to_head()
    assert revisions[0] == "0001" and revisions[-1] == migrate.head_revision()
    migrate.upgrade(engine, revisions[0])
    rows = _rows_at_first_revision()
    with engine.begin() as connection:
        for name, values in rows.items():
            connection.execute(_table(connection, name).insert(), values)
    tables = list(rows)
    base = _snapshot(engine, tables)
    assert {name: len(found) for name, found in base.items()} == {
        name: len(values) for name, values in rows.items()
    }

    steps = []
    for revision in revisions[1:]:  # up, one step at a time
        migrate.upgrade(engine, revision)
        assert migrate.current_revision(engine) == revision
        steps.append(_kept(base, _snapshot(engine, tables), f"upgrade to {revision}"))
    for revision in reversed(revisions[:-1]):  # and down again
        migrate.downgrade(engine, revision)
        assert migrate.current_revision(engine) == revision
        steps.append(_kept(base, _snapshot(engine, tables), f"downgrade to {revision}"))
    assert _snapshot(engine, tables) == base  # back at the start: every column as inserted
    assert set(inspect(engine).get_table_names()) == {*tables, "alembic_version"}
    print(f"{engine.dialect.name}: {' -> '.join(revisions)} -> back; rows kept: {steps[-1]}")


def test_the_round_trip_touches_data_written_at_head(engine: Engine) -> None:
    """Down to base and up again on a database the current code wrote: head again."""
    migrate.upgrade_to_head(engine)
    migrate.downgrade(engine, "base")
    assert migrate.current_revision(engine) is None
    migrate.upgrade_to_head(engine)
    assert migrate.is_at_head(engine)


def _stamp(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})


def test_a_database_newer_than_the_code_is_left_alone(engine: Engine) -> None:
    migrate.upgrade_to_head(engine)
    _stamp(engine, "9999_from_the_future")
    with pytest.raises(migrate.SchemaTooNewError) as raised:
        migrate.upgrade_to_head(engine)
    message = str(raised.value)
    assert "9999_from_the_future" in message and repr(migrate.head_revision()) in message
    assert migrate.current_revision(engine) == "9999_from_the_future"


def _annlab(data_dir: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "ANNLAB_DATA_DIR": str(data_dir)}
    environment.pop("ANNLAB_DATABASE_URL", None)
    return subprocess.run(
        [str(ANNLAB), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_the_db_commands_and_a_server_refusing_a_newer_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    head = migrate.head_revision()
    assert head is not None
    first = migrate.revisions_base_to_head()[0]

    assert _annlab(data, "db", "current").stdout.startswith("base (empty database")
    up = _annlab(data, "db", "upgrade")
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip() == f"upgraded the database from base to {head}"
    assert _annlab(data, "db", "current").stdout.strip() == f"{head} (head)"
    down = _annlab(data, "db", "downgrade", first)
    assert down.returncode == 0 and first in _annlab(data, "db", "current").stdout
    bad = _annlab(data, "db", "downgrade", "nope")
    assert bad.returncode == 1 and "nope" in bad.stderr
    assert _annlab(data, "db", "upgrade").returncode == 0

    engine = make_engine(f"sqlite:///{data / 'annlab.db'}")
    try:
        _stamp(engine, "0099")
    finally:
        engine.dispose()
    assert "NEWER" in _annlab(data, "db", "current").stdout
    refused = _annlab(data, "serve", "--port", "19401", timeout=60)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "'0099'" in refused.stderr and repr(head) in refused.stderr
    assert json.dumps(refused.stderr).count("Traceback") == 0
