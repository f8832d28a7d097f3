"""The audit table's queries: add one event, read them back filtered."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.db.tables import AuditRow, utcnow


def add_event(
    *,
    session: Session,
    actor: str,
    action: str,
    subject: str | None = None,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditRow:
    """Add the event to the session's transaction (flushed with it, committed with it)."""
    row = AuditRow(
        at=utcnow(),
        actor=actor,
        action=action,
        subject=subject,
        target=target[:1000] if target is not None else None,
        detail=detail,
    )
    session.add(row)
    return row


def list_events(
    *,
    session: Session,
    user: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[AuditRow]:
    """The newest ``limit`` events, newest first; ``user``: done by or concerning that
    user; ``since``: at or after that moment."""
    query = select(AuditRow)
    if user is not None:
        query = query.where(or_(AuditRow.actor == user, AuditRow.subject == user))
    if since is not None:
        query = query.where(AuditRow.at >= since)
    return list(
        session.scalars(query.order_by(AuditRow.at.desc(), AuditRow.id.desc()).limit(limit))
    )
