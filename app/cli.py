"""The ``annlab`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.config import Settings

cli = typer.Typer(help="annlab: train small neural networks over HTTP.", no_args_is_help=True)


@cli.callback()
def _root() -> None:
    """annlab: train small neural networks over HTTP."""


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default ANNLAB_WORKERS or cores - 1).")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Data directory (default ANNLAB_DATA_DIR or ./data).")
    ] = None,
) -> None:
    """Serve the API (and train runs in worker processes) until SIGTERM or Ctrl-C."""
    import uvicorn

    from app.main import create_app

    overrides: dict[str, object] = {}
    if workers is not None:
        overrides["workers"] = workers
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    settings = Settings(**overrides)  # type: ignore[arg-type]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = settings.resolved_database_url
    shown = database.split("@")[-1] if "@" in database else database
    typer.echo(
        f"annlab listening on http://{host}:{port} "
        f"(workers: {settings.workers}, data: {settings.data_dir.resolve()}, database: {shown})",
    )
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        timeout_graceful_shutdown=3,
        log_level="info",
    )


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
