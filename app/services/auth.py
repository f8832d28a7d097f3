"""Who is asking: the caller of a request, resolved from an API key."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.db import users as user_store
from app.db.users import LOCAL_USER_ID


@dataclass(frozen=True)
class Caller:
    """Who is asking. ``owner_id`` owns what they create; ``scope`` filters what they
    see (None for admins: everything)."""

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


#: Every request when auth is off: the one local user, an admin.
LOCAL_ADMIN = Caller(id=LOCAL_USER_ID, name="local", is_admin=True)


def authenticate(*, session: Session, key: str) -> Caller | None:
    """The active user holding ``key``; None for an unknown or revoked key."""
    user = user_store.authenticate(session=session, key=key)
    if user is None:
        return None
    return Caller(id=user.id, name=user.name, is_admin=user.is_admin)
