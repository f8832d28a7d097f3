"""/docs and /redoc work offline, the bearer scheme is in OpenAPI, HEAD works wherever
GET does, and the server's start-up line says auth, database and workers."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from app.cli import _startup_line
from tests.api.conftest import API, make_settings, submit
from tests.support.specs import iris_spec


def test_docs_pages_load_every_script_from_annlab(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        response = client.get(page)
        assert response.status_code == 200
        sources = re.findall(r'(?:src|href)="([^"]+)"', response.text)
        assert sources, response.text
        for source in sources:
            assert not source.startswith(("http:", "https:", "//")), (page, source)
            asset = client.get(source)
            assert asset.status_code == 200 and len(asset.content) > 1000, source
        assert "fonts.googleapis" not in response.text and "cdn" not in response.text.lower()


def test_openapi_declares_the_bearer_scheme_even_with_auth_off(client: TestClient) -> None:
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"


def test_head_works_wherever_get_does(client: TestClient) -> None:
    run = submit(client, iris_spec(epochs=1))
    for path in (
        "/healthz",
        "/openapi.json",
        f"{API}/runs",
        f"{API}/runs/{run['id']}",
        f"{API}/datasets/iris",
        f"{API}/runs/{run['id']}/events",
    ):
        got = client.get(path) if not path.endswith("/events") else None
        head = client.head(path)
        assert head.status_code == 200, (path, head.text)
        assert head.content == b""
        if got is not None:
            assert head.headers["content-type"] == got.headers["content-type"]
    assert client.head(f"{API}/runs/nope").status_code == 404
    assert client.head(f"{API}/runs/{run['id']}/cancel").status_code == 405  # POST only


def test_the_startup_line_says_auth_database_and_workers(tmp_path: Path) -> None:
    line = _startup_line(make_settings(tmp_path, workers=3, auth=True), host="h", port=1)
    assert "auth: on" in line and "3 worker(s)" in line and str(tmp_path) in line
    off = _startup_line(make_settings(tmp_path, executor="none"), host="h", port=1)
    assert "auth: off" in off and "no local workers" in off
