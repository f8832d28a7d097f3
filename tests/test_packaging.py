"""Every data file the code opens at run time is in the installed package.

An editable install (``pip install -e .``, the tests' own) reads the files from the
checkout, so a file left out of ``[tool.setuptools.package-data]`` works here and is
missing from the wheel the Docker image installs (the dashboard's templates once
were: the image would not start). This checks the globs against the tree.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "core", "migrations")


def package_data() -> dict[str, list[str]]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)["tool"]["setuptools"]["package-data"]


def covered(path: Path, globs: dict[str, list[str]]) -> bool:
    """Whether a package's glob matches ``path`` (relative to the package's folder)."""
    for package, patterns in globs.items():
        folder = ROOT / package.replace(".", "/")
        if folder in path.parents:
            relative = path.relative_to(folder).as_posix()
            if any(fnmatch.fnmatchcase(relative, pattern) for pattern in patterns):
                return True
    return False


def test_every_data_file_is_in_the_package_data() -> None:
    globs = package_data()
    data_files = [
        path
        for top in PACKAGES
        for path in (ROOT / top).rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    ]
    assert any("templates" in path.parts for path in data_files), "the dashboard's files"
    missing = [str(path.relative_to(ROOT)) for path in data_files if not covered(path, globs)]
    assert not missing, f"not in [tool.setuptools.package-data] of pyproject.toml: {missing}"
