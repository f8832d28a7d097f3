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


def _startup_line(settings: Settings, *, host: str, port: int) -> str:
    """What an operator needs to see first: where, whether keys are needed, which
    database, and who trains."""
    auth = "on (API keys required)" if settings.auth else "off (every request is the local admin)"
    trainers = (
        f"{settings.workers} worker(s)"
        if settings.executor != "none"
        else "no local workers (ANNLAB_EXECUTOR=none: start `annlab worker`)"
    )
    return (
        f"annlab listening on http://{host}:{port} (auth: {auth}; database: "
        f"{_database_shown(settings)}; {trainers}; data: {settings.data_dir.resolve()})"
    )


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
    from app.web_security import CorsSettingError

    settings = _settings(workers=workers, data_dir=data_dir)
    _check_cluster(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _refuse_newer_database(settings)
    try:
        app = create_app(settings)
    except CorsSettingError as exc:
        _fail(f"annlab serve refuses to start: {exc}")
    typer.echo(_startup_line(settings, host=host, port=port))
    uvicorn.run(
        app,
        host=host,
        port=port,
        timeout_graceful_shutdown=3,
        log_level="info",
    )


def _refuse_newer_database(settings: Settings) -> None:
    """Exit 1 with both revisions named when a newer annlab migrated the database."""
    from app.db.engine import make_engine
    from app.db.migrate import SchemaTooNewError, check_not_newer

    engine = make_engine(settings.resolved_database_url)
    try:
        check_not_newer(engine)
    except SchemaTooNewError as exc:
        _fail(f"annlab serve refuses to start: {exc}")
    finally:
        engine.dispose()


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


def _users_settings(data_dir: Path | None) -> Settings:
    return Settings(data_dir=data_dir) if data_dir is not None else Settings()


@contextmanager
def _database(data_dir: Path | None, *, create: bool = True) -> Iterator[Session]:
    """A session on the server's database (same settings), migrated to the latest
    revision first; committed at the end of the block. ``create`` False: fail, naming
    the database, when it has no annlab tables yet (a mistyped data dir or URL would
    otherwise get a new, empty database that the server never reads)."""
    from sqlalchemy import inspect

    from app.db.engine import make_engine, make_session_factory, transaction
    from app.db.migrate import upgrade_to_head

    settings = _users_settings(data_dir)
    url = settings.resolved_database_url
    if not create and url.startswith("sqlite:///") and not Path(url[10:]).exists():
        _fail(
            f"no annlab database at {_database_shown(settings)}: pass --create to create a new "
            "one, or point ANNLAB_DATA_DIR / ANNLAB_DATABASE_URL / --data-dir at the server's"
        )
    if create and settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        if not create and not inspect(engine).has_table("alembic_version"):
            _fail(
                f"{_database_shown(settings)} holds no annlab tables: pass --create to create "
                "them, or point ANNLAB_DATABASE_URL / --data-dir at the server's database"
            )
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
    create: Annotated[
        bool, typer.Option("--create", help="Create the database if it does not exist yet.")
    ] = False,
) -> None:
    """Create a user and print their API key (shown this once).

    Only a hash of the key is stored: a lost key cannot be recovered; revoke the
    user and create another. The key goes to stdout alone, the message to stderr,
    so `KEY=$(annlab users create alice)` works."""
    from sqlalchemy.exc import IntegrityError

    from app.db.users import UserError
    from app.services.users import create_user as store_user

    try:
        with _database(data_dir, create=create) as session:
            created = store_user(session=session, name=name, is_admin=admin)
    except UserError as exc:
        _fail(str(exc))
    except IntegrityError:  # created by someone else between our check and our insert
        _fail(f"a user named {name!r} already exists")
    role = "admin" if admin else "user"
    typer.echo(
        f"created {role} {name!r} in {_database_shown(_users_settings(data_dir))}; their API "
        "key is below. It is shown only now: store it safely and send it as "
        "`Authorization: Bearer KEY`.",
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
    """Revoke a user's key: their next request is a 401; their queued runs are cancelled.

    Their datasets and runs stay (admins still see them); the name stays taken."""
    from app.db.users import UserError
    from app.services.users import revoke_user as store_revoke

    try:
        with _database(data_dir) as session:
            user, revoked_now, cancelled = store_revoke(session=session, name=name)
    except UserError as exc:
        _fail(str(exc))
    if revoked_now:
        typer.echo(f"revoked {name!r}: their key no longer works")
    else:
        typer.echo(f"{name!r} was already revoked on {_when(user.revoked_at)}")
    if cancelled:
        typer.echo(f"cancelled {cancelled} queued run(s) of {name!r}")


@users_cli.command("rotate")
def rotate_key(
    name: Annotated[str, typer.Argument(help="The user who gets a new key.")],
    data_dir: DataDirOption = None,
) -> None:
    """Give a user a new API key (printed alone on stdout); the old key stops at once."""
    from app.db.users import UserError
    from app.services.users import rotate_key as store_rotate

    try:
        with _database(data_dir) as session:
            rotated = store_rotate(session=session, name=name)
    except UserError as exc:
        _fail(str(exc))
    typer.echo(
        f"new key for {name!r} below (shown only now); the old key no longer works", err=True
    )
    typer.echo(rotated.key)


@users_cli.command("delete")
def delete_user(
    name: Annotated[str, typer.Argument(help="The user to delete.")],
    purge: Annotated[
        bool, typer.Option("--purge", help="Delete their runs and datasets too.")
    ] = False,
    wait: Annotated[
        float, typer.Option(help="Seconds --purge waits for their running runs to stop.")
    ] = 30.0,
    data_dir: DataDirOption = None,
) -> None:
    """Delete a user and cancel their queued runs. Their runs and datasets are kept,
    owned by the local admin (every admin sees them), unless --purge deletes them."""
    import time

    from app.db.users import UserError
    from app.services.users import delete_user as store_delete

    deadline = time.monotonic() + wait
    while True:
        try:
            with _database(data_dir) as session:
                done = store_delete(session=session, name=name, purge=purge)
        except UserError as exc:
            _fail(str(exc))
        if not done.still_running:
            break
        if time.monotonic() > deadline:
            _fail(
                f"runs of {name!r} still running after {wait:g} s: {', '.join(done.still_running)}"
            )
        time.sleep(0.2)  # their workers stop at the next mini-batch boundary
    fate = "deleted" if purge else "kept for the admins"
    typer.echo(
        f"deleted {name!r}: {done.runs} run(s) and {done.datasets} dataset(s) {fate}"
        + (f"; {done.cancelled} queued run(s) cancelled" if done.cancelled else "")
    )


# ----------------------------------------------------------------- more commands
# Command groups defined in other modules register on ``cli`` here, one line each.
from app.cli_client import register as register_client_commands  # noqa: E402

register_client_commands(cli)  # submit, follow, runs, show, ..., experiment, models
from app.cli_db import register as register_db_commands  # noqa: E402

register_db_commands(cli)  # db current | upgrade | downgrade, backup, restore
from app.cli_audit import register as register_audit_command  # noqa: E402

register_audit_command(cli)  # audit [--user NAME] [--since WHEN] [--limit N]


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
