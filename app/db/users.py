"""Users and their API keys, and the local admin used while auth is off.

A key is ``annlab_`` followed by 32 random bytes (``secrets.token_urlsafe``).
Only its SHA-256 is stored. A slow, salted password hash (bcrypt, argon2) is
there to make guessing a *human-chosen* password expensive; a key with 256 bits
of entropy cannot be guessed, so one fast hash already makes a leaked database
useless for logging in, and checking a key costs microseconds on every request.
The first characters of the key (``key_prefix``, no secret: 48 of the 256 bits)
find the candidate rows; the hashes are then compared with
``hmac.compare_digest``, in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.db.tables import (
    CheckpointRow,
    DatasetRow,
    MetricRow,
    RunRow,
    User,
    WeightsRow,
    utcnow,
)

LOCAL_USER_ID = "local"
LOCAL_USER_NAME = "local"
KEY_PREFIX = "annlab_"
#: Characters of the key stored in clear to look it up: "annlab_" and 8 random ones.
LOOKUP_LENGTH = len(KEY_PREFIX) + 8
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}")


class UserError(ValueError):
    """A user that cannot be created or changed (duplicate or invalid name, unknown user)."""


@dataclass(frozen=True)
class NewUser:
    """A user just created and its key: the only time the key exists outside the client."""

    user: User
    key: str


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """SHA-256 of the key, hex: enough for a random 256-bit key (see the module docstring)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def ensure_local_user(*, session: Session) -> User:
    """The admin every request acts as while ``ANNLAB_AUTH`` is off (created once)."""
    user = session.get(User, LOCAL_USER_ID)
    if user is None:
        user = User(id=LOCAL_USER_ID, name=LOCAL_USER_NAME, is_admin=True)
        session.add(user)
        session.flush()
    return user


def get_user(*, session: Session, user_id: str) -> User | None:
    return session.scalars(select(User).where(User.id == user_id)).first()


def get_user_by_name(*, session: Session, name: str) -> User | None:
    return session.scalars(select(User).where(User.name == name)).first()


def create_user(*, session: Session, name: str, is_admin: bool = False) -> NewUser:
    """A user with a fresh key; ``UserError`` if the name is invalid or taken."""
    if not NAME_PATTERN.fullmatch(name):
        raise UserError(
            f"invalid user name {name!r}: 1 to 100 characters, letters, digits and . _ @ + - "
            "(starting with a letter or digit)"
        )
    if name == LOCAL_USER_NAME:
        raise UserError(f"the name {name!r} is reserved for the admin of auth-off mode")
    existing = get_user_by_name(session=session, name=name)
    if existing is not None:
        raise UserError(f"a user named {name!r} already exists (names stay taken after a revoke)")
    key = new_key()
    user = User(
        id="usr_" + secrets.token_hex(8),
        name=name,
        key_prefix=key[:LOOKUP_LENGTH],
        key_hash=hash_key(key),
        is_admin=is_admin,
        created_at=utcnow(),
    )
    session.add(user)
    session.flush()
    return NewUser(user=user, key=key)


def list_users(*, session: Session) -> list[User]:
    """Every user with a key, oldest first (the local admin of auth-off mode is left out)."""
    return list(
        session.scalars(
            select(User).where(User.id != LOCAL_USER_ID).order_by(User.created_at, User.name)
        )
    )


def _existing(*, session: Session, name: str) -> User:
    user = get_user_by_name(session=session, name=name)
    if user is None or user.id == LOCAL_USER_ID:
        raise UserError(f"no user named {name!r} (annlab users list shows them)")
    return user


