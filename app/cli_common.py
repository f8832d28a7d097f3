"""What every `annlab` client command shares: the options, the two consoles, and how
an answer, a failure and a Ctrl-C during a follow are told to the user.

Human tables go to stdout, progress and notes to stderr, so ``--json`` output
(or a table) can be piped while the bar stays on the terminal.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer
from pydantic import BaseModel
from rich.console import Console, RenderableType

from app.client import ApiError
from app.client_types import Run

#: Exit code of a follow detached by Ctrl-C (the shell's 128 + SIGINT).
DETACHED = 130

UrlOption = Annotated[
    str | None,
    typer.Option("--url", envvar="ANNLAB_URL", help="The server (default http://127.0.0.1:8000)."),
]
KeyOption = Annotated[
    str | None,
    typer.Option("--key", envvar="ANNLAB_API_KEY", help="API key (with ANNLAB_AUTH=on)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON, for scripts.")]
RunArgument = Annotated[str, typer.Argument(help="The run's id.", metavar="RUN")]
CancelOption = Annotated[
    bool,
    typer.Option(
        "--cancel-on-interrupt", help="Ctrl-C cancels the run instead of detaching from it."
    ),
]


#: Width of tables written to a pipe or file (rich's default there, 80, cuts ids short).
PIPE_WIDTH = 200


def stdout() -> Console:
    return Console(highlight=False, width=None if sys.stdout.isatty() else PIPE_WIDTH)


def stderr() -> Console:
    return Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else PIPE_WIDTH)


def fail(message: str, code: int = 1) -> NoReturn:
    stderr().print(f"[red]error:[/] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


def echo_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, default=str))


def answer(value: BaseModel, as_json: bool, human: RenderableType) -> None:
    """Every command's answer: the API's JSON with ``--json`` (for scripts), else the
    ``human`` line or table on stdout."""
    if as_json:
        echo_json(value.model_dump(mode="json"))
    else:
        stdout().print(human)


def detach_or_cancel(
    err: Console, *, cancel_on_interrupt: bool, detached: str, cancel: Callable[[], object]
) -> bool:
    """What Ctrl-C during a follow does: without ``--cancel-on-interrupt``, print
    ``detached`` (what goes on, how to re-attach) and exit 130; with it, ``cancel()``:
    True if it did, False on a 409 (it had finished meanwhile; the caller reports how)."""
    if not cancel_on_interrupt:
        err.print(detached)
        raise typer.Exit(DETACHED) from None
    try:
        cancel()
    except ApiError as exc:
        if exc.status != 409:
            raise
        return False
    return True


def exit_for(run: Run) -> None:
    """Exit 1 for a run that ended other than succeeded (scripts test the exit code)."""
    if run.status != "succeeded":
        raise typer.Exit(1)
