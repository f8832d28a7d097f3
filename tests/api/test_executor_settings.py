"""ANNLAB_EXECUTOR names: ``local`` (the documented default, alias ``process``) and
``celery``, whose impossible settings are refused before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

from app.config import Settings
from app.jobs.celery_app import ClusterSettingsError, celery_config
from app.jobs.local import LocalProcessExecutor
from app.jobs.registry import make_executor


def test_local_is_the_default_and_process_its_alias(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).executor == "local"
    for name in ("local", "process"):
        executor = make_executor(Settings(data_dir=tmp_path, executor=name), sessionmaker())
        assert isinstance(executor, LocalProcessExecutor)


def test_celery_with_sqlite_is_refused_naming_both_settings(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, executor="celery", broker_url="redis://127.0.0.1/5")
    with pytest.raises(ClusterSettingsError) as raised:
        make_executor(settings, sessionmaker())
    assert "ANNLAB_EXECUTOR=celery" in str(raised.value)
    assert "ANNLAB_DATABASE_URL" in str(raised.value)


def test_celery_without_a_broker_is_refused(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, executor="celery", database_url="postgresql+psycopg://u@h/db"
    )
    with pytest.raises(ClusterSettingsError, match="ANNLAB_BROKER_URL"):
        make_executor(settings, sessionmaker())


def test_the_celery_settings_that_keep_tasks_safe() -> None:
    config = celery_config(
        Settings(
            executor="celery",
            database_url="postgresql+psycopg://u@h/db",
            broker_url="redis://127.0.0.1:6379/5",
            celery_queue="lab",
        )
    )
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]
    assert config["worker_prefetch_multiplier"] == 1
    assert config["task_default_queue"] == "lab"
    assert config["broker_transport_options"]["global_keyprefix"] == "lab:"
