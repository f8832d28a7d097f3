"""core/ type-checks under mypy --strict (pyproject's [[tool.mypy.overrides]] for core.*)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_strict_passes_on_core() -> None:
    api = pytest.importorskip("mypy.api")
    stdout, stderr, status = api.run(
        ["--config-file", str(ROOT / "pyproject.toml"), "--no-incremental", str(ROOT / "core")]
    )
    assert status == 0, stdout + stderr
