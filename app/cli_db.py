"""``annlab db``: the database's migrations, by hand (the server upgrades to head on start).

Use it to roll an upgrade back (``annlab db downgrade 0002`` with the *newer*
annlab, which knows how to undo its own migrations, before starting the older
one), or to migrate before starting the server. Back up first (``annlab backup``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.config import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

db_cli = typer.Typer(
    help="The database schema: current revision, upgrade, downgrade.", no_args_is_help=True
)

DataDirOption = Annotated[
    Path | None, typer.Option(help="Data directory (default ANNLAB_DATA_DIR or ./data).")
]


@contextmanager
def _engine(data_dir: Path | None) -> Iterator[Engine]:
    from app.db.engine import make_engine

    settings = Settings(data_dir=data_dir) if data_dir is not None else Settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _move(data_dir: Path | None, move: str, revision: str) -> None:
    from app.db import migrate

    with _engine(data_dir) as engine:
        before = migrate.current_revision(engine)
        try:
            if move == "upgrade":
                migrate.upgrade(engine, revision)
            else:
                migrate.downgrade(engine, revision)
        except (migrate.SchemaTooNewError, migrate.MigrationError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=1) from None
        after = migrate.current_revision(engine)
    if before == after:
        typer.echo(f"already at {after or 'base'}; nothing to do")
    else:
        typer.echo(f"{move}d the database from {before or 'base'} to {after or 'base'}")


@db_cli.command("current")
def current(data_dir: DataDirOption = None) -> None:
    """The database's revision, and whether it is this code's newest (head)."""
    from app.db import migrate

    with _engine(data_dir) as engine:
        revision = migrate.current_revision(engine)
    head = migrate.head_revision()
    known = migrate.revisions_base_to_head()
    if revision == head:
        note = "(head)"
    elif revision is None:
        note = f"(empty database; head is {head})"
    elif revision in known:
        note = f"(behind: head is {head}; `annlab db upgrade` or start the server)"
    else:
        note = f"(NEWER than this annlab, whose head is {head})"
    typer.echo(f"{revision or 'base'} {note}")


@db_cli.command("upgrade")
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision (default: head).")] = "head",
    data_dir: DataDirOption = None,
) -> None:
    """Upgrade the schema to REVISION (default head), keeping every row."""
    _move(data_dir, "upgrade", revision)


@db_cli.command("downgrade")
def downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision: an id, -1, or base.")],
    data_dir: DataDirOption = None,
) -> None:
    """Downgrade the schema to REVISION (what the newer revisions added is dropped)."""
    _move(data_dir, "downgrade", revision)


def backup(
    file: Annotated[Path, typer.Argument(help="Where to write the backup (a SQLite file).")],
    data_dir: DataDirOption = None,
) -> None:
    """Back the database up into FILE: a consistent copy, safe while runs train.

    SQLite only (its online backup API); for PostgreSQL the pg_dump line is printed."""
    from app.db.backup import BackupError, backup_sqlite, pg_dump_command, sqlite_path
    from app.services.audit import record_in_database

    settings = Settings(data_dir=data_dir) if data_dir is not None else Settings()
    url = settings.resolved_database_url
    try:
        database = sqlite_path(url)
        if database is None:
            typer.echo(
                "error: annlab backup copies SQLite databases; for PostgreSQL run:", err=True
            )
            typer.echo(pg_dump_command(url, file))
            raise typer.Exit(code=2)
        revision = backup_sqlite(database, file)
    except BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    # After the copy, in the live database (the backup itself does not list itself).
    record_in_database(
        url, action="backup.taken", target=str(file.resolve()), detail={"migration": revision}
    )
    typer.echo(
        f"backed up {database} to {file} ({file.stat().st_size} bytes, migration {revision})"
    )


def restore(
    file: Annotated[Path, typer.Argument(help="A file written by `annlab backup`.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace a database that already holds data.")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Restore FILE as the data directory's database (stop the server first).

    Refuses to replace a database holding data unless --force. On its next start the
    server migrates an older backup to head and requeues runs that were running."""
    from app.db.backup import BackupError, restore_sqlite, sqlite_path
    from app.services.audit import record_in_database

    settings = Settings(data_dir=data_dir) if data_dir is not None else Settings()
    try:
        database = sqlite_path(settings.resolved_database_url)
        if database is None:
            raise BackupError(
                "annlab restore writes SQLite databases; for PostgreSQL use "
                "pg_restore --clean --no-owner --dbname URL FILE"
            )
        revision = restore_sqlite(file, database, force=force)
    except BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    # In the restored database, when its schema has the audit table (a backup older
    # than migration 0007 gets it from the server's upgrade at the next start).
    record_in_database(
        settings.resolved_database_url,
        action="backup.restored",
        target=str(file.resolve()),
        detail={"migration": revision, "force": force},
    )
    typer.echo(f"restored {file} into {database} (migration {revision})")


def register(cli: typer.Typer) -> None:
    """``annlab db ...``, ``annlab backup FILE`` and ``annlab restore FILE``."""
    cli.add_typer(db_cli, name="db")
    cli.command("backup")(backup)
    cli.command("restore")(restore)
