"""Alembic, driven from code: the server upgrades its database to head on start.

``annlab db upgrade | downgrade REV | current`` (app/cli_db.py) call the same
functions. A database stamped with a revision this code does not know was
migrated by a *newer* annlab: nothing here touches it (``SchemaTooNewError``),
so an old image started by mistake cannot half-migrate or mis-read it.

On SQLite, foreign keys are switched off while migrations run: Alembic's batch
mode rebuilds a table by copying it, dropping the original and renaming the
copy, and with ``PRAGMA foreign_keys=ON`` dropping a table that other rows
reference fails (or cascades). ``PRAGMA foreign_key_check`` afterwards proves
that the rebuilt tables still hold every reference.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, text

import migrations


class SchemaTooNewError(RuntimeError):
    """The database is at a revision this code does not know (a newer annlab migrated it)."""

    def __init__(self, current: str, head: str | None) -> None:
        self.current = current
        self.head = head
        super().__init__(
            f"the database is at migration {current!r}, which this annlab does not know "
            f"(its newest is {head!r}): it was upgraded by a newer annlab. Run that version, "
            f"or downgrade the database with the newer annlab's `annlab db downgrade {head}` "
            "first (after a backup)."
        )


class MigrationError(ValueError):
    """A revision asked for that does not exist (or a move Alembic refuses)."""


def migrations_dir() -> Path:
    return Path(migrations.__file__).resolve().parent


def alembic_config(url: str | None = None) -> Config:
    config = Config(str(migrations_dir() / "alembic.ini"))
    config.set_main_option("script_location", str(migrations_dir()))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@cache
def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


@cache
def head_revision() -> str | None:
    return script_directory().get_current_head()


def revisions_base_to_head() -> list[str]:
    """Every revision this code knows, oldest first (a single linear history)."""
    return [script.revision for script in reversed(list(script_directory().walk_revisions()))]


#: PostgreSQL advisory lock key held while migrating (any constant shared by all): a
#: server and workers starting at once on a fresh database take turns instead of racing
#: to create the tables.
_MIGRATION_LOCK = 7_243_190_013


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_at_head(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()


def check_not_newer(engine: Engine) -> str | None:
    """The database's revision; ``SchemaTooNewError`` if this code does not know it."""
    current = current_revision(engine)
    if current is not None and current not in revisions_base_to_head():
        raise SchemaTooNewError(current, head_revision())
    return current


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """A connection in one transaction for Alembic (SQLite: foreign keys off, checked after)."""
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:  # before BEGIN: the pragma is a no-op inside a transaction
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                    )
                yield connection
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"a migration broke foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


def _run(engine: Engine, move: str, revision: str) -> None:
    check_not_newer(engine)
    config = alembic_config()
    with _migrating(engine) as connection:
        config.attributes["connection"] = connection
        try:
            if move == "upgrade":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
        except CommandError as exc:
            raise MigrationError(f"cannot {move} to {revision!r}: {exc}") from exc


def upgrade_to_head(engine: Engine) -> None:
    """Upgrade to the newest revision; ``SchemaTooNewError`` if the database is newer."""
    _run(engine, "upgrade", "head")


def upgrade(engine: Engine, revision: str = "head") -> None:
    _run(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Downgrade to ``revision`` (an id, ``base``, or relative like ``-1``)."""
    _run(engine, "downgrade", revision)
