"""Which container engine runs the image here, and how to call it.

docker when its daemon answers; else podman when it works and the base image is
there or can be pulled; else podman prepared by the machine helper
`shared/tools/container-env` (installs podman, runc and debootstrap, makes a
local stand-in for `python:3.11-slim`), found in an ancestor folder of the
repository (CI lays shared/ beside the clone). The helper's folder is fixed
(`ANNLAB_CONTAINER_DIR`, default /tmp/annlab-containers), so the base image and
the build cache survive between runs. `ANNLAB_CONTAINER_ENGINE=docker|podman`
forces a choice. `Engine.unavailable` says why none can run (the tests skip).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "python:3.11-slim"
CONTAINER_DIR = Path(os.environ.get("ANNLAB_CONTAINER_DIR", "/tmp/annlab-containers"))


@dataclass
class Engine:
    """An engine binary, the environment it needs, and its compose command."""

    name: str = ""
    env: dict[str, str] = field(default_factory=dict)
    compose: list[str] = field(default_factory=list)
    # Extra `build` flags: the stand-in base is local only (--pull=never), and its
    # Debian pip trusts the host's certificate store (mounted into RUN steps).
    build_flags: list[str] = field(default_factory=list)
    prepared_seconds: float = 0.0
    unavailable: str = ""

    def run(
        self, argv: list[str], *, timeout: float = 120, check: bool = True, env: dict | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run one engine (or compose) command line; a failure shows its output."""
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **self.env, **(env or {})},
            cwd=ROOT,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {result.returncode}\n"
                f"stdout: {result.stdout[-3000:]}\nstderr: {result.stderr[-3000:]}"
            )
        return result


def _works(argv: list[str], env: dict[str, str] | None = None) -> bool:
    try:
        return (
            subprocess.run(
                argv,
                capture_output=True,
                timeout=60,
                env={**os.environ, **(env or {})},
                check=False,
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def _container_env_tool() -> Path | None:
    override = os.environ.get("ANNLAB_CONTAINER_ENV_TOOL")
    if override:
        return Path(override)
    for folder in ROOT.parents:
        tool = folder / "shared" / "tools" / "container-env"
        if tool.is_file():
            return tool
    return None


def _podman_compose() -> list[str]:
    beside = Path(sys.executable).with_name("podman-compose")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("podman-compose")
    return [found] if found else []


def _docker_compose() -> list[str]:
    if _works(["docker", "compose", "version"]):
        return ["docker", "compose"]
    found = shutil.which("docker-compose")
    return [found] if found else []


def _prepare_podman() -> Engine:
    """podman as it is, or prepared by container-env with the local stand-in base."""
    compose = _podman_compose()
    if (
        shutil.which("podman")
        and _works(["podman", "info"])
        and (
            _works(["podman", "image", "exists", BASE_IMAGE])
            or _works(["podman", "pull", "-q", f"docker.io/library/{BASE_IMAGE}"])
        )
    ):
        # the host's certificates: this network's TLS goes through a proxy that the
        # base image's own bundle does not trust
        certs = ["-v", "/etc/ssl/certs:/etc/ssl/certs:ro"] if Path("/etc/ssl/certs").is_dir() else []
        return Engine(name="podman", compose=compose, build_flags=["--format", "docker", *certs])
    tool = _container_env_tool()
    if tool is None:
        return Engine(
            unavailable="no docker daemon answers, podman cannot get the base image, and "
            "shared/tools/container-env (to prepare podman) is not beside the repository"
        )
    if os.geteuid() != 0:
        return Engine(unavailable=f"{tool} needs root (apt-get, debootstrap); this is not root")
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(tool), str(CONTAINER_DIR)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if result.returncode != 0:
        return Engine(unavailable=f"{tool} failed: {result.stderr[-2000:]}")
    env: dict[str, str] = {}
    for line in result.stdout.splitlines():
        if line.startswith("export "):
            for assignment in line.removeprefix("export ").split():
                key, _, value = assignment.partition("=")
                env[key] = value
    engine = Engine(
        name="podman",
        env=env,
        compose=compose,
        build_flags=[
            "--format",
            "docker",
            "--pull=never",
            "-v",
            "/etc/ssl/certs:/etc/ssl/certs:ro",
        ],
        prepared_seconds=time.monotonic() - started,
    )
    if not _works(["podman", "info"], env):
        return Engine(unavailable="podman prepared by container-env does not run here")
    return engine


def find_engine() -> Engine:
    forced = os.environ.get("ANNLAB_CONTAINER_ENGINE", "")
    if forced not in ("", "docker", "podman"):
        return Engine(unavailable=f"ANNLAB_CONTAINER_ENGINE={forced!r}: use docker or podman")
    if forced in ("", "docker") and shutil.which("docker") and _works(["docker", "info"]):
        return Engine(name="docker", compose=_docker_compose())
    if forced == "docker":
        return Engine(unavailable="ANNLAB_CONTAINER_ENGINE=docker but no docker daemon answers")
    return _prepare_podman()
