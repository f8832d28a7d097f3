"""The runs page pages through many runs (one API page at a time), filters by status,
and links the selection to the compare page. The server trains nothing here
(ANNLAB_EXECUTOR=none), so every run stays queued: a live page that keeps polling."""

from __future__ import annotations

from typing import Any

import httpx

from .conftest import spec, submit

SERVER_ENV = {"ANNLAB_WORKERS": "1", "ANNLAB_EXECUTOR": "none"}


def test_many_runs_are_paged_and_filtered(page: Any, base_url: str, api: httpx.Client) -> None:
    ids = [submit(api, spec(f"run {i:03d}", epochs=5))["id"] for i in range(60)]
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/api/v1/runs?" in r.url else None)
    page.goto(f"{base_url}/")
    page.wait_for_selector("#page-label:text-is('1–50 of 60')")
    assert page.locator("#runs-table tbody tr").count() == 50
    assert all("limit=50" in url for url in requests)  # never the whole list
    newest = page.locator("#runs-table tbody tr").first.get_attribute("data-run-id")
    assert newest == ids[-1]
    page.click("#next")
    page.wait_for_selector("#page-label:text-is('51–60 of 60')")
    assert "page=1" in page.url
    assert page.locator("#runs-table tbody tr").count() == 10
    page.select_option("#f-status", "succeeded")
    page.wait_for_selector("#page-label:text-is('0–0 of 0')")
    page.select_option("#f-status", "queued")
    page.wait_for_selector("#page-label:text-is('1–50 of 60')")
    page.locator(f"tr[data-run-id='{ids[-1]}'] input[type=checkbox]").check()
    page.locator(f"tr[data-run-id='{ids[-2]}'] input[type=checkbox]").check()
    page.click("#compare-selected")
    page.wait_for_url("**/compare?runs=*")
    assert set(page.url.split("runs=")[1].split(",")) == {ids[-1], ids[-2]}
    page.watch.assert_clean()
