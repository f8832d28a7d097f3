"""Users: for now only the local admin used when auth is off."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.tables import User

LOCAL_USER_ID = "local"


def ensure_local_user(*, session: Session) -> User:
    """The admin every request acts as while ``ANNLAB_AUTH`` is off (created once)."""
    user = session.get(User, LOCAL_USER_ID)
    if user is None:
        user = User(id=LOCAL_USER_ID, name="local", is_admin=True)
        session.add(user)
        session.flush()
    return user


def get_user(*, session: Session, user_id: str) -> User | None:
    return session.scalars(select(User).where(User.id == user_id)).first()
