"""The container files agree with each other, with pyproject and with the README.

No Docker engine runs in CI, so these are static checks: the Dockerfile is read
line by line (continuations joined), the compose file with PyYAML.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERIGNORE = ROOT / ".dockerignore"
README = ROOT / "README.md"
PYPROJECT = ROOT / "pyproject.toml"


# ----------------------------------------------------------------------- parsing


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with `\\` continuations joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    buffer = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            buffer += line[:-1].strip() + " "
            continue
        buffer += line
        keyword, _, arguments = buffer.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        buffer = ""
    if buffer:
        keyword, _, arguments = buffer.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The instructions of the last build stage (the image that runs)."""
    starts = [index for index, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert starts, "the Dockerfile has no FROM"
    return instructions[starts[-1] :]


def as_argv(arguments: str) -> list[str]:
    """A CMD/ENTRYPOINT in exec form (JSON array) or shell form, as an argv list."""
    if arguments.startswith("["):
        value = json.loads(arguments)
        assert isinstance(value, list), arguments
        return [str(part) for part in value]
    return shlex.split(arguments)


def env_from(arguments: str) -> dict[str, str]:
    """ENV key=value pairs (several per line allowed) or the legacy `ENV key value`."""
    tokens = shlex.split(arguments)
    if tokens and "=" not in tokens[0]:
        return {tokens[0]: " ".join(tokens[1:])}
    return dict(token.split("=", 1) for token in tokens)


@pytest.fixture(scope="module")
def stage() -> list[tuple[str, str]]:
    return final_stage(dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def compose() -> dict:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict) and document.get("services"), "compose has no services"
    return document


@pytest.fixture(scope="module")
def service(compose: dict) -> dict:
    # The single-machine setup: services outside a profile (the cluster's are in one).
    services = {name: s for name, s in compose["services"].items() if not s.get("profiles")}
    assert len(services) == 1, f"expected one service, got {sorted(services)}"
    return next(iter(services.values()))


def last(stage: list[tuple[str, str]], keyword: str) -> str | None:
    values = [arguments for key, arguments in stage if key == keyword]
    return values[-1] if values else None


def image_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, arguments in stage:
        if keyword == "ENV":
            env.update(env_from(arguments))
    return env


def dockerfile_cmd(stage: list[tuple[str, str]]) -> list[str]:
    cmd = last(stage, "CMD")
    assert cmd is not None, "the Dockerfile has no CMD"
    entrypoint = last(stage, "ENTRYPOINT")
    return (as_argv(entrypoint) if entrypoint else []) + as_argv(cmd)


def compose_cmd(service: dict, stage: list[tuple[str, str]]) -> list[str]:
    """What compose runs: its own `command` if set, else the image's CMD."""
    command = service.get("command")
    if command is None:
        return dockerfile_cmd(stage)
    return list(command) if isinstance(command, list) else shlex.split(command)


def flags(argv: list[str]) -> list[str]:
    return [token.split("=", 1)[0] for token in argv if token.startswith("--")]


def readme_serve_commands() -> list[list[str]]:
    """Every `annlab serve ...` command line the README shows, tokenised."""
    if not README.exists():
        return []
    commands = []
    for line in README.read_text(encoding="utf-8").splitlines():
        match = re.search(r"annlab serve\b[^`|#\n]*", line)
        if match:
            try:
                commands.append(shlex.split(match.group(0)))
            except ValueError:
                commands.append(match.group(0).split())
    return commands


# ---------------------------------------------------------------------- the image


def test_base_image_is_slim_python_311() -> None:
    froms = [
        arguments
        for key, arguments in dockerfile_instructions(DOCKERFILE.read_text())
        if key == "FROM"
    ]
    for base in froms:
        image = base.split()[0]
        assert re.fullmatch(r"python:3\.11[\w.-]*-slim[\w.-]*", image), f"base image {image}"


def test_image_installs_the_project_with_pip_from_the_copied_source() -> None:
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    copies = [
        arguments for key, arguments in instructions if key == "COPY" and "--from" not in arguments
    ]
    assert copies, "no COPY of the source"
    runs = [arguments for key, arguments in instructions if key == "RUN"]
    assert any(re.search(r"\bpip install\b.*(\s\.(\s|$)|\s\./?$)", run + " ") for run in runs), runs


def test_image_runs_as_a_non_root_user(stage: list[tuple[str, str]]) -> None:
    user = last(stage, "USER")
    assert user is not None, "the runtime stage has no USER: it would run as root"
    name = user.split(":", 1)[0]
    assert name not in ("root", "0"), f"USER {user}"


def test_data_dir_is_the_volume(stage: list[tuple[str, str]], service: dict) -> None:
    env = image_env(stage)
    assert env.get("ANNLAB_DATA_DIR") == "/data", env
    volume = last(stage, "VOLUME")
    assert volume is not None, "no VOLUME"
    volumes = as_argv(volume)
    assert "/data" in volumes, volumes
    compose_env = service.get("environment") or {}
    if isinstance(compose_env, list):
        compose_env = dict(item.split("=", 1) for item in compose_env)
    data_dir = compose_env.get("ANNLAB_DATA_DIR", env["ANNLAB_DATA_DIR"])
    mounts = [
        entry if isinstance(entry, str) else f"{entry['source']}:{entry['target']}"
        for entry in service.get("volumes", [])
    ]
    targets = {mount.split(":")[1] for mount in mounts if ":" in mount}
    assert data_dir in targets, f"data dir {data_dir} not mounted: {mounts}"


def test_compose_uses_a_named_volume_for_the_data(compose: dict, service: dict) -> None:
    named = set((compose.get("volumes") or {}).keys())
    sources = [
        (entry.split(":")[0] if isinstance(entry, str) else entry["source"])
        for entry in service.get("volumes", [])
    ]
    assert any(source in named for source in sources), f"volumes {sources}, declared {named}"


def test_port_8000_is_exposed_and_published(stage: list[tuple[str, str]], service: dict) -> None:
    exposed = {
        part.split("/")[0]
        for key, arguments in stage
        if key == "EXPOSE"
        for part in arguments.split()
    }
    assert "8000" in exposed
    assert "8000:8000" in [str(port) for port in service.get("ports", [])]


def test_compose_builds_from_the_repository_and_turns_auth_on(service: dict) -> None:
    build = service.get("build")
    context = build if isinstance(build, str) else (build or {}).get("context")
    assert context in (".", "./"), f"build {build}"
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    # quoted in the file so YAML keeps the string "on" instead of the boolean true
    assert environment.get("ANNLAB_AUTH") == "on", environment


def test_healthcheck_calls_healthz_with_python_urllib(
    stage: list[tuple[str, str]], service: dict
) -> None:
    healthcheck = last(stage, "HEALTHCHECK")
    assert healthcheck is not None, "no HEALTHCHECK"
    assert "CMD" in healthcheck
    command = healthcheck.split("CMD", 1)[1].strip()
    argv = as_argv(command)
    assert argv[0] in ("python", "python3", "/opt/venv/bin/python"), argv
    assert "urllib" in " ".join(argv) and "/healthz" in " ".join(argv), argv
    assert "curl" not in healthcheck and "wget" not in healthcheck
    assert ":8000/healthz" in healthcheck, "the healthcheck must target the port the CMD serves on"
    if "healthcheck" in service:
        test = service["healthcheck"].get("test", [])
        assert "/healthz" in (" ".join(test) if isinstance(test, list) else test)


def test_healthcheck_command_is_valid_python(stage: list[tuple[str, str]]) -> None:
    argv = as_argv(last(stage, "HEALTHCHECK").split("CMD", 1)[1].strip())
    code = argv[argv.index("-c") + 1]
    compile(code, "<healthcheck>", "exec")


# ------------------------------------------------------------------- the command


def test_dockerfile_starts_annlab_serve_on_all_interfaces_port_8000(
    stage: list[tuple[str, str]],
) -> None:
    argv = dockerfile_cmd(stage)
    assert argv[:2] == ["annlab", "serve"], argv
    assert argv[argv.index("--host") + 1] == "0.0.0.0", argv
    assert argv[argv.index("--port") + 1] == "8000", argv


def test_compose_and_dockerfile_start_the_same_command(
    stage: list[tuple[str, str]], service: dict
) -> None:
    assert compose_cmd(service, stage) == dockerfile_cmd(stage)


def test_annlab_is_the_console_script_of_the_project() -> None:
    scripts = tomllib.loads(PYPROJECT.read_text())["project"].get("scripts", {})
    assert "annlab" in scripts, scripts
    module, _, function = scripts["annlab"].partition(":")
    assert module and function, scripts["annlab"]
    source = ROOT / (module.replace(".", "/") + ".py")
    if source.exists():  # the CLI may not be written yet; when it is, the entry must exist
        text = source.read_text()
        assert f"def {function}(" in text or re.search(rf"^{function}\s*=", text, re.M), (
            f"{scripts['annlab']} is not defined in {source}"
        )


def test_command_matches_the_readme() -> None:
    commands = readme_serve_commands()
    if not commands:
        pytest.skip(
            "README does not document `annlab serve` yet (checked against pyproject instead)"
        )
    stage_ = final_stage(dockerfile_instructions(DOCKERFILE.read_text()))
    argv = dockerfile_cmd(stage_)
    documented = {flag for command in commands for flag in flags(command)}
    assert all(command[:2] == ["annlab", "serve"] for command in commands)
    missing = [flag for flag in flags(argv) if flag not in documented]
    assert not missing, (
        f"the image uses {missing}, which the README never shows with `annlab serve`"
    )


def test_command_flags_are_accepted_by_the_cli(stage: list[tuple[str, str]]) -> None:
    executable = shutil.which("annlab") or str(Path(sys.executable).with_name("annlab"))
    if not Path(executable).exists():
        pytest.skip("the annlab command is not installed in this environment")
    result = subprocess.run(
        [executable, "serve", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    for flag in flags(dockerfile_cmd(stage)):
        assert flag in result.stdout, f"`annlab serve --help` does not list {flag}"


# ---------------------------------------------------------------- build context


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    patterns = {
        line.strip().strip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".venv", "data", ".git", ".pytest_cache", "**/__pycache__"):
        assert required in patterns, f".dockerignore lacks {required}"
    for needed in ("core", "app", "migrations", "pyproject.toml", "README.md"):
        assert needed not in patterns, f".dockerignore drops {needed}, which the build needs"
