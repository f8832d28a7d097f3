"""The compose file's ``cluster`` profile: PostgreSQL, a broker, a server that only
dispatches (ANNLAB_EXECUTOR=celery) and scalable workers sharing its settings."""

from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yml"


def test_the_cluster_profile_runs_celery_workers_on_postgres_and_redis() -> None:
    services = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    cluster = {name for name, s in services.items() if "cluster" in s.get("profiles", [])}
    assert {"postgres", "redis", "cluster-server", "worker"} <= cluster
    server, worker = services["cluster-server"], services["worker"]
    assert server["environment"]["ANNLAB_EXECUTOR"] == "celery"
    assert server["environment"]["ANNLAB_DATABASE_URL"].startswith("postgresql")
    assert server["environment"]["ANNLAB_BROKER_URL"].startswith("redis://redis")
    assert worker["environment"] == server["environment"]
    assert worker["command"][:2] == ["annlab", "worker"]
    assert "ports" not in worker  # scalable: --scale worker=N
    assert "container_name" not in worker
