"""``annlab audit``: the audit table of user and admin actions, newest first.

Read straight from the server's database (same settings as ``annlab users``), like
every admin command: it needs the machine, not an API key."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from app.config import Settings

DataDirOption = Annotated[
    Path | None, typer.Option(help="Data directory (default ANNLAB_DATA_DIR or ./data).")
]

#: ``30m``, ``12h``, ``7d``, ``2w``: a moment that long ago.
RELATIVE = re.compile(r"(\d+)\s*([smhdw])")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
SINCE_HELP = (
    "Only events at or after this moment: an ISO 8601 date or time in UTC "
    "(2026-12-01, 2026-12-01T14:30) or an age (30m, 12h, 7d, 2w)."
)


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``--since``'s moment, in UTC; ``typer.BadParameter`` naming the accepted forms."""
    now = now or datetime.now(UTC)
    relative = RELATIVE.fullmatch(text.strip().lower())
    if relative:
        amount, unit = relative.groups()
        return now - timedelta(**{UNITS[unit]: int(amount)})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither an ISO 8601 date or time (2026-12-01, 2026-12-01T14:30) "
            "nor an age (30m, 12h, 7d, 2w)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def audit(
    user: Annotated[
        str | None, typer.Option("--user", help="Only events done by or concerning this user.")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help=SINCE_HELP)] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=100_000, help="At most this many events.")
    ] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list, for scripts.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Who did what: users created, rotated, revoked, deleted; runs submitted, stopped,
    cancelled, deleted; datasets, experiments, models and aliases; backups, restores.

    Newest first. The actor `cli` is an admin command run on the server's machine."""
    from sqlalchemy import inspect

    from app.db.audit import list_events
    from app.db.engine import make_engine, make_session_factory

    moment = parse_since(since) if since is not None else None
    settings = Settings(data_dir=data_dir) if data_dir is not None else Settings()
    shown = settings.resolved_database_url.rpartition("@")[2]
    engine = make_engine(settings.resolved_database_url)
    try:
        if not inspect(engine).has_table("audit_events"):
            typer.echo(
                f"error: {shown} has no audit table: point --data-dir / ANNLAB_DATABASE_URL "
                "at the server's database, or upgrade it (annlab db upgrade)",
                err=True,
            )
            raise typer.Exit(code=1)
        with make_session_factory(engine)() as session:
            events = [
                {
                    "at": row.at.isoformat(),
                    "actor": row.actor,
                    "action": row.action,
                    "user": row.subject,
                    "target": row.target,
                    "detail": row.detail,
                }
                for row in list_events(session=session, user=user, since=moment, limit=limit)
            ]
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(events, ensure_ascii=False))
        return
    if not events:
        typer.echo("no audit events match", err=True)
        return
    _print_table(events)


def _print_table(events: list[dict[str, Any]]) -> None:
    header = ("TIME (UTC)", "ACTOR", "ACTION", "USER", "TARGET", "DETAIL")
    rows = [
        (
            event["at"][:19].replace("T", " "),
            event["actor"],
            event["action"],
            event["user"] or "-",
            event["target"] or "-",
            json.dumps(event["detail"], ensure_ascii=False, separators=(",", ":"))
            if event["detail"]
            else "",
        )
        for event in events
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        typer.echo("  ".join([*cells, row[-1]]).rstrip())


def register(cli: typer.Typer) -> None:
    cli.command("audit")(audit)