def cancel_queued_runs(*, session: Session, owner_id: str) -> int:
    """Cancel every queued run of the owner at once (no worker has them); how many."""
    result = session.execute(
        update(RunRow)
        .where(RunRow.owner_id == owner_id, RunRow.status == "queued")
        .values(
            status="cancelled",
            stop_reason="cancelled",
            cancel_requested=True,
            finished_at=utcnow(),
            claimed_by=None,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def revoke_user(*, session: Session, name: str) -> tuple[User, bool, int]:
    """Revoke the user's key and cancel their queued runs: (user, revoked now, runs
    cancelled). Running runs finish (their owner can no longer read them; admins can)."""
    user = _existing(session=session, name=name)
    cancelled = cancel_queued_runs(session=session, owner_id=user.id)
    if user.revoked_at is not None:
        session.flush()
        return user, False, cancelled
    user.revoked_at = utcnow()
    session.flush()
    return user, True, cancelled


def rotate_key(*, session: Session, name: str) -> NewUser:
    """A new key for the user; the old one stops working with this commit (every request
    looks its key up, nothing caches it). A revoked user stays revoked: ``UserError``."""
    user = _existing(session=session, name=name)
    if user.revoked_at is not None:
        raise UserError(f"{name!r} is revoked; create a new user instead of rotating the key")
    key = new_key()
    user.key_prefix = key[:LOOKUP_LENGTH]
    user.key_hash = hash_key(key)
    session.flush()
    return NewUser(user=user, key=key)


@dataclass(frozen=True)
class DeletedUser:
    """What ``delete_user`` did: runs and datasets deleted (purge) or handed to the admin."""

    name: str
    runs: int
    datasets: int
    purged: bool
    cancelled: int
    still_running: list[str]


def running_runs(*, session: Session, owner_id: str) -> list[str]:
    return list(
        session.scalars(
            select(RunRow.id).where(RunRow.owner_id == owner_id, RunRow.status == "running")
        )
    )


def delete_user(*, session: Session, name: str, purge: bool = False) -> DeletedUser:
    """Delete a user; their queued runs are cancelled. Without ``purge`` their runs and
    datasets go to the local admin (seen by every admin; running runs finish; their
    idempotency keys are dropped, they belonged to the deleted key). With ``purge`` they
    are deleted; running runs are asked to stop first (``still_running``: nothing
    deleted yet, call again once they stopped)."""
    user = _existing(session=session, name=name)
    ensure_local_user(session=session)
    cancelled = cancel_queued_runs(session=session, owner_id=user.id)
    running = running_runs(session=session, owner_id=user.id) if purge else []
    if running:  # without purge they finish, for the admins
        session.execute(update(RunRow).where(RunRow.id.in_(running)).values(cancel_requested=True))
    run_ids = list(session.scalars(select(RunRow.id).where(RunRow.owner_id == user.id)))
    dataset_ids = list(session.scalars(select(DatasetRow.id).where(DatasetRow.owner_id == user.id)))
    if purge and running:
        session.flush()
        return DeletedUser(name, 0, 0, True, cancelled, running)
    if purge:
        for table in (MetricRow, WeightsRow, CheckpointRow):
            session.execute(delete(table).where(table.run_id.in_(run_ids)))
        session.execute(delete(RunRow).where(RunRow.owner_id == user.id))
        session.execute(delete(DatasetRow).where(DatasetRow.owner_id == user.id))
    else:
        session.execute(
            update(RunRow)
            .where(RunRow.owner_id == user.id)
            .values(owner_id=LOCAL_USER_ID, idempotency_key=None)
        )
        session.execute(
            update(DatasetRow).where(DatasetRow.owner_id == user.id).values(owner_id=LOCAL_USER_ID)
        )
    session.execute(delete(User).where(User.id == user.id))
    session.flush()
    return DeletedUser(name, len(run_ids), len(dataset_ids), purge, cancelled, [])


def authenticate(*, session: Session, key: str) -> User | None:
    """The active user holding ``key``; None for an unknown or revoked key."""
    if not key.startswith(KEY_PREFIX) or len(key) < LOOKUP_LENGTH or len(key) > 200:
        return None
    candidates = session.scalars(select(User).where(User.key_prefix == key[:LOOKUP_LENGTH]))
    digest = hash_key(key)
    found: User | None = None
    for user in candidates:
        if user.key_hash is not None and hmac.compare_digest(digest, user.key_hash):
            found = user
    if found is None or found.revoked_at is not None:
        return None
    return found
