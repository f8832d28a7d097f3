"""Security headers on every response, CORS only for listed origins."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli import cli
from app.main import create_app
from app.web_security import API_CSP, CorsSettingError

from .conftest import API, make_settings


def _common(response: object) -> dict[str, str]:
    headers = response.headers  # type: ignore[attr-defined]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    return dict(headers)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", f"{API}/datasets", 200),
        ("GET", f"{API}/runs/run_nope", 404),
        ("POST", f"{API}/runs", 422),
        ("GET", "/healthz", 200),
        ("GET", "/openapi.json", 200),
        ("GET", "/nothing/here", 404),
    ],
)
def test_api_answers_carry_the_strict_headers(
    idle_client: TestClient, method: str, path: str, status: int
) -> None:
    response = idle_client.request(method, path, json={} if method == "POST" else None)
    assert response.status_code == status
    headers = _common(response)
    assert headers["content-security-policy"] == API_CSP
    assert headers["referrer-policy"] == "no-referrer"


def test_a_413_from_the_body_limit_carries_them_too(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(executor="none", max_body_bytes=100)
    response = client.post(f"{API}/runs", content=b"x" * 1000)
    assert response.status_code == 413
    assert _common(response)["content-security-policy"] == API_CSP


def test_the_dashboard_keeps_its_own_policy_and_docs_get_theirs(idle_client: TestClient) -> None:
    page = idle_client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = _common(page)["content-security-policy"]
    assert "script-src 'self';" in policy and policy.count("content-security-policy") == 0
    docs = idle_client.get("/docs")
    assert "https://cdn.jsdelivr.net" in _common(docs)["content-security-policy"]
    script = idle_client.get(page.text.split('src="', 1)[1].split('"', 1)[0])
    assert script.status_code == 200 and _common(script)["x-content-type-options"] == "nosniff"


def test_cors_is_off_by_default(idle_client: TestClient) -> None:
    origin = {"Origin": "https://elsewhere.example"}
    response = idle_client.get(f"{API}/datasets", headers=origin)
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    preflight = idle_client.options(
        f"{API}/runs", headers={**origin, "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_listed_origins_and_only_those_may_call(make_client: Callable[..., TestClient]) -> None:
    client = make_client(
        executor="none", cors_origins="https://lab.example, http://127.0.0.1:5173/"
    )
    allowed = client.get(f"{API}/datasets", headers={"Origin": "https://lab.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://lab.example"
    assert "access-control-allow-credentials" not in allowed.headers
    preflight = client.options(
        f"{API}/runs",
        headers={
            "Origin": "http://127.0.0.1:5173",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://127.0.0.1:5173"
    _common(preflight)
    other = client.get(f"{API}/datasets", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize(
    ("origins", "credentials", "named"),
    [
        ("*", True, "ANNLAB_CORS_ALLOW_CREDENTIALS"),
        ("https://ok.example,*", False, "'*' cannot be combined"),
        ("https://lab.example/path", False, "'https://lab.example/path' is not an origin"),
        ("javascript:alert(1)", False, "is not an origin"),
    ],
)
def test_unsafe_cors_settings_are_refused_at_start(
    tmp_path: Path, origins: str, credentials: bool, named: str
) -> None:
    settings = make_settings(
        tmp_path / "data", executor="none", cors_origins=origins, cors_allow_credentials=credentials
    )
    with pytest.raises(CorsSettingError, match=named.replace("*", r"\*").replace("(", r"\(")):
        create_app(settings)


def test_serve_refuses_a_wildcard_with_credentials(tmp_path: Path) -> None:
    env = {
        "ANNLAB_DATA_DIR": str(tmp_path / "data"),
        "ANNLAB_DATABASE_URL": None,
        "ANNLAB_CORS_ORIGINS": "*",
        "ANNLAB_CORS_ALLOW_CREDENTIALS": "true",
    }
    result = CliRunner().invoke(cli, ["serve", "--port", "19402"], env=env)  # type: ignore[arg-type]
    assert result.exit_code == 1
    assert "refuses to start" in result.stderr and "ANNLAB_CORS_ORIGINS=*" in result.stderr
    assert "listening" not in result.output


def test_a_wildcard_without_credentials_is_served(make_client: Callable[..., TestClient]) -> None:
    client = make_client(executor="none", cors_origins="*")
    response = client.get(f"{API}/datasets", headers={"Origin": "https://any.example"})
    assert response.headers["access-control-allow-origin"] == "*"
