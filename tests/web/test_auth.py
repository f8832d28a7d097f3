"""With ANNLAB_AUTH=on the dashboard asks for a key once, keeps it in sessionStorage and
sends it as a bearer header; a wrong key is asked for again."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from tests.e2e.server import ANNLAB, Server

SERVER_ENV = {"ANNLAB_WORKERS": "1", "ANNLAB_AUTH": "on"}


def make_key(server: Server, name: str) -> str:
    out = subprocess.run(
        [str(ANNLAB), "users", "create", name],
        env={**os.environ, "ANNLAB_DATA_DIR": str(server.data_dir), "ANNLAB_AUTH": "on"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.strip().splitlines()[-1].strip()


def test_the_page_asks_for_a_key_then_loads(
    page: Any, server: Server, base_url: str, shot: Any
) -> None:
    key = make_key(server, "alice")
    page.goto(base_url + "/")
    page.wait_for_selector("#auth-dialog[open]")
    shot(page, "auth-prompt")
    page.fill("#auth-key", "annlab_wrong")
    page.click("#auth-form button[type=submit]")
    page.wait_for_selector("#auth-error:not([hidden])")  # asked again, saying why
    page.fill("#auth-key", key)
    page.click("#auth-form button[type=submit]")
    page.wait_for_selector("#runs-summary:text-is('0 runs')")
    assert page.evaluate("() => sessionStorage.getItem('annlab.apiKey')") == key
    assert page.evaluate("() => document.cookie") == ""
    page.goto(base_url + "/datasets")  # the same tab: no second prompt
    page.wait_for_selector("tr[data-dataset-id='iris']")
    assert not page.locator("#auth-dialog").get_attribute("open")
    # Console errors here are only the browser's notes on the 401s that asked for the key.
    assert all("401" in text for text in page.watch.console_errors), page.watch.console_errors
    assert not page.watch.page_errors
