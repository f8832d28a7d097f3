"""The audit trail of user and admin actions.

Every service that changes an account or a user's data calls ``record`` before its
own commit, so the event and the action are one transaction: a failed action leaves
no event, and no action happens without one. The events name users, runs and files
by value (no foreign keys), so they outlive what they name.

Actions: ``user.created``, ``user.rotated``, ``user.revoked``, ``user.deleted``;
``run.submitted``, ``run.stopped``, ``run.cancelled``, ``run.deleted``;
``experiment.submitted``, ``experiment.cancelled``, ``experiment.deleted``;
``dataset.uploaded``, ``dataset.deleted``; ``model.created``, ``model.deleted``,
``model.version_registered``, ``model.alias_set``, ``model.alias_deleted``;
``backup.taken``, ``backup.restored``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from app.db import audit as audit_store
from app.db.engine import make_engine, make_session_factory, transaction
from app.db.tables import AuditRow
from app.services.auth import Caller

#: The actor of the ``annlab`` admin commands run on the server's machine.
CLI_ACTOR = "cli"


def record(
    *,
    session: Session,
    actor: Caller | str,
    action: str,
    subject: str | None = None,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an event to the caller's transaction (the action's own commit stores it)."""
    audit_store.add_event(
        session=session,
        actor=actor if isinstance(actor, str) else actor.name,
        action=action,
        subject=subject,
        target=target,
        detail=detail,
    )


def record_in_database(
    url: str, *, action: str, target: str | None = None, detail: dict[str, Any] | None = None
) -> bool:
    """One event by the CLI in the database at ``url``, committed at once (backup and
    restore work on files, not in a transaction). False, nothing written, when that
    database has no audit table (a restored backup older than migration 0007)."""
    engine = make_engine(url)
    try:
        if not inspect(engine).has_table(AuditRow.__tablename__):
            return False
        with transaction(make_session_factory(engine)) as session:
            record(session=session, actor=CLI_ACTOR, action=action, target=target, detail=detail)
        return True
    finally:
        engine.dispose()
