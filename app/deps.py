"""The dependencies routes declare, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from app.config import Settings, get_settings
from app.db import runs as run_store
from app.db.tables import RunRow
from app.db.users import LOCAL_USER_ID
from app.errors import NotFound
from app.jobs.base import Executor
from app.predict_cache import PredictCache

SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(request: Request) -> Iterator[Session]:
    """A session committed when the route function returns, before the response is
    sent (``scope="function"``): a 2xx always follows the commit, and no
    transaction (SQLite: the write lock) outlives the route."""
    factory = request.app.state.session_factory
    with factory() as session:
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        session.commit()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


@dataclass(frozen=True)
class Caller:
    """Who is asking. ``owner_id`` scopes every query; admins see everything."""

    id: str
    name: str
    is_admin: bool

    @property
    def owner_id(self) -> str:
        return self.id

    @property
    def scope(self) -> str | None:
        """The owner filter of read queries: None (all) for admins."""
        return None if self.is_admin else self.id


def get_current_user(settings: SettingsDep) -> Caller:
    """With auth off (the default), every request is the local admin."""
    # ANNLAB_AUTH=on: API keys come with the auth feature; until then, the local admin.
    return Caller(id=LOCAL_USER_ID, name="local", is_admin=True)


CurrentUser = Annotated[Caller, Depends(get_current_user)]


def get_executor(request: Request) -> Executor:
    return request.app.state.executor


ExecutorDep = Annotated[Executor, Depends(get_executor)]


def get_predict_cache(request: Request) -> PredictCache:
    return request.app.state.predict_cache


PredictCacheDep = Annotated[PredictCache, Depends(get_predict_cache)]

RunId = Annotated[str, Path(description="Run id.", max_length=200)]


def valid_run(run_id: RunId, session: SessionDep, user: CurrentUser) -> RunRow:
    """The run, if it exists and the caller may see it; else 404."""
    row = run_store.get_run(session=session, run_id=run_id, owner_id=user.scope)
    if row is None:
        raise NotFound(f"run {run_id!r} not found")
    return row


ValidRun = Annotated[RunRow, Depends(valid_run)]
