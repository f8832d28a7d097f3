"""The compose file's `cluster` profile brought up for real, as the README says.

PostgreSQL, Redis, `cluster-server` (ANNLAB_EXECUTOR=celery: it stores and
dispatches, never trains) and two `worker` containers from the image the
session built, under a project name of the test's own, on loopback ports of
the test range. The README's commands run with mechanical changes: 2 workers
instead of 4, no `--build` (the session built the image), and the PostgreSQL
and Redis images replaced by local stand-ins (standins/) where the registry
cannot be reached. Then: a run is trained by a worker container (its log says
"slice on"); a longer run's worker container is stopped mid-run, the run pauses
there and the other worker finishes it, with the weights and metrics of the
same spec trained by the single-machine `annlab` service (which the profile
brings up too), bit for bit; and `down -v` leaves no container or volume.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.container.conftest import CLUSTER_PORT, CLUSTER_SINGLE_PORT, FIGURES
from tests.container.engine import Engine
from tests.container.readme import Names, argv_for, env_of, lab_command
from tests.container.test_lab import KEY, LONG_SPEC, QUICK_SPEC, wait_healthy

pytestmark = [pytest.mark.container, pytest.mark.timeout(1800)]

STANDINS = Path(__file__).resolve().parent / "standins"
WORKERS = 2
# Long enough that a worker is stopped well before the end (60 epochs take ~2 s
# here), one slice of the default 60 s on an idle machine.
CLUSTER_LONG_SPEC = {
    **LONG_SPEC,
    "name": "spiral, its worker stopped",
    "training": {**LONG_SPEC["training"], "epochs": 600},
}
RUN_SECONDS = 600
# What the compose file runs by default, the variable that replaces it, and the
# stand-in built where the image cannot be had.
SERVICES = {
    "postgres": ("postgres:16", "ANNLAB_POSTGRES_IMAGE", "localhost/annlab-standin-postgres:15"),
    "redis": ("redis:7", "ANNLAB_REDIS_IMAGE", "localhost/annlab-standin-redis:7"),
}


@pytest.fixture(scope="module")
def service_images(engine: Engine) -> dict[str, str]:
    """The compose variables for PostgreSQL and Redis: nothing where the real images
    are there or can be pulled (or the variable is set already), else a stand-in."""
    env: dict[str, str] = {}
    built: list[str] = []
    started = time.monotonic()
    for service, (default, variable, standin) in SERVICES.items():
        if os.environ.get(variable):
            continue
        exists = [engine.name, "image", "inspect", default]
        if engine.run(exists, check=False).returncode == 0:
            continue
        if (
            engine.run([engine.name, "pull", "-q", default], check=False, timeout=300).returncode
            == 0
        ):
            continue
        flags = [
            flag for flag in engine.build_flags if flag in ("--format", "docker", "--pull=never")
        ]
        # no host certificate mount: apt speaks plain HTTP, and Debian's ssl-cert
        # package writes into /etc/ssl/certs
        engine.run(
            [
                engine.name,
                "build",
                *flags,
                "-f",
                str(STANDINS / f"{service}.Dockerfile"),
                "-t",
                standin,
                str(STANDINS),
            ],
            timeout=900,
        )
        env[variable] = standin
        built.append(standin)
    if built:
        FIGURES["cluster stand-ins built"] = (
            f"{time.monotonic() - started:.0f} s ({', '.join(built)})"
        )
    return env


class Cluster:
    """The compose project: README commands with the test's names, its containers, logs."""

    def __init__(self, engine: Engine, names: Names, env: dict[str, str]) -> None:
        self.engine, self.names, self.env = engine, names, env

    def readme(self, prefix: str, *, timeout: float = 300):
        command = lab_command(prefix)
        argv = argv_for(command, self.engine.name, self.names, self.engine.compose)
        argv = [token for token in argv if token != "--build"]
        env = {**env_of(command), **self.env}
        return self.engine.run(argv, env=env, timeout=timeout)

    def containers(self, service: str) -> list[str]:
        listed = self.engine.run(
            [
                self.engine.name,
                "ps",
                "-a",
                "--filter",
                f"label=com.docker.compose.project={self.names.project}",
                "--filter",
                f"label=com.docker.compose.service={service}",
                "--format",
                "{{.Names}}",
            ]
        )
        return sorted(listed.stdout.split())

    def log(self, container: str) -> str:
        result = self.engine.run([self.engine.name, "logs", container], check=False)
        return result.stdout + result.stderr

    def logs(self) -> str:
        """Every container's log tail, for an assertion message."""
        parts = []
        for service in ("cluster-server", "worker", "postgres", "redis"):
            for container in self.containers(service):
                parts.append(f"--- {container}\n{self.log(container)[-2500:]}")
        return "\n".join(parts)

    def left(self) -> tuple[str, str]:
        """The project's containers and volumes still there."""
        containers = self.engine.run(
            [
                self.engine.name,
                "ps",
                "-a",
                "--filter",
                f"label=com.docker.compose.project={self.names.project}",
                "--format",
                "{{.Names}}",
            ]
        ).stdout.strip()
        volumes = self.engine.run(
            [self.engine.name, "volume", "ls", "--format", "{{.Name}}"]
        ).stdout.split()
        return containers, " ".join(v for v in volumes if v.startswith(self.names.project))

    def force_down(self) -> None:
        """Whatever the README's `down` left (a failure on the way): removed by label."""
        containers, volumes = self.left()
        if containers:
            self.engine.run(
                [self.engine.name, "rm", "-f", "-t", "0", *containers.split()], check=False
            )
        if self.engine.name == "podman":
            self.engine.run(["podman", "pod", "rm", "-f", f"pod_{self.names.project}"], check=False)
        if volumes:
            self.engine.run([self.engine.name, "volume", "rm", "-f", *volumes.split()], check=False)
        self.engine.run(
            [self.engine.name, "network", "rm", "-f", f"{self.names.project}_default"], check=False
        )


