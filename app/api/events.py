"""A run's progress as server-sent events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session, sessionmaker
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from app.api.runs import NOT_FOUND
from app.deps import CurrentUser, RunId
from app.errors import NotFound
from app.http import GuardedRoute
from app.services import runs as run_service

router = APIRouter(prefix="/runs", tags=["runs"], route_class=GuardedRoute)

#: Seconds between two looks at the database while an event stream is open.
EVENTS_POLL_SECONDS = 0.25
#: Seconds between two keep-alive comments on a quiet stream.
PING_SECONDS = 15


@router.get(
    "/{run_id}/events",
    responses={
        **NOT_FOUND,
        200: {
            "description": "`event: progress` (data `{epoch, epochs, metrics}`) per recorded "
            "epoch, `event: status` (data `{status, stop_reason, error}`) on each status "
            "change starting with the current one; the stream ends after a final status "
            "(or without one if the run is deleted meanwhile).",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
    },
    response_class=EventSourceResponse,
    summary="Follow a run as server-sent events",
)
async def run_events(run_id: RunId, request: Request, user: CurrentUser) -> EventSourceResponse:
    # No route session: the stream outlives the route, and on SQLite an open
    # transaction holds the write lock. Each look is a short session of its own.
    factory: sessionmaker[Session] = request.app.state.session_factory

    def look(after_epoch: int) -> run_service.RunSnapshot | None:
        with factory() as session:
            return run_service.snapshot(
                session=session, run_id=run_id, scope=user.scope, after_epoch=after_epoch
            )

    if await run_in_threadpool(look, 2**31 - 1) is None:
        raise NotFound(f"run {run_id!r} not found")

    async def stream() -> AsyncIterator[dict[str, str]]:
        last_epoch, last_status = 0, None
        while True:
            current = await run_in_threadpool(look, last_epoch)
            if current is None:  # deleted while watched: no status to report, just end
                return
            for epoch, values in current.metrics:
                last_epoch = epoch
                payload = {"epoch": epoch, "epochs": current.epochs, "metrics": values}
                yield {"event": "progress", "data": json.dumps(payload)}
            if current.status != last_status:
                last_status = current.status
                status = {
                    "status": current.status,
                    "stop_reason": current.stop_reason,
                    "error": current.error,
                }
                yield {"event": "status", "data": json.dumps(status)}
            if current.terminal or await request.is_disconnected():
                return
            await asyncio.sleep(EVENTS_POLL_SECONDS)

    return EventSourceResponse(stream(), ping=PING_SECONDS)
