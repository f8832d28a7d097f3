"""Users and their keys, as the admin commands change them: ``app.db.users`` plus the
audit event of each change, in the same transaction (the CLI commits once)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.db import users as user_store
from app.db.tables import User
from app.db.users import DeletedUser, NewUser
from app.services import audit
from app.services.audit import CLI_ACTOR


def create_user(
    *, session: Session, name: str, is_admin: bool = False, actor: str = CLI_ACTOR
) -> NewUser:
    created = user_store.create_user(session=session, name=name, is_admin=is_admin)
    audit.record(
        session=session,
        actor=actor,
        action="user.created",
        subject=name,
        target=created.user.id,
        detail={"admin": is_admin},
    )
    return created


def revoke_user(*, session: Session, name: str, actor: str = CLI_ACTOR) -> tuple[User, bool, int]:
    user, revoked_now, cancelled = user_store.revoke_user(session=session, name=name)
    if revoked_now or cancelled:
        audit.record(
            session=session,
            actor=actor,
            action="user.revoked",
            subject=name,
            target=user.id,
            detail={"queued_runs_cancelled": cancelled, "already_revoked": not revoked_now},
        )
    return user, revoked_now, cancelled


def rotate_key(*, session: Session, name: str, actor: str = CLI_ACTOR) -> NewUser:
    rotated = user_store.rotate_key(session=session, name=name)
    audit.record(
        session=session, actor=actor, action="user.rotated", subject=name, target=rotated.user.id
    )
    return rotated


def delete_user(
    *, session: Session, name: str, purge: bool = False, actor: str = CLI_ACTOR
) -> DeletedUser:
    """``app.db.users.delete_user``; the event only once the user is gone (a purge that
    waits for running runs calls this again)."""
    done = user_store.delete_user(session=session, name=name, purge=purge)
    if not done.still_running:
        audit.record(
            session=session,
            actor=actor,
            action="user.deleted",
            subject=name,
            detail={
                "purged": purge,
                "runs": done.runs,
                "datasets": done.datasets,
                "queued_runs_cancelled": done.cancelled,
            },
        )
    return done
