"""On a server with no experiments and no models, both pages say what to do next (a curl
line to start one), instead of an empty table."""

from __future__ import annotations

from typing import Any


def test_no_experiments_yet_says_how_to_start_one(page: Any, base_url: str, shot: Any) -> None:
    page.goto(f"{base_url}/experiments")
    empty = page.locator("#experiments [data-empty]")
    empty.wait_for()
    text = empty.text_content() or ""
    assert "No experiments yet" in text
    assert f"curl -X POST {base_url}/api/v1/experiments" in text and '"grid"' in text
    shot(page, "experiments-empty")
    page.watch.assert_clean()


def test_no_models_yet_says_how_to_register_one(page: Any, base_url: str, shot: Any) -> None:
    page.goto(f"{base_url}/models")
    empty = page.locator("#models [data-empty]")
    empty.wait_for()
    text = empty.text_content() or ""
    assert "No models yet" in text
    for step in ("/api/v1/models -H", "/api/v1/models/iris-classifier/versions", "/aliases/champion"):
        assert step in text, step
    shot(page, "models-empty")
    page.watch.assert_clean()
