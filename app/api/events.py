"""A run's progress as server-sent events, from the run's shared feed
(``app.services.run_feed``): one database poller per watched run, however many
streams follow it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session, sessionmaker
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from app.api.runs import NOT_FOUND
from app.deps import CurrentUser, RunId
from app.errors import NotFound
from app.http import GuardedRoute
from app.schemas import EpochMetricsOut
from app.services import runs as run_service
from app.services.run_feed import run_feeds
from core.stopping import RunStatus

router = APIRouter(prefix="/runs", tags=["runs"], route_class=GuardedRoute)

#: Seconds between two keep-alive comments on a quiet stream.
PING_SECONDS = 15


class ProgressEvent(BaseModel):
    """The data of an ``event: progress``: one recorded epoch."""

    epoch: int = Field(description="The epoch (1-based).")
    epochs: int = Field(description="Epochs asked for.")
    metrics: EpochMetricsOut


class StatusEvent(BaseModel):
    """The data of an ``event: status``: the run's status, sent first and on each change."""

    status: RunStatus
    stop_reason: str | None = Field(description="Why it stopped (null while it runs).")
    error: str | None = Field(description="What went wrong, for a failed run.")


#: The events of the stream, each ``event: <name>`` with ``data:`` one JSON document of
#: the schema given here (OpenAPI 3.1 has no schema for an event stream's items; tests
#: check the events sent against these).
EVENT_SCHEMAS: dict[str, dict[str, Any]] = {
    "progress": ProgressEvent.model_json_schema(),
    "status": StatusEvent.model_json_schema(),
}


def _progress_data(epoch: int, values: dict[str, Any], epochs: int) -> str:
    event = ProgressEvent(epoch=epoch, epochs=epochs, metrics=EpochMetricsOut(**values))
    return event.model_dump_json()


@router.get(
    "/{run_id}/events",
    responses={
        **NOT_FOUND,
        200: {
            "description": "`event: progress` (data: a `ProgressEvent`, `{epoch, epochs, "
            "metrics}`) per recorded epoch, `event: status` (data: a `StatusEvent`, "
            "`{status, stop_reason, error}`) on each status change starting with the "
            "current one, and `: ping` comments on a quiet stream; the stream ends after a "
            "final status (or without one if the run is deleted meanwhile). The data "
            "schemas are under `x-events`.",
            "content": {
                "text/event-stream": {
                    "schema": {"type": "string", "description": "Server-sent events."},
                    "x-events": EVENT_SCHEMAS,
                }
            },
        },
    },
    response_class=EventSourceResponse,
    summary="Follow a run as server-sent events",
)
async def run_events(run_id: RunId, request: Request, user: CurrentUser) -> EventSourceResponse:
    # No route session: the stream outlives the route. The caller may see the run
    # (one short read), then the stream follows the run's shared feed.
    factory: sessionmaker[Session] = request.app.state.session_factory

    def visible() -> bool:
        with factory() as session:
            found = run_service.snapshot(
                session=session, run_id=run_id, scope=user.scope, after_epoch=2**31 - 1
            )
            return found is not None

    if not await run_in_threadpool(visible):
        raise NotFound(f"run {run_id!r} not found")
    feed = run_feeds(request.app.state, lambda: factory).feed(run_id)

    async def stream() -> AsyncIterator[dict[str, str]]:
        last_status: tuple[str, str | None, str | None] | None = None
        async for update in feed.follow():
            state = update.state
            if state is None:  # deleted while watched: no status to report, just end
                return
            for epoch, values in update.metrics:
                yield {"event": "progress", "data": feed.rendered(epoch, values, _progress_data)}
            status = (state.status.value, state.stop_reason, state.error)
            if status != last_status:
                last_status = status
                change = StatusEvent(
                    status=state.status, stop_reason=state.stop_reason, error=state.error
                )
                yield {"event": "status", "data": change.model_dump_json()}

    return EventSourceResponse(stream(), ping=PING_SECONDS)