@pytest.fixture
def cluster(
    engine: Engine, image: str, names: Names, service_images: dict[str, str]
) -> Iterator[Cluster]:
    if not engine.compose:
        pytest.skip(f"no compose command for {engine.name} (pip install podman-compose)")
    env = {
        "ANNLAB_IMAGE": image,
        "ANNLAB_PUBLISH": f"127.0.0.1:{CLUSTER_SINGLE_PORT}",
        "ANNLAB_CLUSTER_PUBLISH": f"127.0.0.1:{CLUSTER_PORT}",
        "ANNLAB_CLUSTER_WORKERS": str(WORKERS),
        **service_images,
    }
    cluster = Cluster(engine, names, env)
    try:
        yield cluster
    finally:
        engine.run(
            [*engine.compose, "-p", names.project, "--profile", "cluster", "down", "-v"],
            env=env,
            check=False,
            timeout=300,
        )
        cluster.force_down()


def wait_for(client: httpx.Client, run_id: str, headers: dict, until, cluster: Cluster) -> dict:
    deadline = time.monotonic() + RUN_SECONDS
    run: dict = {}
    while time.monotonic() < deadline:
        run = client.get(f"/api/v1/runs/{run_id}", headers=headers).json()
        if until(run):
            return run
        assert run["status"] not in ("failed", "cancelled"), f"{run}\n{cluster.logs()}"
        time.sleep(0.2)
    raise AssertionError(
        f"run {run_id} did not get there in {RUN_SECONDS} s: {run}\n{cluster.logs()}"
    )


def succeeded(run: dict) -> bool:
    return run["status"] == "succeeded"


def slices(cluster: Cluster, run_id: str) -> dict[str, int]:
    """How many slices of `run_id` each worker container's log says it began."""
    return {
        container: len(re.findall(rf"run {run_id}: slice on ", cluster.log(container)))
        for container in cluster.containers("worker")
    }


