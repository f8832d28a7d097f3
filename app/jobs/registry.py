"""Executors by name: ``ANNLAB_EXECUTOR`` picks one (``make_executor``).

Adding a backend (e.g. ``celery``) is a class implementing ``Executor``, one
``register_executor("celery", CeleryExecutor)`` where it is defined, and the
name added to ``app.config.ExecutorName``.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.jobs.base import Executor, NoExecutor
from app.jobs.local import LocalProcessExecutor, ThreadExecutor


class ExecutorFactory(Protocol):
    """What builds an executor: an ``Executor`` subclass is one."""

    def __call__(self, *, settings: Settings, factory: sessionmaker[Session]) -> Executor: ...


def _no_executor(*, settings: Settings, factory: sessionmaker[Session]) -> Executor:
    return NoExecutor()


def _celery_executor(*, settings: Settings, factory: sessionmaker[Session]) -> Executor:
    """Imported on demand: a server on the local pool never loads Celery."""
    from app.jobs.celery_executor import CeleryExecutor

    return CeleryExecutor(settings=settings, factory=factory)


EXECUTORS: dict[str, ExecutorFactory] = {
    "local": LocalProcessExecutor,
    "process": LocalProcessExecutor,  # the old name of "local"
    "celery": _celery_executor,
    "thread": ThreadExecutor,
    "none": _no_executor,
}


def register_executor(name: str, factory: ExecutorFactory) -> None:
    """Make ``ANNLAB_EXECUTOR=name`` build executors with ``factory``."""
    EXECUTORS[name] = factory


def make_executor(settings: Settings, factory: sessionmaker[Session]) -> Executor:
    """The executor ``settings.executor`` names, not started yet."""
    try:
        build = EXECUTORS[settings.executor]
    except KeyError:
        known = ", ".join(sorted(EXECUTORS))
        raise ValueError(f"ANNLAB_EXECUTOR={settings.executor!r} is not one of {known}") from None
    return build(settings=settings, factory=factory)
