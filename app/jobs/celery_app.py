"""The Celery side of ANNLAB_EXECUTOR=celery: the app, its settings, the task, and
the worker that ``annlab worker`` runs.

One task, ``annlab.train_slice(run_id, max_running_per_user)``: train one slice
of a run (``app.jobs.slices``). The per-user limit travels with the task, from
the server's settings to every slice after: the server, which sends runs,
decides it, and a worker started with another ``--concurrency`` (whose default
limit would differ) claims by the same rule as the server sends. The settings below are the design, argued in
docs/architecture.md ("Celery"):

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a task is acked when its
  slice is over, and a pool process that dies mid-slice has its message
  redelivered; the redelivered task counts the death in the database
  (``runs.attempts``, fail at 3), so a poisoned run fails instead of looping.
- ``worker_prefetch_multiplier=1``: a worker holds only the messages it trains,
  so slices queue in the broker, where any idle worker can take them.
- Tasks are short (one slice), so Redis's ``visibility_timeout`` and RabbitMQ's
  ``consumer_timeout`` are never reached; the broker keeps no result.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from dataclasses import dataclass, replace
from multiprocessing.synchronize import Event as ProcessEvent
from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_shutting_down
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db.engine import make_engine, make_session_factory
from app.db.migrate import upgrade_to_head
from app.jobs.slices import train_slice
from app.jobs.worker import WorkerConfig

log = logging.getLogger("annlab.celery")

TASK_NAME = "annlab.train_slice"
#: Redis only: a task not acked for this long is delivered again. Slices are far
#: shorter; a duplicate would be a no-op anyway (the claim).
VISIBILITY_TIMEOUT_SECONDS = 3600
_SINGLE_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class ClusterSettingsError(ValueError):
    """ANNLAB_EXECUTOR=celery with settings it cannot work with."""


def check_settings(settings: Settings) -> None:
    """Refuse what cannot work: every worker machine must reach the same database and
    broker, so a SQLite file (local to one machine, one writer) is not a store."""
    problems = []
    if settings.resolved_database_url.startswith("sqlite"):
        problems.append(
            "ANNLAB_DATABASE_URL is SQLite, which workers on other machines cannot share: "
            "set ANNLAB_DATABASE_URL to PostgreSQL (postgresql+psycopg://user@host/db)"
        )
    if not settings.broker_url:
        problems.append("ANNLAB_BROKER_URL is not set (redis://host:6379/0 or amqp://host)")
    if problems:
        raise ClusterSettingsError("ANNLAB_EXECUTOR=celery: " + "; ".join(problems))


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery settings of annlab's app (see the module's docstring for why)."""
    assert settings.broker_url is not None
    transport: dict[str, Any] = {}
    if settings.broker_url.startswith(("redis://", "rediss://")):
        # Keys prefixed by the queue's name: deployments (and test runs) sharing one
        # Redis database never see each other's messages or unacked sets.
        transport = {
            "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
            "global_keyprefix": f"{settings.celery_queue}:",
        }
    return {
        "broker_url": settings.broker_url,
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 4.0,
        "broker_channel_error_retry": True,
        "task_default_queue": settings.celery_queue,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_prefetch_multiplier": 1,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_hijack_root_logger": False,
    }


@dataclass
class _Runtime:
    """A pool process's database engine and worker settings (made after the fork)."""

    pid: int
    engine: Engine
    factory: sessionmaker[Session]
    config: WorkerConfig


_runtime: _Runtime | None = None
#: Set by the main worker process when its shutdown starts; pool processes, forked
#: after it was made, see it and pause their runs (a checkpoint, requeue, next slice).
_shutdown: ProcessEvent = multiprocessing.get_context("fork").Event()


def _runtime_for(settings: Settings) -> _Runtime:
    global _runtime
    if _runtime is None or _runtime.pid != os.getpid():
        engine = make_engine(settings.resolved_database_url)
        _runtime = _Runtime(
            pid=os.getpid(),
            engine=engine,
            factory=make_session_factory(engine),
            config=WorkerConfig.from_settings("unset", settings),
        )
    return _runtime


def make_celery(settings: Settings) -> Celery:
    """annlab's Celery app for these settings, with its one task registered."""
    check_settings(settings)
    app = Celery("annlab")
    app.conf.update(celery_config(settings))

    @app.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def train_run_slice(run_id: str, max_running_per_user: int | None = None) -> str:
        runtime = _runtime_for(settings)
        config = runtime.config
        if max_running_per_user is not None:  # the sender's (the server's) limit
            config = replace(config, max_running_per_user=max_running_per_user)

        def send(next_run_id: str) -> None:
            send_slice(app, settings.celery_queue, next_run_id, config.max_running_per_user)

        return train_slice(
            runtime.factory,
            config,
            run_id,
            stop_requested=_shutdown.is_set,
            send_next=send,
        )

    return app


def send_slice(app: Celery, queue: str, run_id: str, max_running_per_user: int = 0) -> None:
    """Put the task of ``run_id``'s next slice in the broker, with the per-user limit
    its claim must respect (0 = none)."""
    app.send_task(TASK_NAME, args=[run_id, max_running_per_user], queue=queue)


def _on_process_init(**_kwargs: Any) -> None:
    """A fresh pool process: no database connection inherited from the parent."""
    global _runtime
    _runtime = None


def _on_shutting_down(**_kwargs: Any) -> None:
    log.info("worker shutting down: pausing the running slices")
    _shutdown.set()


def run_worker(settings: Settings, *, concurrency: int) -> None:
    """``annlab worker`` with ANNLAB_EXECUTOR=celery: a Celery worker of ``concurrency``
    pool processes on ``settings.celery_queue``, until SIGTERM/SIGINT (warm shutdown:
    running slices pause at once with an exact checkpoint and are requeued)."""
    check_settings(settings)
    engine = make_engine(settings.resolved_database_url)
    try:
        upgrade_to_head(engine)
    finally:
        engine.dispose()  # no connection may cross the fork into the pool processes
    for name in _SINGLE_THREAD_ENV:  # one core per run, and bit-for-bit results
        os.environ.setdefault(name, "1")
    worker_process_init.connect(_on_process_init, weak=False)
    worker_shutting_down.connect(_on_shutting_down, weak=False)
    if settings.worker_nice > 0:
        try:
            os.nice(settings.worker_nice)
        except OSError:
            log.warning("could not lower the worker's priority (nice %d)", settings.worker_nice)
    app = make_celery(settings)
    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            "--pool=prefork",
            "--loglevel=INFO",
            f"--queues={settings.celery_queue}",
            f"--hostname=annlab-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
    )
