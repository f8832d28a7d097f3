"""The in-process app for the fuzz tests: `create_app(settings)` on a temporary SQLite."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def build_app(data_dir: Path):  # -> FastAPI
    """The real app with no local workers: runs stay queued, so no random spec ever trains."""
    if not (ROOT / "app" / "main.py").exists():
        pytest.skip("app/main.py is not written yet")
    config = importlib.import_module("app.config")
    main = importlib.import_module("app.main")
    settings = config.Settings(
        data_dir=data_dir,
        database_url=None,
        executor="none",
        auth=False,
        max_body_bytes=256 * 1024,
    )
    return main.create_app(settings)


@pytest.fixture(scope="module")
def fuzz_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data_dir = tmp_path_factory.mktemp("annlab-fuzz")
    yield data_dir
