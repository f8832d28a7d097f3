"""The model registry: names for trained models, numbered versions, movable aliases.

A version points at a run's final model or one of its snapshots, i.e. at a
``ModelKey`` of the serving cache, so predicting by name shares the cache with
predicting by run. What a ``(name, version-or-alias)`` resolves to is kept in a
small ``Resolutions`` map, so a warm prediction by alias reads no database; every
write of this process that changes a resolution (an alias moved or deleted, a
model deleted) clears it first, so the next request sees the change. A process
that serves models without writing the registry (``annlab models serve``) builds
its ``Resolutions`` with ``ttl_seconds`` and looks again after that long.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import registry as store
from app.db import runs as run_store
from app.db import users as user_store
from app.db.tables import ModelRow, ModelVersionRow, RunRow
from app.errors import Conflict, NotFound, Unprocessable
from app.schemas_registry import MODEL_NAME_PATTERN
from app.services import audit, datasets, serving
from app.services.auth import Caller
from app.services.serving import ModelCache, ModelKey
from core.stopping import RunStatus


@dataclass(frozen=True)
class Resolved:
    """Where a model reference points: the cache key, and the model's owner."""

    key: ModelKey
    owner_id: str
    version: int
    #: The dataset's column names (MLflow requests name their columns).
    feature_names: tuple[str, ...]


class Resolutions:
    """``(name, reference) → Resolved``; ``ttl_seconds`` None: valid until cleared.

    Each name has a generation, bumped by ``forget``: a lookup read from the database
    is stored only if no write changed the name since the lookup began
    (``generation``), else a request that read the old alias just before a move would
    store it after the move's ``forget`` and serve it until the next move."""

    def __init__(self, ttl_seconds: float | None = None) -> None:
        self.ttl_seconds = ttl_seconds
        self._entries: dict[tuple[str, str], tuple[Resolved, float]] = {}
        self._generations: dict[str, int] = {}
        self._lock = threading.Lock()

    def generation(self, name: str) -> int:
        """Take before reading the database for ``name``; hand to ``put``."""
        return self._generations.get(name, 0)

    def get(self, name: str, reference: str) -> Resolved | None:
        entry = self._entries.get((name, reference))
        if entry is None:
            return None
        if self.ttl_seconds is not None and time.monotonic() - entry[1] > self.ttl_seconds:
            return None
        return entry[0]

    def put(
        self, name: str, reference: str, resolved: Resolved, generation: int | None = None
    ) -> None:
        with self._lock:
            if generation is not None and self._generations.get(name, 0) != generation:
                return  # moved (or deleted) while this lookup read the database
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[(name, reference)] = (resolved, time.monotonic())

    def forget(self, name: str) -> None:
        with self._lock:
            self._generations[name] = self._generations.get(name, 0) + 1
            for key in [key for key in self._entries if key[0] == name]:
                del self._entries[key]


def check_alias(alias: str) -> None:
    """Aliases follow the model-name rule and are not numbers (a number is a version)."""
    if not re.fullmatch(MODEL_NAME_PATTERN, alias) or alias.isdigit():
        raise Unprocessable(
            f"alias {alias!r}: must match {MODEL_NAME_PATTERN} and not be a number "
            "(a number names a version)"
        )


def _record(
    *, session: Session, actor: Caller, action: str, model: ModelRow, **detail: Any
) -> None:
    """The audit event of a change to ``model`` (its owner is the subject)."""
    owner = user_store.get_user(session=session, user_id=model.owner_id)
    audit.record(
        session=session,
        actor=actor,
        action=action,
        subject=owner.name if owner is not None else model.owner_id,
        target=model.name,
        detail=detail or None,
    )


def create_model(
    *, session: Session, owner: Caller, name: str, description: str | None
) -> ModelRow:
    """201; 409 when the name is taken. Commits."""
    if store.find_model(session=session, name=name) is not None:
        raise Conflict(f"a model named {name!r} already exists")
    try:
        row = store.create_model(
            session=session, owner_id=owner.owner_id, name=name, description=description
        )
        _record(session=session, actor=owner, action="model.created", model=row)
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"a model named {name!r} already exists") from None
    return row


def get_model(*, session: Session, name: str, scope: str | None) -> ModelRow:
    """404 for an unknown name or another user's model."""
    row = store.find_model(session=session, name=name)
    if row is None or (scope is not None and row.owner_id != scope):
        raise NotFound(f"model {name!r} not found")
    return row


def delete_model(
    *, session: Session, model: ModelRow, resolutions: Resolutions, actor: Caller
) -> None:
    """The model, its versions and aliases; the runs stay. Commits."""
    resolutions.forget(model.name)
    _record(session=session, actor=actor, action="model.deleted", model=model)
    store.delete_model(session=session, model_id=model.id)
    session.commit()
    resolutions.forget(model.name)


def add_version(
    *,
    session: Session,
    cache: ModelCache,
    model: ModelRow,
    run: RunRow,
    epoch: int | None,
    actor: Caller,
) -> ModelVersionRow:
    """A new version from a succeeded run's final model, or from its snapshot at
    ``epoch`` (any status); 409 otherwise (404 listing the epochs for no snapshot
    there). The model must load: it is what the version will serve. Commits."""
    if epoch is None and run.status != RunStatus.SUCCEEDED:
        raise Conflict(f"run {run.id!r} is {run.status}: a version needs a succeeded run's model")
    serving.model_of(session=session, cache=cache, run=run, epoch=epoch)
    at = serving.final_epoch(run) if epoch is None else epoch
    row = store.add_version(
        session=session,
        model=model,
        run_id=run.id,
        epoch=epoch,
        metrics=_metrics_at(session=session, run_id=run.id, epoch=at),
    )
    _record(
        session=session,
        actor=actor,
        action="model.version_registered",
        model=model,
        version=row.version,
        run_id=run.id,
        epoch=epoch,
    )
    session.commit()
    return row


