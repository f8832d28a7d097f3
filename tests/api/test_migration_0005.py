"""Migration 0005 (experiments, the model registry) upgrades and downgrades with rows
in the tables, on SQLite and PostgreSQL: the runs and their metrics stay."""

from __future__ import annotations

from datetime import datetime

from alembic import command
from sqlalchemy import inspect, text

from app.db.engine import make_engine
from app.db.migrate import alembic_config

NEW_TABLES = {"experiments", "models", "model_versions", "model_aliases"}
T = datetime(2026, 12, 1, 12, 0, 0)


def test_0005_up_and_down_with_rows(database_url: str) -> None:
    engine = make_engine(database_url)
    config = alembic_config()

    def migrate(target: str, up: bool = True) -> None:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            (command.upgrade if up else command.downgrade)(config, target)

    try:
        migrate("0004")
        migrate("0003")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO users (id, name, is_admin, created_at) VALUES ('u', 'ann', :f, :t)"
                ),
                {"f": False, "t": T},
            )
            connection.execute(
                text(
                    "INSERT INTO runs (id, owner_id, dataset_id, name, spec, status, created_at, "
                    "epoch, epochs, step, n_parameters, cancel_requested, stop_requested, "
                    "attempts, experiment_id) VALUES ('r', 'u', 'iris', 'n', '{}', 'succeeded', "
                    ":t, 2, 2, 8, 5, :f, :f, 1, 'exp_1')"
                ),
                {"t": T, "f": False},
            )
            connection.execute(
                text("INSERT INTO run_metrics (run_id, epoch, step) VALUES ('r', 1, 4)")
            )
        migrate("0005")
        assert set(inspect(engine).get_table_names()) >= NEW_TABLES
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO experiments (id, owner_id, name, base, grid, points, created_at) "
                    "VALUES ('exp_1', 'u', 'e', '{}', '{}', '[[\"r\", {}]]', :t)"
                ),
                {"t": T},
            )
            connection.execute(
                text(
                    "INSERT INTO models (id, owner_id, name, created_at, last_version) "
                    "VALUES ('m', 'u', 'iris', :t, 1)"
                ),
                {"t": T},
            )
            connection.execute(
                text(
                    "INSERT INTO model_versions (model_id, version, run_id, created_at) "
                    "VALUES ('m', 1, 'r', :t)"
                ),
                {"t": T},
            )
            connection.execute(
                text("INSERT INTO model_aliases (model_id, alias, version) VALUES ('m', 'prod', 1)")
            )
        migrate("0004", up=False)  # 0005 and the snapshots branch (0003) go
        tables = set(inspect(engine).get_table_names())
        assert not NEW_TABLES & tables
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM run_metrics")).scalar() == 1
            assert connection.execute(text("SELECT experiment_id FROM runs")).scalar() == "exp_1"
        migrate("head")
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM models")).scalar() == 0
    finally:
        engine.dispose()
