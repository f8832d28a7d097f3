"""Migration 0004 (run fields) upgrades and downgrades with rows in the tables, on
SQLite and PostgreSQL, and fills the new columns of existing runs in."""

from __future__ import annotations

from datetime import datetime

from alembic import command
from sqlalchemy import inspect, text

from app.db.engine import make_engine
from app.db.migrate import alembic_config

NEW_COLUMNS = {
    "tags",
    "experiment_id",
    "best_metrics",
    "best_val_loss",
    "best_val_accuracy",
    "duration_seconds",
    "stop_requested",
}


def test_0004_up_and_down_with_rows(database_url: str) -> None:
    engine = make_engine(database_url)
    config = alembic_config()

    def migrate(target: str, up: bool = True) -> None:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            (command.upgrade if up else command.downgrade)(config, target)

    try:
        migrate("0003_queued_at")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO users (id, name, is_admin, created_at) VALUES ('u', 'ann', :f, :t)"
                ),
                {"f": False, "t": datetime(2026, 1, 1)},
            )
            connection.execute(
                text(
                    "INSERT INTO runs (id, owner_id, dataset_id, name, spec, status, created_at, "
                    "started_at, finished_at, epoch, epochs, step, best_epoch, n_parameters, "
                    "cancel_requested, attempts) VALUES ('r', 'u', 'iris', 'n', :spec, "
                    "'succeeded', :t0, :t0, :t1, 2, 2, 8, 1, 5, :f, 1)"
                ),
                {
                    "spec": '{"tags": {"group": "a"}}',
                    "t0": datetime(2026, 1, 1, 12, 0, 0),
                    "t1": datetime(2026, 1, 1, 12, 0, 30),
                    "f": False,
                },
            )
            for epoch, val_loss in ((1, 0.25), (2, 0.5)):
                connection.execute(
                    text(
                        "INSERT INTO run_metrics (run_id, epoch, step, train_loss, val_loss, "
                        "val_accuracy) VALUES ('r', :e, :s, 1.0, :v, 0.75)"
                    ),
                    {"e": epoch, "s": 4 * epoch, "v": val_loss},
                )
        migrate("0004")
        columns = {column["name"] for column in inspect(engine).get_columns("runs")}
        assert columns >= NEW_COLUMNS
        with engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT best_val_loss, best_val_accuracy, duration_seconds, stop_requested, "
                    "experiment_id FROM runs WHERE id = 'r'"
                )
            ).one()
        assert (row[0], row[1], row[2], bool(row[3]), row[4]) == (0.25, 0.75, 30.0, False, None)
        migrate("0003_queued_at", up=False)
        columns = {column["name"] for column in inspect(engine).get_columns("runs")}
        assert not NEW_COLUMNS & columns
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM run_metrics")).scalar() == 2
            assert connection.execute(text("SELECT name FROM runs")).scalar() == "n"
        migrate("head")
    finally:
        engine.dispose()
