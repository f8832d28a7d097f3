"""The container files agree with each other, with pyproject, the lock and the README.

Static checks, quick and engine-free (tests/container builds and runs the image
for real): the Dockerfile is read line by line (continuations joined), the
compose file with PyYAML, the lock with `packaging`.
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
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERIGNORE = ROOT / ".dockerignore"
README = ROOT / "README.md"
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements.lock"
NGINX = ROOT / "docker" / "nginx.conf"


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
    services = compose["services"]
    assert "annlab" in services, f"no annlab service: {sorted(services)}"
    return services["annlab"]


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


# ---------------------------------------------------------------------- the image


def all_instructions() -> list[tuple[str, str]]:
    return dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))


def build_stage() -> list[tuple[str, str]]:
    instructions = all_instructions()
    starts = [index for index, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert len(starts) >= 2, "expected a build stage and a runtime stage"
    return instructions[starts[0] : starts[-1]]


def test_base_image_is_slim_python_311() -> None:
    froms = [arguments for key, arguments in all_instructions() if key == "FROM"]
    for base in froms:
        image = base.split()[0]
        assert re.fullmatch(r"python:3\.11[\w.-]*-slim[\w.-]*", image), f"base image {image}"


def test_dependencies_come_from_the_lock_with_hashes_before_the_source() -> None:
    """The cache-friendly order: the lock is copied and installed before any source."""
    stage = build_stage()
    keywords = [(key, arguments) for key, arguments in stage if key in ("COPY", "RUN")]
    lock_copy = next(
        i for i, (k, a) in enumerate(keywords) if k == "COPY" and "requirements.lock" in a
    )
    lock_install = next(
        i for i, (k, a) in enumerate(keywords) if k == "RUN" and "-r requirements.lock" in a
    )
    install = keywords[lock_install][1]
    for flag in ("--require-hashes", "--no-deps", "--only-binary=:all:"):
        assert flag in install, f"the lock install lacks {flag}: {install}"
    source_copies = [
        i
        for i, (k, a) in enumerate(keywords)
        if k == "COPY" and re.search(r"\b(core|app|migrations|pyproject\.toml)\b", a)
    ]
    assert source_copies and lock_copy < lock_install < min(source_copies), keywords
    project = [
        a
        for k, a in keywords[min(source_copies) :]
        if k == "RUN" and re.search(r"install .*\s\.(\s|$)", a)
    ]
    assert project, "the project itself is never installed"
    assert "--no-deps" in project[0] and "--no-index" in project[0], project[0]


def test_the_runtime_stage_copies_the_venv_only(stage: list[tuple[str, str]]) -> None:
    copies = [arguments for key, arguments in stage if key == "COPY"]
    assert copies == ["--from=build /opt/venv /opt/venv"], copies
    runs = " ".join(arguments for key, arguments in stage if key == "RUN")
    for tool in ("pip ", "apt-get", "gcc", "binutils"):
        assert tool not in runs, f"the runtime stage runs {tool.strip()}: {runs}"


def test_the_venv_has_no_installer_and_setuptools_leaves() -> None:
    runs = [arguments for key, arguments in build_stage() if key == "RUN"]
    assert any("venv --without-pip /opt/venv" in run for run in runs), runs
    assert any("uninstall --yes setuptools" in run for run in runs), runs
    env = image_env(build_stage())
    assert env.get("PIP_NO_CACHE_DIR") == "1", env


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
    assert "/data" in as_argv(volume)
    compose_env = service.get("environment") or {}
    data_dir = compose_env.get("ANNLAB_DATA_DIR", env["ANNLAB_DATA_DIR"])
    targets = {entry.split(":")[1] for entry in service.get("volumes", [])}
    assert data_dir in targets, f"data dir {data_dir} not mounted: {service.get('volumes')}"


def test_compose_uses_a_named_volume_for_the_data(compose: dict, service: dict) -> None:
    named = set((compose.get("volumes") or {}).keys())
    sources = [entry.split(":")[0] for entry in service.get("volumes", [])]
    assert any(source in named for source in sources), f"volumes {sources}, declared {named}"


def test_port_8000_is_exposed_and_published(stage: list[tuple[str, str]], service: dict) -> None:
    exposed = {
        part.split("/")[0]
        for key, arguments in stage
        if key == "EXPOSE"
        for part in arguments.split()
    }
    assert "8000" in exposed
    assert image_env(stage)["ANNLAB_PORT"] == "8000"
    ports = [str(port) for port in service.get("ports", [])]
    assert ports == ["${ANNLAB_PUBLISH:-8000}:8000"], ports


def test_compose_runs_the_image_read_only_with_auth_on(service: dict) -> None:
    assert service.get("build") in (".", "./"), service.get("build")
    assert service.get("image") == "${ANNLAB_IMAGE:-annlab:latest}"
    environment = service.get("environment") or {}
    # quoted in the file so YAML keeps the string "on" instead of the boolean true
    assert environment.get("ANNLAB_AUTH") == "on", environment
    assert service.get("read_only") is True and "/tmp" in service.get("tmpfs", [])
    assert service.get("init") is True
    assert service.get("stop_grace_period") == "30s"


def test_the_default_profile_is_annlab_alone(compose: dict) -> None:
    default = [name for name, spec in compose["services"].items() if not spec.get("profiles")]
    assert default == ["annlab"], default
    text = COMPOSE.read_text(encoding="utf-8")
    assert "profile `cluster`" in text, "the compose file lost the marked place for the cluster"


def test_the_tls_profile_proxies_annlab_over_https(compose: dict) -> None:
    tls = compose["services"]["tls"]
    assert tls["profiles"] == ["tls"]
    assert "443:443" in tls["ports"]
    mounts = {entry.split(":")[0]: entry.split(":")[1] for entry in tls["volumes"]}
    assert mounts.get("./docker/nginx.conf", "").startswith("/etc/nginx/conf.d/"), mounts
    config = NGINX.read_text(encoding="utf-8")
    assert config.count("{") == config.count("}"), "unbalanced braces in docker/nginx.conf"
    statements = [
        line.strip()
        for line in config.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    for line in statements:
        assert line.endswith((";", "{", "}")), f"nginx.conf: {line!r} does not end a statement"
    assert "listen 443 ssl;" in statements
    assert "proxy_pass http://annlab:8000;" in statements
    assert "proxy_buffering off;" in statements, "SSE (/events) needs unbuffered proxying"
    size = re.search(r"client_max_body_size (\d+)m;", config)
    from app.config import Settings
    from app.http import UPLOAD_FORM_BYTES

    largest = max(Settings().max_body_bytes, Settings().max_dataset_bytes + UPLOAD_FORM_BYTES)
    assert size and int(size.group(1)) * 2**20 >= largest, (
        f"nginx must let annlab's largest bodies ({largest} bytes: a CSV upload) through"
    )
    for directive in ("ssl_certificate", "ssl_certificate_key"):
        path = re.search(rf"^\s*{directive}\s+(\S+);", config, flags=re.M)
        assert path and path.group(1).startswith("/etc/nginx/certs/"), directive
    assert mounts.get("./docker/certs") == "/etc/nginx/certs"


def test_healthcheck_calls_healthz_on_annlab_port(stage: list[tuple[str, str]]) -> None:
    healthcheck = last(stage, "HEALTHCHECK")
    assert healthcheck is not None and "CMD" in healthcheck, "no HEALTHCHECK"
    argv = as_argv(healthcheck.split("CMD", 1)[1].strip())
    assert argv[0] in ("python", "python3", "/opt/venv/bin/python"), argv
    code = argv[argv.index("-c") + 1]
    compile(code, "<healthcheck>", "exec")
    assert "urllib" in code and "/healthz" in code, code
    assert "curl" not in healthcheck and "wget" not in healthcheck
    assert "os.environ.get('ANNLAB_PORT', '8000')" in code, (
        "the healthcheck must follow ANNLAB_PORT"
    )


# ------------------------------------------------------------------- the command


def test_dockerfile_serves_on_all_interfaces_from_the_environment(
    stage: list[tuple[str, str]],
) -> None:
    """`annlab serve` with no flags: ANNLAB_HOST/ANNLAB_PORT (ENV) decide, so
    `-e ANNLAB_PORT=...` moves the server and the healthcheck together."""
    assert dockerfile_cmd(stage) == ["annlab", "serve"]
    env = image_env(stage)
    assert env["ANNLAB_HOST"] == "0.0.0.0" and env["ANNLAB_PORT"] == "8000", env


def test_the_image_caps_glibcs_malloc_arenas(stage: list[tuple[str, str]]) -> None:
    """A soak grew the server's RSS without the cap (arena fragmentation) and not with
    it; `make run` sets the same default."""
    assert image_env(stage).get("MALLOC_ARENA_MAX") == "2"
    makefile = (ROOT / "Makefile").read_text()
    assert "MALLOC_ARENA_MAX=$${MALLOC_ARENA_MAX:-2}" in makefile


def test_compose_runs_the_images_command(service: dict) -> None:
    assert "command" not in service, "compose should run the image's CMD, not a copy of it"


def test_annlab_is_the_console_script_of_the_project() -> None:
    scripts = tomllib.loads(PYPROJECT.read_text())["project"].get("scripts", {})
    assert "annlab" in scripts, scripts
    module, _, function = scripts["annlab"].partition(":")
    source = ROOT / (module.replace(".", "/") + ".py")
    text = source.read_text()
    assert f"def {function}(" in text or re.search(rf"^{function}\s*=", text, re.M)


def test_serve_reads_host_and_port_from_the_environment() -> None:
    executable = shutil.which("annlab") or str(Path(sys.executable).with_name("annlab"))
    if not Path(executable).exists():
        pytest.skip("the annlab command is not installed in this environment")
    result = subprocess.run(
        [executable, "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    for variable in ("ANNLAB_HOST", "ANNLAB_PORT"):
        assert f"env var: {variable}" in result.stdout, result.stdout


# ---------------------------------------------------------------------- the lock


def lock_pins() -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of requirements.lock."""
    pins: dict[str, tuple[str, int]] = {}
    current = ""
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", line)
        if match:
            current = canonicalize_name(match.group(1))
            pins[current] = (match.group(2), 0)
        elif "--hash=sha256:" in line and current:
            version, count = pins[current]
            pins[current] = (version, count + 1)
    return pins


