"""`annlab backup` while a real server trains, and `annlab restore` into a new data dir."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .server import (
    ANNLAB,
    API,
    Server,
    get_run,
    iris_spec,
    long_spec,
    submit,
    wait_epoch,
    wait_status,
    weights_npz,
)

pytestmark = pytest.mark.timeout(180)


def annlab(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "ANNLAB_DATA_DIR": str(data_dir), **env}
    if "ANNLAB_DATABASE_URL" not in env:
        environment.pop("ANNLAB_DATABASE_URL", None)
    return subprocess.run(
        [str(ANNLAB), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_backup_taken_mid_training_restores_every_finished_run(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    source = make_server("source", ANNLAB_WORKERS="2", ANNLAB_CHECKPOINT_SECONDS="0.2").start()
    with source.client() as client:
        finished = [submit(client, iris_spec(seed=seed))["id"] for seed in range(3)]
        for run_id in finished:
            assert wait_status(client, run_id)["status"] == "succeeded"
        long_id = submit(client, long_spec(100_000))["id"]
        wait_epoch(client, long_id, 2)
        weights = {run_id: weights_npz(client, run_id) for run_id in finished}

        backup_file = tmp_path / "backups" / "annlab-backup.db"
        made = annlab(source.data_dir, "backup", str(backup_file))
        assert made.returncode == 0, made.stderr
        assert "backed up" in made.stdout
        during = get_run(client, long_id)
        assert during["status"] == "running"  # training went on
        assert client.post(f"{API}/runs/{long_id}/cancel").status_code in (200, 202)

    with sqlite3.connect(backup_file) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert copy.execute("SELECT count(*) FROM run_weights").fetchone() == (3,)

    target = make_server("restored", ANNLAB_EXECUTOR="none")
    restored = annlab(target.data_dir, "restore", str(backup_file))
    assert restored.returncode == 0, restored.stderr
    again = annlab(target.data_dir, "restore", str(backup_file))
    assert again.returncode == 1 and "--force" in again.stderr
    assert annlab(target.data_dir, "restore", "--force", str(backup_file)).returncode == 0

    target.start()
    with target.client() as client:
        for run_id, content in weights.items():
            assert get_run(client, run_id)["status"] == "succeeded"
            assert weights_npz(client, run_id) == content, f"{run_id}: weights differ"
        assert get_run(client, long_id)["status"] in ("queued", "running")  # back in the queue
        assert client.get(f"{API}/runs").json()["total"] == 4
    target.stop()


def test_restore_refuses_what_is_not_an_annlab_backup(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    refused = annlab(tmp_path / "data", "restore", str(junk))
    assert refused.returncode == 1 and "not a SQLite database" in refused.stderr
    plain = tmp_path / "plain.db"
    with sqlite3.connect(plain) as connection:
        connection.execute("CREATE TABLE t (x)")
    refused = annlab(tmp_path / "data", "restore", str(plain))
    assert refused.returncode == 1 and "not an annlab database" in refused.stderr
    missing = annlab(tmp_path / "data", "backup", str(tmp_path / "b.db"))
    assert missing.returncode == 1 and "no database" in missing.stderr


def test_postgres_backups_name_the_pg_dump_line(tmp_path: Path) -> None:
    url = "postgresql+psycopg://annlab:secret@db.example:5432/annlab"
    shown = annlab(tmp_path, "backup", str(tmp_path / "x.dump"), ANNLAB_DATABASE_URL=url)
    assert shown.returncode == 2
    assert shown.stdout.strip() == (
        f"pg_dump --format=custom --no-owner --file {tmp_path / 'x.dump'} "
        "'postgresql://annlab:***@db.example:5432/annlab'"
    )
