"""Browser tests of the dashboard: real `annlab serve` processes driven by Debian's
Chromium through Playwright (never `playwright install`: the browser is the system's).

- ``server``: one server per test module (a fresh data directory).
- ``browser``: one Chromium for the session; ``page``: a fresh 1280×800 context per
  test that records console errors, page errors, alert dialogs and any request
  leaving the server (the dashboard must make none).
- ``shot(page, name)``: a screenshot under tests/web/artifacts/ (gitignored).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import Server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test here drives a browser: mark them, and skip them all without Chromium."""
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing (apt-get install -y chromium)")
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(skip)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Server]:
    env = getattr(request.module, "SERVER_ENV", {"ANNLAB_WORKERS": "1"})
    root = tmp_path_factory.mktemp("web")
    data_dir = root / "data"
    data_dir.mkdir()
    srv = Server(
        name=request.module.__name__.rsplit(".", 1)[-1],
        data_dir=data_dir,
        log_dir=root,
        env=dict(env),
    )
    try:
        srv.start()
        yield srv
    finally:
        if srv.running:
            srv.stop()
        srv.cleanup()


@pytest.fixture(scope="module")
def base_url(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}"


@pytest.fixture(scope="module")
def api(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{base_url}/api/v1", timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        yield chromium
        chromium.close()


@dataclass
class Watch:
    """What a page did that a user would not want: errors, alerts, outside requests."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert not self.page_errors, self.page_errors
        assert not self.console_errors, self.console_errors
        assert not self.dialogs, self.dialogs


@pytest.fixture
def page(browser: Any, base_url: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    pg = context.new_page()
    watch = Watch()
    pg.watch = watch

    def on_console(message: Any) -> None:
        # GET /datasets/{id}/data may answer 404 for a built-in set: the page then just
        # draws no points, but Chromium still logs the failed load.
        if message.type != "error":
            return
        if "404" in message.text and "/data?format=json" in (message.location or {}).get("url", ""):
            return
        watch.console_errors.append(message.text)

    pg.on("console", on_console)
    pg.on("pageerror", lambda e: watch.page_errors.append(str(e)))

    def on_dialog(dialog: Any) -> None:
        watch.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    pg.on("dialog", on_dialog)

    def on_request(req: Any) -> None:
        if not req.url.startswith((base_url, "data:", "blob:", "about:")):
            watch.outside.append(req.url)

    pg.on("request", on_request)
    yield pg
    context.close()
    assert not watch.outside, f"requests left the server: {watch.outside}"


@pytest.fixture
def shot() -> Callable[[Any, str], Path]:
    ARTIFACTS.mkdir(exist_ok=True)

    def take(pg: Any, name: str, full_page: bool = False) -> Path:
        path = ARTIFACTS / f"{name}.png"
        pg.evaluate("() => window.scrollTo(0, 0)")
        pg.screenshot(path=str(path), full_page=full_page)
        return path

    return take


def spec(name: str, dataset: str = "moons", epochs: int = 30, **training: Any) -> dict[str, Any]:
    """A small run spec (trains in well under a second)."""
    return {
        "name": name,
        "dataset": dataset,
        "model": {
            "layers": [
                {"units": 8, "activation": "tanh"},
                {"units": 3 if dataset in ("iris", "spiral") else 2, "activation": "softmax"},
            ]
        },
        "optimizer": {"type": "adam", "learning_rate": 0.02},
        "training": {"epochs": epochs, **training},
    }


def submit(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/runs", json=body)
    assert response.status_code == 202, response.text
    return response.json()


def wait_finished(api: httpx.Client, run_id: str, timeout: float = 60.0) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api.get(f"/runs/{run_id}").json()
        if run["status"] in ("succeeded", "failed", "cancelled"):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish: {json.dumps(run)[:300]}")


def has_endpoint(api: httpx.Client, path: str) -> bool:
    response = httpx.get(str(api.base_url.copy_with(path="/openapi.json")))
    response.raise_for_status()
    doc = response.json()
    return f"/api/v1{path}" in doc.get("paths", {})


os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
