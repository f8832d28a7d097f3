"""API keys over a socket: keys made by `annlab users create` open a server run with ANNLAB_AUTH=on."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import httpx
import pytest

from .server import ANNLAB, API, Server, tiny_spec, wait_status

pytestmark = pytest.mark.timeout(120)


def annlab_users(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    """`annlab users ...` as a separate process on the server's data directory."""
    environment = {**os.environ, "ANNLAB_DATA_DIR": str(server.data_dir)}
    environment.pop("ANNLAB_DATABASE_URL", None)
    return subprocess.run(
        [str(ANNLAB), "users", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def create_key(server: Server, name: str, *flags: str) -> str:
    result = annlab_users(server, "create", name, *flags)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_keys_from_the_cli_guard_a_running_server(make_server: Callable[..., Server]) -> None:
    server = make_server("auth", ANNLAB_AUTH="on", ANNLAB_WORKERS="1")
    # before the first start: the CLI creates (--create) and migrates the database
    alice = create_key(server, "alice", "--create")
    server.start()
    bob = create_key(server, "bob")  # while it runs
    root = create_key(server, "root", "--admin")
    assert annlab_users(server, "create", "bob").returncode != 0

    with server.client() as anonymous:
        refused = anonymous.get(f"{API}/runs")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert anonymous.get("/readyz").status_code == 200

    def as_user(key: str) -> httpx.Client:
        return httpx.Client(
            base_url=server.base_url, timeout=10.0, headers={"Authorization": f"Bearer {key}"}
        )

    with as_user(alice) as as_alice, as_user(bob) as as_bob, as_user(root) as as_root:
        run = as_alice.post(f"{API}/runs", json=tiny_spec())
        assert run.status_code == 202, run.text
        run_id = run.json()["id"]
        assert wait_status(as_alice, run_id)["status"] == "succeeded"

        assert as_bob.get(f"{API}/runs/{run_id}").status_code == 404
        assert as_bob.get(f"{API}/runs").json()["total"] == 0
        assert as_root.get(f"{API}/runs/{run_id}").status_code == 200

        listing = annlab_users(server, "list")
        assert listing.returncode == 0
        assert all(key not in listing.stdout + listing.stderr for key in (alice, bob, root))

        assert annlab_users(server, "revoke", "alice").returncode == 0
        assert as_alice.get(f"{API}/runs/{run_id}").status_code == 401
        assert as_root.get(f"{API}/runs/{run_id}").status_code == 200
