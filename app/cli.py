"""The ``annlab`` command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from app.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

cli = typer.Typer(help="annlab: train small neural networks over HTTP.", no_args_is_help=True)


@cli.callback()
def _root() -> None:
    """annlab: train small neural networks over HTTP."""


DataDirOption = Annotated[
    Path | None, typer.Option(help="Data directory (default ANNLAB_DATA_DIR or ./data).")
]


def _settings(*, workers: int | None, data_dir: Path | None) -> Settings:
    """The environment's settings with the command line's options on top."""
    overrides: dict[str, object] = {}
    if workers is not None:
        overrides["workers"] = workers
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    return Settings.model_validate(overrides)


def _check_cluster(settings: Settings) -> None:
    """ANNLAB_EXECUTOR=celery with a SQLite database or no broker: a clear refusal."""
    if settings.executor != "celery":
        return
    from app.jobs.celery_app import ClusterSettingsError, check_settings

    try:
        check_settings(settings)
    except ClusterSettingsError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


def _database_shown(settings: Settings) -> str:
    """The database URL without its credentials."""
    return settings.resolved_database_url.rpartition("@")[2]


@cli.command()
def serve(
    host: Annotated[str, typer.Option(envvar="ANNLAB_HOST", help="Interface to listen on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(envvar="ANNLAB_PORT", help="TCP port.")] = 8000,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default ANNLAB_WORKERS or cores - 1).")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Serve the API (and train runs in worker processes) until SIGTERM or Ctrl-C."""
    import uvicorn

    from app.main import create_app

    settings = _settings(workers=workers, data_dir=data_dir)
    _check_cluster(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    typer.echo(
        f"annlab listening on http://{host}:{port} (workers: {settings.workers}, "
        f"data: {settings.data_dir.resolve()}, database: {_database_shown(settings)})",
    )
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        timeout_graceful_shutdown=3,
        log_level="info",
    )


@cli.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency", "-c", min=1, help="Worker processes (default ANNLAB_WORKERS)."
        ),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Train queued runs from the server's database, without serving HTTP.

    Pair it with a server started with ANNLAB_EXECUTOR=none (or add it to one that
    trains too). SIGTERM or Ctrl-C pauses the running runs and requeues them."""
    import logging

    from app.jobs.standalone import run_pool

    settings = _settings(workers=concurrency, data_dir=data_dir)
    _check_cluster(settings)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s %(message)s")
    if settings.executor == "celery":
        from app.jobs.celery_app import run_worker

        typer.echo(
            f"annlab worker (celery): {settings.workers} process(es) on "
            f"{_database_shown(settings)}, queue {settings.celery_queue!r}",
            err=True,
        )
        run_worker(settings, concurrency=settings.workers)
        return
    typer.echo(
        f"annlab worker: {settings.workers} process(es) on {_database_shown(settings)}", err=True
    )
    run_pool(settings)


# ------------------------------------------------------------------------ users

users_cli = typer.Typer(
    help="Users and their API keys (needed when the server runs with ANNLAB_AUTH=on).",
    no_args_is_help=True,
)
cli.add_typer(users_cli, name="users")


@contextmanager
def _database(data_dir: Path | None) -> Iterator[Session]:
    """A session on the server's database (same settings), migrated to the latest
    revision first; committed at the end of the block."""
    from app.db.engine import make_engine, make_session_factory, transaction
    from app.db.migrate import upgrade_to_head

    settings = Settings(data_dir=data_dir) if data_dir is not None else Settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        upgrade_to_head(engine)
        with transaction(make_session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else "-"


@users_cli.command("create")
def create_user(
    name: Annotated[str, typer.Argument(help="The user's name (unique; letters, digits, ._@+-).")],
    admin: Annotated[
        bool, typer.Option("--admin", help="Sees and manages every user's data.")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Create a user and print their API key (shown this once).

    Only a hash of the key is stored: a lost key cannot be recovered; revoke the
    user and create another. The key goes to stdout alone, the message to stderr,
    so `KEY=$(annlab users create alice)` works."""
    from sqlalchemy.exc import IntegrityError

    from app.db.users import UserError
    from app.db.users import create_user as store_user

    try:
        with _database(data_dir) as session:
            created = store_user(session=session, name=name, is_admin=admin)
    except UserError as exc:
        _fail(str(exc))
    except IntegrityError:  # created by someone else between our check and our insert
        _fail(f"a user named {name!r} already exists")
    role = "admin" if admin else "user"
    typer.echo(
        f"created {role} {name!r}; their API key is below. It is shown only now: "
        "store it safely and send it as `Authorization: Bearer KEY`.",
        err=True,
    )
    typer.echo(created.key)


@users_cli.command("list")
def list_users(data_dir: DataDirOption = None) -> None:
    """Every user: name, admin, created, revoked (never keys: only their hashes are stored)."""
    from app.db.users import list_users as stored_users

    with _database(data_dir) as session:
        rows = [
            (
                user.name,
                "yes" if user.is_admin else "no",
                _when(user.created_at),
                _when(user.revoked_at),
            )
            for user in stored_users(session=session)
        ]
    if not rows:
        typer.echo("no users yet: annlab users create NAME [--admin]", err=True)
        return
    header = ("NAME", "ADMIN", "CREATED", "REVOKED")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@users_cli.command("revoke")
def revoke_user(
    name: Annotated[str, typer.Argument(help="The user whose key stops working.")],
    data_dir: DataDirOption = None,
) -> None:
    """Revoke a user's key: their next request is a 401.

    Their datasets and runs stay (admins still see them); the name stays taken."""
    from app.db.users import UserError
    from app.db.users import revoke_user as store_revoke

    try:
        with _database(data_dir) as session:
            user, revoked_now = store_revoke(session=session, name=name)
    except UserError as exc:
        _fail(str(exc))
    if revoked_now:
        typer.echo(f"revoked {name!r}: their key no longer works")
    else:
        typer.echo(f"{name!r} was already revoked on {_when(user.revoked_at)}")


# ----------------------------------------------------------------- more commands
# Command groups defined in other modules register on ``cli`` here, one line each.
from app.cli_client import register as register_client_commands  # noqa: E402

register_client_commands(cli)  # submit, follow, runs, show, ..., experiment, models


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
