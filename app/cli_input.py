"""Reading what a user hands the terminal client: JSON files, CSV rows, model names.

Every problem is a `typer.BadParameter` (exit code 2, usage error) that names
the file and what is wrong, before anything is sent to the server.
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import typer

MODEL_REF = re.compile(r"^(?P<name>[^@/]+)(?:@(?P<alias>[^@/]+)|/(?P<version>\d+))$")


def read_json_file(path: Path) -> Any:
    """The JSON document in ``path`` (``-``: standard input)."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(
            f"{path} is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None


def rows_for_features(path: Path, feature_names: list[str]) -> tuple[list[list[float]], list[str]]:
    """The rows of a CSV as numbers in the dataset's column order, and the columns
    that are not features (ignored, e.g. the target column of a training file).

    The header row names the columns (any order, delimiter , ; or tab detected);
    a file without a header is accepted when its width is the number of features."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise typer.BadParameter(f"{path} is empty")
    try:
        dialect: Any = csv.Sniffer().sniff(lines[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    table = list(csv.reader(lines, dialect))
    header = [cell.strip() for cell in table[0]]
    if not set(header) & set(feature_names) and _all_numbers(header):
        if len(header) != len(feature_names):
            raise typer.BadParameter(
                f"{path} has no header and {len(header)} columns; the model takes "
                f"{len(feature_names)} features: {', '.join(feature_names)}"
            )
        columns, body, ignored = list(range(len(header))), table, []
    else:
        missing = [name for name in feature_names if name not in header]
        if missing:
            raise typer.BadParameter(
                f"{path} lacks the feature column(s) {', '.join(missing)} "
                f"(its header: {', '.join(header)})"
            )
        columns = [header.index(name) for name in feature_names]
        body = table[1:]
        ignored = [name for name in header if name not in feature_names]
    rows = []
    for number, row in enumerate(body, start=2 if body is not table else 1):
        try:
            rows.append([float(row[column]) for column in columns])
        except (ValueError, IndexError):
            raise typer.BadParameter(
                f"{path} line {number}: not a number in a feature column"
            ) from None
    if not rows:
        raise typer.BadParameter(f"{path} has a header but no rows")
    return rows, ignored


def _all_numbers(cells: list[str]) -> bool:
    try:
        return all(math.isfinite(float(cell)) for cell in cells)
    except ValueError:
        return False


def parse_model_ref(ref: str) -> tuple[str, int | None, str | None]:
    """``name@alias`` or ``name/version`` → (name, version, alias)."""
    match = MODEL_REF.match(ref)
    if match is None:
        raise typer.BadParameter(
            f"{ref!r}: expected NAME@ALIAS or NAME/VERSION", param_hint="MODEL"
        )
    version = match["version"]
    return match["name"], int(version) if version else None, match["alias"]
