"""Backups of the SQLite database with SQLite's online backup API, and restores.

``sqlite3.Connection.backup`` with ``pages=-1`` copies the whole database in one
step under a read transaction: in WAL mode that read does not block the server's
writers, and the copy is one consistent moment (a run's finished weights are in
it or not, never half). The copy is written next to the target file and renamed
into place, so an interrupted backup never leaves a truncated FILE.

PostgreSQL has its own tool: :func:`pg_dump_command` is the line to run.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(ValueError):
    """A backup or restore that cannot be done (wrong database kind, bad file, would overwrite)."""


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for any other database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        raise BackupError("an in-memory database cannot be backed up")
    return Path(parsed.database)


def pg_dump_command(url: str, target: Path) -> str:
    """The pg_dump line for a PostgreSQL URL (driver suffix dropped; restore with pg_restore)."""
    parsed = make_url(url).set(drivername="postgresql")
    plain = parsed.render_as_string(hide_password=True)
    return f"pg_dump --format=custom --no-owner --file {target} '{plain}'"


def _check_database(path: Path) -> str | None:
    """``BackupError`` unless the file is a sound SQLite database; its Alembic revision."""
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
            result = connection.execute("PRAGMA integrity_check").fetchone()
            if result is None or result[0] != "ok":
                raise BackupError(f"{path} fails SQLite's integrity check: {result}")
            tables = {
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if "alembic_version" not in tables:
                raise BackupError(f"{path} is not an annlab database (no alembic_version table)")
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a SQLite database: {exc}") from exc
    return None if row is None else str(row[0])


def _copy(source: Path, target: Path) -> None:
    """Copy with the backup API into a temporary file beside ``target``, then rename."""
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    try:
        with (
            closing(sqlite3.connect(source)) as src,
            closing(sqlite3.connect(partial)) as dst,
        ):
            src.execute("PRAGMA busy_timeout=30000")
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def backup_sqlite(database: Path, target: Path) -> str | None:
    """Back ``database`` up into ``target`` (a consistent copy, safe while runs train);
    returns the copy's migration revision."""
    if not database.is_file():
        raise BackupError(f"no database at {database}")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.resolve() == database.resolve():
        raise BackupError("the backup file is the database itself")
    _copy(database, target)
    return _check_database(target)


def _holds_data(database: Path) -> bool:
    if not database.exists() or database.stat().st_size == 0:
        return False
    with closing(sqlite3.connect(database)) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return any(
            connection.execute(f'SELECT 1 FROM "{table}" LIMIT 1').fetchone() is not None
            for table in tables
            if table != "alembic_version"
        )


def restore_sqlite(backup: Path, database: Path, *, force: bool = False) -> str | None:
    """Put ``backup`` in place of ``database`` (the server must be stopped); refuses to
    replace a database holding rows unless ``force``. Returns the restored revision."""
    from app.db.migrate import SchemaTooNewError, head_revision, revisions_base_to_head

    if not backup.is_file():
        raise BackupError(f"no backup file at {backup}")
    revision = _check_database(backup)
    if revision is not None and revision not in revisions_base_to_head():
        raise BackupError(str(SchemaTooNewError(revision, head_revision())))
    if _holds_data(database) and not force:
        raise BackupError(
            f"{database} already holds data; stop the server and pass --force to replace it"
        )
    database.parent.mkdir(parents=True, exist_ok=True)
    for leftover in (
        database.with_name(database.name + "-wal"),
        database.with_name(database.name + "-shm"),
    ):
        leftover.unlink(missing_ok=True)  # a stale WAL would be replayed over the restore
    _copy(backup, database)
    return revision
