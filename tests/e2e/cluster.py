"""A cluster of real processes for the ``cluster`` tests: `annlab serve` with
ANNLAB_EXECUTOR=celery and `annlab worker` (Celery) processes, on the machine's
PostgreSQL (a private schema per test) and Redis or RabbitMQ.

Every test gets its own queue name (a random token), and on Redis its own key
prefix, so test runs in parallel never take each other's tasks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from tests.e2e.server import ANNLAB, Server, descendants, group_members
from tests.support.waiting import wait_for

REDIS_URL = os.environ.get("ANNLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
AMQP_URL = os.environ.get("ANNLAB_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def reachable(url: str) -> bool:
    """A TCP connection to the broker of ``url`` opens (else the tests skip)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    default = 6379 if parts.scheme.startswith("redis") else 5672
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default), 2):
            return True
    except OSError:
        return False


@dataclass
class CeleryWorker:
    """One `annlab worker` process (a Celery worker) in its own process group."""

    name: str
    log: Path
    env: dict[str, str]
    concurrency: int = 1
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 45.0, *, wait: bool = True) -> CeleryWorker:
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                [str(ANNLAB), "worker", "--concurrency", str(self.concurrency)],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
                cwd=self.log.parent,
                start_new_session=True,
            )
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 45.0) -> None:
        def ready() -> bool:
            assert self.process is not None and self.process.poll() is None, (
                f"worker {self.name} exited\n{self.text()[-3000:]}"
            )
            return " ready." in self.text()

        wait_for(ready, timeout=timeout, interval=0.1, message=f"worker {self.name} not ready")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def pool_pids(self) -> list[int]:
        return descendants(self.pid)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def terminate(self, timeout: float = 15.0) -> None:
        """SIGTERM (a warm shutdown: running slices pause and are requeued); wait."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=timeout)

    def kill9(self, timeout: float = 10.0) -> None:
        """SIGKILL the worker and its pool processes at once (a machine that died)."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=timeout)
        wait_for(lambda: not group_members(self.pid), timeout=timeout, message="group alive")

    def cleanup(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


@dataclass
class Cluster:
    """The settings one test shares between its server and workers, and its processes."""

    root: Path
    database_url: str
    broker_url: str = REDIS_URL
    token: str = field(default_factory=lambda: f"annlab-test-{uuid.uuid4().hex[:10]}")
    extra: dict[str, str] = field(default_factory=dict)
    servers: list[Server] = field(default_factory=list)
    workers: list[CeleryWorker] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            "ANNLAB_EXECUTOR": "celery",
            "ANNLAB_DATABASE_URL": self.database_url,
            "ANNLAB_BROKER_URL": self.broker_url,
            "ANNLAB_CELERY_QUEUE": self.token,
            "ANNLAB_SLICE_SECONDS": "0.5",
            "ANNLAB_REDISPATCH_SECONDS": "1",
            "ANNLAB_WORKER_NICE": "0",
            "ANNLAB_AUTH": "off",
            **self.extra,
        }

    def server(self, name: str = "server") -> Server:
        data_dir = self.root / f"{name}-data"
        data_dir.mkdir(exist_ok=True)
        server = Server(name=name, data_dir=data_dir, log_dir=self.root, env=self.env)
        self.servers.append(server)
        return server

    def worker(self, name: str, concurrency: int = 1) -> CeleryWorker:
        worker = CeleryWorker(
            name=name, log=self.root / f"{name}.log", env=self.env, concurrency=concurrency
        )
        self.workers.append(worker)
        return worker

    def start_workers(self, *names: str) -> list[CeleryWorker]:
        """Start workers side by side (each takes seconds to import and connect)."""
        workers = [self.worker(name).start(wait=False) for name in names]
        for worker in workers:
            worker.wait_ready()
        return workers

    def logs(self) -> str:
        parts = [server.log_tail(150) for server in self.servers]
        parts += [f"----- {w.name} -----\n" + w.text()[-6000:] for w in self.workers]
        return "\n".join(parts)

    def row(self, run_id: str) -> dict[str, Any]:
        """The run's row as stored (attempts, claimed_by: not in the API)."""
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                found = (
                    connection.execute(text("SELECT * FROM runs WHERE id = :id"), {"id": run_id})
                    .mappings()
                    .first()
                )
                return dict(found) if found is not None else {}
        finally:
            engine.dispose()

    def purge_broker(self) -> int:
        """Drop every message of this test's queue: what a broker restart without
        persistence does (the machine's Redis is shared, so it is not restarted)."""
        from celery import Celery

        from app.config import Settings
        from app.jobs.celery_app import celery_config

        settings = Settings(
            executor="celery",
            database_url=self.database_url,
            broker_url=self.broker_url,
            celery_queue=self.token,
        )
        app = Celery("annlab-test")
        app.conf.update(celery_config(settings))
        try:
            with app.connection_for_write() as connection:
                return int(connection.default_channel.queue_purge(self.token) or 0)
        finally:
            app.close()

    def cleanup(self) -> None:
        for worker in self.workers:
            worker.cleanup()
        for server in self.servers:
            server.cleanup()
