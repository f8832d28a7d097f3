"""The compose file brought up for real (the default profile), as the README says.

`docker compose up -d` (podman-compose with podman) under a project name of
the test's own, the image the session built (ANNLAB_IMAGE) and a loopback port
(ANNLAB_PUBLISH); then a key from `exec -T`, an authenticated call, and `down`.
"""

from __future__ import annotations

import re

import httpx
import pytest

from tests.container.conftest import COMPOSE_PORT, FIGURES
from tests.container.engine import Engine
from tests.container.readme import Names, argv_for, lab_command
from tests.container.test_lab import KEY, wait_healthy

# The first test of the session also waits for the image build (cold: minutes).
pytestmark = [pytest.mark.container, pytest.mark.timeout(1800)]


def test_compose_up_serves_with_keys_and_comes_down(
    engine: Engine, image: str, names: Names
) -> None:
    if not engine.compose:
        pytest.skip(f"no compose command for {engine.name} (pip install podman-compose)")
    names.port = COMPOSE_PORT
    env = {"ANNLAB_IMAGE": image, "ANNLAB_PUBLISH": f"127.0.0.1:{COMPOSE_PORT}"}

    def readme(prefix: str, *, check: bool = True):
        argv = argv_for(lab_command(prefix), engine.name, names, engine.compose)
        return engine.run(argv, env=env, check=check, timeout=180)

    client = httpx.Client(base_url=f"http://127.0.0.1:{COMPOSE_PORT}", timeout=30)
    try:
        readme("docker compose up -d")

        def compose_logs() -> str:
            result = engine.run(
                [*engine.compose, "-p", names.project, "logs"], env=env, check=False
            )
            return result.stdout + result.stderr

        FIGURES["compose up to healthy"] = f"{wait_healthy(client, logs=compose_logs):.1f} s"
        # The service runs as the file says: read-only root, auth on, the volume.
        inspect = engine.run(
            [*engine.compose, "-p", names.project, "ps", "-q"], env=env
        ).stdout.split()
        assert inspect, "compose started no container"
        read_only = engine.run(
            [engine.name, "inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", inspect[0]]
        )
        assert read_only.stdout.strip() == "true", read_only.stdout
        key = readme("docker compose exec -T annlab annlab users create dave").stdout.strip()
        assert KEY.fullmatch(key), f"exec -T users create printed {key!r}"
        assert client.get("/api/v1/runs").status_code == 401
        listed = client.get("/api/v1/runs", headers={"Authorization": f"Bearer {key}"})
        assert listed.status_code == 200, listed.text
        readme("docker compose down")
        with pytest.raises(httpx.TransportError):
            client.get("/healthz", timeout=2)
        left = engine.run([engine.name, "ps", "-a", "--format", "{{.Names}}"]).stdout
        assert not re.search(rf"^{names.project}", left, flags=re.M), left
    finally:
        client.close()
        engine.run(
            [*engine.compose, "-p", names.project, "down", "-v"], env=env, check=False, timeout=180
        )