def test_every_lock_entry_is_pinned_with_hashes() -> None:
    text = LOCK.read_text(encoding="utf-8")
    assert "#    make lock" in text.splitlines()[1], "requirements.lock is made by `make lock`"
    pins = lock_pins()
    assert pins, "requirements.lock is empty"
    entries = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert len(entries) == len(pins), [line for line in entries if "==" not in line]
    unhashed = [name for name, (_, hashes) in pins.items() if hashes == 0]
    assert not unhashed, f"no hashes for {unhashed}"


def test_the_lock_covers_pyproject() -> None:
    """Every dependency (and build requirement) in pyproject is locked at a version
    it allows: a dependency added without `make lock` fails here, not in the image."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    pins = lock_pins()
    wanted = [*project["project"]["dependencies"], *project["build-system"]["requires"]]
    stale = []
    for line in wanted:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        if name not in pins:
            stale.append(f"{line}: not in the lock")
        elif not requirement.specifier.contains(pins[name][0], prereleases=True):
            stale.append(f"{line}: locked at {pins[name][0]}")
        for extra in requirement.extras:  # psycopg[binary] -> psycopg-binary
            if name == "psycopg" and extra == "binary" and "psycopg-binary" not in pins:
                stale.append(f"{line}: psycopg-binary not in the lock")
    assert not stale, "requirements.lock is stale (run `make lock`): " + "; ".join(stale)


def test_plots_libraries_are_pinned_and_locked() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    for name in ("matplotlib", "plotly"):
        pinned = [line for line in dependencies if Requirement(line).name == name]
        assert pinned and "==" in pinned[0], f"{name} is not pinned in pyproject: {pinned}"
        assert lock_pins()[name][0] == pinned[0].split("==")[1]


def test_licence_is_an_spdx_expression_with_a_setuptools_that_reads_it() -> None:
    project = tomllib.loads(PYPROJECT.read_text())
    assert project["project"]["license"] == "MIT"
    for pattern in project["project"]["license-files"]:
        assert list(ROOT.glob(pattern)), f"license-files {pattern} matches nothing"
    setuptools = [r for r in project["build-system"]["requires"] if r.startswith("setuptools")]
    assert setuptools and Requirement(setuptools[0]).specifier.contains("77.0.0")
    assert not Requirement(setuptools[0]).specifier.contains("76.9")


# ---------------------------------------------------------------- build context


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    patterns = {
        line.strip().strip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".venv", "data", ".git", ".pytest_cache", "**/__pycache__", "tests"):
        assert required in patterns, f".dockerignore lacks {required}"
    copied = (
        "core",
        "app",
        "migrations",
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "requirements.lock",
        "wheels",
        "docker",
    )
    for needed in copied:
        assert needed not in patterns, f".dockerignore drops {needed}, which the build needs"
    assert (ROOT / "wheels").is_dir(), "wheels/ (the offline wheelhouse) must exist for COPY"


# ------------------------------------------------------------------- the README


def test_readme_podman_table_is_the_rule_the_container_tests_use() -> None:
    from tests.container.readme import lab_commands, podman_table, translate

    table = podman_table()
    assert table, "the README's lab section has no docker/podman table"
    commands = {re.sub(r"^[A-Z_]+=\$\((.*)\)$", r"\1", command) for command in lab_commands()}
    for docker, podman in table.items():
        if docker in commands:
            assert translate(docker, "podman") == podman, (docker, podman)
    verbs = {" ".join(command.split()[:2]) for command in commands if command.startswith("docker ")}
    listed = {" ".join(docker.split()[:2]) for docker in table}
    assert verbs <= listed, f"docker commands without a podman row: {sorted(verbs - listed)}"


def test_readme_image_tag_is_the_project_version() -> None:
    from tests.container.readme import lab_section

    version = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    assert f"annlab:{version}" in lab_section()
    assert f"annlab:{version}" in DOCKERFILE.read_text()