def _metrics_at(*, session: Session, run_id: str, epoch: int) -> dict[str, Any] | None:
    for metric in run_store.get_metrics(session=session, run_id=run_id, after_epoch=epoch - 1):
        if metric.epoch == epoch:
            return run_store.metrics_dict(metric)
    return None


def get_version(*, session: Session, model: ModelRow, version: int) -> ModelVersionRow:
    row = store.get_version(session=session, model_id=model.id, version=version)
    if row is None:
        known = [v.version for v in store.versions(session=session, model_id=model.id)]
        raise NotFound(f"model {model.name!r} has no version {version}: its versions are {known}")
    return row


def set_alias(
    *,
    session: Session,
    model: ModelRow,
    alias: str,
    version: int,
    resolutions: Resolutions,
    actor: Caller,
) -> None:
    """Point ``alias`` at ``version`` (404 for no such version). Commits; the next
    request by this alias uses the new version."""
    check_alias(alias)
    get_version(session=session, model=model, version=version)
    before = store.alias_version(session=session, model_id=model.id, alias=alias)
    store.set_alias(session=session, model_id=model.id, alias=alias, version=version)
    _record(
        session=session,
        actor=actor,
        action="model.alias_set",
        model=model,
        alias=alias,
        version=version,
        previous=before,
    )
    session.commit()
    resolutions.forget(model.name)


def delete_alias(
    *, session: Session, model: ModelRow, alias: str, resolutions: Resolutions, actor: Caller
) -> None:
    if not store.delete_alias(session=session, model_id=model.id, alias=alias):
        raise NotFound(f"model {model.name!r} has no alias {alias!r}")
    _record(session=session, actor=actor, action="model.alias_deleted", model=model, alias=alias)
    session.commit()
    resolutions.forget(model.name)


def resolve(
    *, session: Session, name: str, reference: str, scope: str | None, resolutions: Resolutions
) -> Resolved:
    """``reference``: a version number, else an alias. 404 for an unknown model (or
    another user's), version or alias."""
    resolved = resolutions.get(name, reference)
    if resolved is None:
        generation = resolutions.generation(name)  # before the first read of the session
        model = get_model(session=session, name=name, scope=None)
        if reference.isdigit():
            version = int(reference)
        else:
            found = store.alias_version(session=session, model_id=model.id, alias=reference)
            if found is None:
                raise NotFound(f"model {name!r} has no alias {reference!r}")
            version = found
        row = get_version(session=session, model=model, version=version)
        resolved = Resolved(
            ModelKey(row.run_id, row.epoch),
            model.owner_id,
            row.version,
            _feature_names(session=session, run_id=row.run_id),
        )
        resolutions.put(name, reference, resolved, generation)
    if scope is not None and resolved.owner_id != scope:
        raise NotFound(f"model {name!r} not found")
    return resolved


def _feature_names(*, session: Session, run_id: str) -> tuple[str, ...]:
    run = run_store.get_run(session=session, run_id=run_id, owner_id=None)
    if run is None:
        raise NotFound(f"run {run_id!r} not found")
    try:
        names = datasets.get_dataset(
            session=session, dataset_id=run.dataset_id, owner_id=None
        ).feature_names
    except NotFound:  # the dataset was deleted (force): columns by position only
        names = []
    return tuple(names)


@dataclass(frozen=True)
class Served:
    resolved: Resolved
    model: serving.LoadedModel


def cached(
    *, name: str, reference: str, scope: str | None, resolutions: Resolutions, cache: ModelCache
) -> Served | None:
    """The model of a reference if both lookups are warm (no database)."""
    resolved = resolutions.get(name, reference)
    if resolved is None:
        return None
    if scope is not None and resolved.owner_id != scope:
        raise NotFound(f"model {name!r} not found")
    entry = cache.get(resolved.key)
    return None if entry is None else Served(resolved, entry)


def load(
    *,
    session: Session,
    name: str,
    reference: str,
    scope: str | None,
    resolutions: Resolutions,
    cache: ModelCache,
) -> Served:
    """The model a reference points at, loaded (and cached) like a run's."""
    resolved = resolve(
        session=session, name=name, reference=reference, scope=scope, resolutions=resolutions
    )
    entry = serving.load_model(session=session, cache=cache, key=resolved.key, scope=None)
    return Served(resolved, entry)


def protect_runs(*, session: Session, run_ids: list[str]) -> None:
    """409 naming the model when a version refers to one of these runs."""
    used = store.models_using_runs(session=session, run_ids=run_ids)
    if used:
        name, version, run_id = used[0]
        raise Conflict(
            f"run {run_id!r} is version {version} of model {name!r}: delete the model "
            f"{name!r} (or use another run) before deleting the run"
        )


def model_document(*, session: Session, model: ModelRow) -> dict[str, Any]:
    """API.md's ``Model``."""
    versions = store.versions(session=session, model_id=model.id)
    return {
        "name": model.name,
        "description": model.description,
        "created_at": model.created_at,
        "latest_version": versions[-1].version if versions else None,
        "versions": [version_document(row) for row in versions],
        "aliases": store.aliases(session=session, model_id=model.id),
    }


def version_document(row: ModelVersionRow) -> dict[str, Any]:
    return {
        "version": row.version,
        "run_id": row.run_id,
        "epoch": row.epoch,
        "created_at": row.created_at,
        "metrics": row.metrics,
    }