def test_cluster_profile_trains_on_workers_and_a_stopped_worker_hands_over(
    cluster: Cluster,
) -> None:
    server = httpx.Client(base_url=f"http://127.0.0.1:{CLUSTER_PORT}", timeout=30)
    single = httpx.Client(base_url=f"http://127.0.0.1:{CLUSTER_SINGLE_PORT}", timeout=30)
    try:
        started = time.monotonic()
        cluster.readme("docker compose --profile cluster up")
        up_seconds = time.monotonic() - started
        healthy(server, cluster, deadline_seconds=180)
        ready = wait_ready(server, cluster)
        FIGURES["cluster up to healthy"] = (
            f"{time.monotonic() - started:.1f} s from `up -d` to /readyz 200 "
            f"(`up -d` returned after {up_seconds:.1f} s; {ready})"
        )
        workers = cluster.containers("worker")
        assert len(workers) == WORKERS, f"{workers}\n{cluster.logs()}"

        key = cluster.readme(
            "docker compose --profile cluster exec -T cluster-server"
        ).stdout.strip()
        assert KEY.fullmatch(key), f"exec -T users create printed {key!r}"
        headers = {"Authorization": f"Bearer {key}"}
        assert server.get("/api/v1/runs").status_code == 401

        # A run is trained by a worker container, not by the server.
        timer = time.monotonic()
        quick = server.post("/api/v1/runs", json=QUICK_SPEC, headers=headers)
        assert quick.status_code == 202, quick.text
        quick_id = quick.json()["id"]
        wait_for(server, quick_id, headers, succeeded, cluster)
        quick_seconds = time.monotonic() - timer
        counts = slices(cluster, quick_id)
        assert sum(counts.values()) >= 1, f"no worker says it trained {quick_id}\n{cluster.logs()}"
        (server_container,) = cluster.containers("cluster-server")
        assert f"run {quick_id}: slice on" not in cluster.log(server_container)
        logged = cluster.readme("docker compose --profile cluster logs worker").stdout
        assert f"run {quick_id}: slice on" in logged, logged[-3000:]

        # The same long spec on the single-machine service (the reference) and on the cluster.
        healthy(single, cluster)
        single_key = cluster.engine.run(
            [*argv_compose(cluster), "exec", "-T", "annlab", "annlab", "users", "create", "frank"],
            env=cluster.env,
        ).stdout.strip()
        single_headers = {"Authorization": f"Bearer {single_key}"}
        reference = single.post("/api/v1/runs", json=CLUSTER_LONG_SPEC, headers=single_headers)
        assert reference.status_code == 202, reference.text
        timer = time.monotonic()
        long = server.post("/api/v1/runs", json=CLUSTER_LONG_SPEC, headers=headers)
        assert long.status_code == 202, long.text
        long_id = long.json()["id"]
        before = wait_for(
            server,
            long_id,
            headers,
            lambda run: run["status"] == "running" and run["progress"]["epoch"] >= 10,
            cluster,
        )
        holders = [c for c, n in slices(cluster, long_id).items() if n]
        assert len(holders) == 1, f"{long_id} began on {holders}\n{cluster.logs()}"
        (holder,) = holders
        stopping = time.monotonic()
        cluster.engine.run([cluster.engine.name, "stop", "-t", "30", holder], timeout=60)
        stop_seconds = time.monotonic() - stopping
        paused = re.search(
            rf"run {long_id} paused for shutdown at epoch (\d+) \+ (\d+) batches",
            cluster.log(holder),
        )
        assert paused, (
            f"stopping {holder} did not pause {long_id} (at {before['progress']})\n{cluster.logs()}"
        )
        epochs = CLUSTER_LONG_SPEC["training"]["epochs"]
        assert int(paused.group(1)) < epochs

        finished = wait_for(server, long_id, headers, succeeded, cluster)
        long_seconds = time.monotonic() - timer
        assert finished["stop_reason"] == "completed", finished
        assert finished["progress"]["epoch"] == epochs, finished["progress"]
        (other,) = [c for c in cluster.containers("worker") if c != holder]
        assert slices(cluster, long_id)[other] >= 1, (
            f"{other} never trained {long_id}\n{cluster.logs()}"
        )
        metrics = server.get(f"/api/v1/runs/{long_id}/metrics", headers=headers).json()
        assert metrics["epoch"] == list(range(1, epochs + 1)), metrics["epoch"][-5:]

        wait_for(single, reference.json()["id"], single_headers, succeeded, cluster)
        reference_id = reference.json()["id"]
        assert (
            server.get(f"/api/v1/runs/{long_id}/weights", headers=headers).json()
            == single.get(f"/api/v1/runs/{reference_id}/weights", headers=single_headers).json()
        ), "the run handed between workers differs from the single-machine run"
        assert (
            metrics
            == single.get(f"/api/v1/runs/{reference_id}/metrics", headers=single_headers).json()
        ), "the handed-over run's metrics differ from the single-machine run's"
        FIGURES["cluster runs"] = (
            f"iris 20 epochs submitted to succeeded in {quick_seconds:.1f} s on a worker container; "
            f"spiral {epochs} epochs in {long_seconds:.1f} s, its worker stopped in "
            f"{stop_seconds:.1f} s at epoch {paused.group(1)} + {paused.group(2)} batches, "
            "finished by the other worker: weights and metrics identical to the "
            "single-machine service's, bit for bit"
        )

        timer = time.monotonic()
        cluster.readme("docker compose --profile cluster down")
        containers, volumes = cluster.left()
        assert not containers and not volumes, f"down -v left {containers!r} {volumes!r}"
        FIGURES["cluster down -v"] = f"{time.monotonic() - timer:.1f} s"
        with pytest.raises(httpx.TransportError):
            server.get("/healthz", timeout=2)
    finally:
        server.close()
        single.close()


def healthy(client: httpx.Client, cluster: Cluster, deadline_seconds: float = 120) -> None:
    try:
        wait_healthy(client, deadline_seconds)
    except AssertionError as failed:
        raise AssertionError(f"{failed} ({client.base_url})\n{cluster.logs()}") from None


def argv_compose(cluster: Cluster) -> list[str]:
    return [*cluster.engine.compose, "-p", cluster.names.project, "--profile", "cluster"]


def wait_ready(client: httpx.Client, cluster: Cluster, deadline_seconds: float = 300) -> str:
    """Until /readyz is 200 (the database answers, migrated); says how long after /healthz."""
    started = time.monotonic()
    answer = None
    while time.monotonic() - started < deadline_seconds:
        answer = client.get("/readyz", timeout=5)
        if answer.status_code == 200:
            return f"/readyz {time.monotonic() - started:.1f} s after /healthz"
        time.sleep(0.2)
    raise AssertionError(f"/readyz: {answer and answer.text}\n{cluster.logs()}")
