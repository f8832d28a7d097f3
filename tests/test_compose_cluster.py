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


def test_the_cluster_defaults_are_the_real_images_and_port_8001() -> None:
    """The variables the container tests set (stand-in images, a port of their own, two
    workers) leave a real user's `docker compose --profile cluster up` as it was."""
    services = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    assert services["postgres"]["image"] == "${ANNLAB_POSTGRES_IMAGE:-postgres:16}"
    assert services["redis"]["image"] == "${ANNLAB_REDIS_IMAGE:-redis:7}"
    assert services["cluster-server"]["ports"] == ["${ANNLAB_CLUSTER_PUBLISH:-8001}:8000"]
    assert services["worker"]["scale"] == "${ANNLAB_CLUSTER_WORKERS:-1}"


def test_readme_commands_may_set_variables_first() -> None:
    from tests.container.readme import Names, argv_for, env_of, lab_command

    command = lab_command("docker compose --profile cluster up")
    assert env_of(command) == {"ANNLAB_CLUSTER_WORKERS": "4"}
    names = Names(container="", volume="", image="", image_versioned="", port=0, project="p")
    argv = argv_for(command, "podman", names, ["podman-compose"])
    assert argv[:6] == ["podman-compose", "-p", "p", "--profile", "cluster", "up"]
    assert env_of("KEY=$(docker compose exec -T annlab annlab users create dave)") == {}
