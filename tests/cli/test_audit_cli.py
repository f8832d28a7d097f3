"""`annlab audit [--user NAME] [--since WHEN] [--limit N] [--json]`: the admin commands'
own events (users, backup, restore) and the filters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from app.cli import cli


def annlab(data_dir: Path, *args: str) -> Any:
    env = {"ANNLAB_DATA_DIR": str(data_dir), "ANNLAB_DATABASE_URL": None}
    return CliRunner().invoke(cli, list(args), env=env)  # type: ignore[dict-item]


def audit_json(data_dir: Path, *args: str) -> list[dict[str, Any]]:
    result = annlab(data_dir, "audit", "--json", *args)
    assert result.exit_code == 0, result.output
    events: list[dict[str, Any]] = json.loads(result.stdout)
    return events


def _users(data_dir: Path) -> None:
    for args in (
        ("create", "alice", "--create"),
        ("create", "bob"),
        ("rotate", "alice"),
        ("revoke", "bob"),
        ("delete", "alice", "--purge"),
    ):
        assert annlab(data_dir, "users", *args).exit_code == 0


def test_user_commands_are_listed_newest_first_with_the_cli_as_actor(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _users(data_dir)
    table = annlab(data_dir, "audit")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].split()[:5] == ["TIME", "(UTC)", "ACTOR", "ACTION", "USER"]
    assert [line.split()[2:5] for line in lines[1:]] == [
        ["cli", "user.deleted", "alice"],
        ["cli", "user.revoked", "bob"],
        ["cli", "user.rotated", "alice"],
        ["cli", "user.created", "bob"],
        ["cli", "user.created", "alice"],
    ]
    assert "annlab_" not in table.output  # keys are never in the audit
    deleted = audit_json(data_dir)[0]
    assert deleted["action"] == "user.deleted" and deleted["detail"]["purged"] is True


def test_user_since_and_limit_filter(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _users(data_dir)
    assert [e["action"] for e in audit_json(data_dir, "--user", "bob")] == [
        "user.revoked",
        "user.created",
    ]
    assert len(audit_json(data_dir, "--limit", "2")) == 2
    assert len(audit_json(data_dir, "--since", "1d")) == 5
    assert len(audit_json(data_dir, "--since", "2000-01-01")) == 5
    assert audit_json(data_dir, "--since", "2999-01-01T00:00") == []
    nothing = annlab(data_dir, "audit", "--user", "nobody")
    assert nothing.exit_code == 0 and "no audit events match" in nothing.stderr


def test_a_malformed_since_is_refused_naming_the_forms(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _users(data_dir)
    refused = annlab(data_dir, "audit", "--since", "yesterday")
    assert refused.exit_code == 2
    assert "ISO 8601" in refused.output and "7d" in refused.output


def test_a_database_without_the_audit_table_is_named(tmp_path: Path) -> None:
    refused = annlab(tmp_path / "empty", "audit")
    assert refused.exit_code == 1 and "has no audit table" in refused.stderr


def test_backup_and_restore_are_recorded(tmp_path: Path) -> None:
    source, target, file = tmp_path / "source", tmp_path / "target", tmp_path / "backup.db"
    assert annlab(source, "users", "create", "alice", "--create").exit_code == 0
    assert annlab(source, "backup", str(file)).exit_code == 0
    taken = audit_json(source)[0]
    assert taken["action"] == "backup.taken" and taken["target"] == str(file.resolve())
    target.mkdir()
    restored = annlab(target, "restore", str(file))
    assert restored.exit_code == 0, restored.output
    # the copy holds what came before the backup, then the restore itself
    assert [e["action"] for e in audit_json(target)] == ["backup.restored", "user.created"]
