"""`annlab users rotate` against a real `annlab serve`: the old key is 401 on the next request."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from .server import API, Server
from .test_auth import annlab_users, create_key

pytestmark = pytest.mark.timeout(120)


def test_a_rotated_key_dies_on_the_next_request(make_server: Callable[..., Server]) -> None:
    server = make_server("rotate", ANNLAB_AUTH="on", ANNLAB_WORKERS="1").start()
    old = create_key(server, "alice")
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        assert (
            client.get(f"{API}/runs", headers={"Authorization": f"Bearer {old}"}).status_code == 200
        )
        rotated = annlab_users(server, "rotate", "alice")
        assert rotated.returncode == 0, rotated.stderr
        new = rotated.stdout.strip()
        assert new.startswith("annlab_") and new != old and rotated.stdout == new + "\n"
        assert (
            client.get(f"{API}/runs", headers={"Authorization": f"Bearer {old}"}).status_code == 401
        )
        assert (
            client.get(f"{API}/runs", headers={"Authorization": f"Bearer {new}"}).status_code == 200
        )
