"""The README's "Running it for a lab" commands, as the container tests run them.

The tests do not keep their own copy of the procedure: they take each command
from the README's ```sh blocks by its beginning (`lab_command("docker run -d")`)
and run it with three mechanical changes so a test never touches a real
deployment: the test's own container, volume and image names, and a loopback
port of the test range instead of 8000. With podman, `docker` becomes the
podman command of the README's table (`translate`), which the static tests
check against the table itself.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Running it for a lab"


def lab_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end != -1 else len(text)]


def lab_commands() -> list[str]:
    """Every command line of the section's ```sh blocks: continuations joined,
    comments and blank lines dropped."""
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", lab_section(), flags=re.S):
        buffer = ""
        for raw in block.splitlines():
            line = raw.rstrip()
            if line.endswith("\\"):
                buffer += line[:-1].strip() + " "
                continue
            line = (buffer + line.strip()).strip()
            buffer = ""
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def lab_command(prefix: str) -> str:
    """The one README command that starts with `prefix` (after any `VAR=$(` or
    `VAR=value ` before it)."""
    found = [c for c in lab_commands() if _inner(c).startswith(prefix)]
    assert len(found) == 1, f"README lab section: {len(found)} commands start with {prefix!r}"
    return found[0]


def _inner(command: str) -> str:
    match = re.fullmatch(r"[A-Z_]+=\$\((.*)\)", command)
    return _split_assignments(match.group(1) if match else command)[1]


_ASSIGNMENTS = re.compile(r"((?:[A-Z_]+=[^\s$]\S*\s+)+)(.*)")


def _split_assignments(command: str) -> tuple[dict[str, str], str]:
    """`ANNLAB_WORKERS=4 docker compose ...`: the variables, and the command after them."""
    match = _ASSIGNMENTS.fullmatch(command)
    if not match:
        return {}, command
    pairs = (word.partition("=") for word in match.group(1).split())
    return {key: value for key, _, value in pairs}, match.group(2)


def env_of(command: str) -> dict[str, str]:
    """The variables a README command sets before it (`ANNLAB_WORKERS=4 docker ...`)."""
    return _split_assignments(command)[0]


def podman_table() -> dict[str, str]:
    """The README's table of docker commands and their podman equivalents."""
    rows: dict[str, str] = {}
    for line in lab_section().splitlines():
        cells = re.findall(r"`([^`]+)`", line)
        if line.startswith("|") and len(cells) == 2 and cells[0].startswith("docker"):
            rows[cells[0]] = cells[1]
    return rows


def translate(command: str, engine: str) -> str:
    """A docker command as podman runs it (the README's table, by rule)."""
    if engine == "docker":
        return command
    if command.startswith("docker compose "):
        return "podman-compose " + command.removeprefix("docker compose ")
    if command.startswith("docker build "):
        return "podman build --format docker " + command.removeprefix("docker build ")
    if re.fullmatch(r"docker inspect --format '\{\{\.State\.Health\.Status\}\}' (\S+)", command):
        return "podman healthcheck run " + command.split()[-1]
    return "podman " + command.removeprefix("docker ")


@dataclass
class Names:
    """What a test substitutes for the README's names."""

    container: str
    volume: str
    image: str  # stands for annlab:latest
    image_versioned: str  # stands for annlab:VERSION
    port: int
    project: str = ""


CONTAINER_VERBS = {"stop", "start", "inspect", "logs", "rm", "restart", "kill"}


def argv_for(command: str, engine: str, names: Names, compose: list[str]) -> list[str]:
    """The README command as an argv for this engine, with the test's names."""
    argv = shlex.split(translate(_inner(command), engine))
    if argv[0] == "podman-compose" or argv[:2] == ["docker", "compose"]:
        rest = argv[1:] if argv[0] == "podman-compose" else argv[2:]
        return [*compose, "-p", names.project, *rest]
    out: list[str] = []
    verb = argv[1] if argv[1] != "healthcheck" else "healthcheck"
    expect_container = False
    for index, token in enumerate(argv):
        previous = argv[index - 1] if index else ""
        if previous == "--name" and token == "annlab":
            token = names.container
        elif token.startswith("annlab-data"):
            token = names.volume + token.removeprefix("annlab-data")
        elif re.fullmatch(r"annlab:latest", token):
            token = names.image
        elif re.fullmatch(r"annlab:\d[\w.]*", token):
            token = names.image_versioned
        elif previous == "-p" and token.endswith(":8000"):
            token = f"127.0.0.1:{names.port}:8000"
        elif token == "annlab" and (verb in CONTAINER_VERBS or verb == "healthcheck"):
            token = names.container
        elif verb == "exec" and token == "annlab" and expect_container:
            token = names.container
            expect_container = False
        if verb == "exec" and index == 1:
            expect_container = True
        out.append(token)
    return out
