"""A run's progress as server-sent events, from the run's shared feed
(``app.services.run_feed``): one database poller per watched run, however many
streams follow it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session, sessionmaker

from app.api.runs import NOT_FOUND
from app.deps import CurrentUser, RunId
from app.errors import NotFound
from app.http import GuardedRoute
from app.schemas import EpochMetricsOut
from app.services.run_feed import run_feeds
from app.services.runs import RunSnapshot
from core.stopping import RunStatus

router = APIRouter(prefix="/runs", tags=["runs"], route_class=GuardedRoute)

#: Seconds between two keep-alive comments on a quiet stream.
PING_SECONDS = 15
PING = b": ping\r\n\r\n"
#: What sse-starlette sent: no caching, no proxy buffering.
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


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


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """A JSON schema with its ``$defs`` references written out (it is embedded in the
    OpenAPI document, where ``#/$defs/...`` would not resolve)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: _inline(value, defs) for key, value in schema.items() if key != "$defs"}
    if isinstance(schema, list):
        return [_inline(item, defs) for item in schema]
    return schema


def _event_schema(name: str, model: type[BaseModel]) -> dict[str, Any]:
    data = model.model_json_schema()
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"const": name},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": _inline(data, data.get("$defs", {})),
            },
        },
    }


#: One event of the stream (OpenAPI 3.2's ``itemSchema`` for ``text/event-stream``):
#: ``event: <name>`` with ``data:`` one JSON document of that event's schema.
EVENT_ITEM_SCHEMA: dict[str, Any] = {
    "oneOf": [_event_schema("progress", ProgressEvent), _event_schema("status", StatusEvent)]
}


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
            "schema of each event is the `itemSchema`.",
            "content": {"text/event-stream": {"itemSchema": EVENT_ITEM_SCHEMA}},
        },
    },
    response_class=StreamingResponse,
    summary="Follow a run as server-sent events",
)
async def run_events(run_id: RunId, request: Request, user: CurrentUser) -> StreamingResponse:
    # No route session: the stream outlives the route. Whether the caller may see the
    # run is asked once per feed (one short read, however many streams arrive at once).
    factory: sessionmaker[Session] = request.app.state.session_factory
    feed = run_feeds(request.app.state, lambda: factory).feed(run_id)
    owner = await feed.owner()
    if owner is None or (user.scope is not None and owner != user.scope):
        run_feeds(request.app.state, lambda: factory).release(feed)
        raise NotFound(f"run {run_id!r} not found")

    async def stream() -> AsyncIterator[bytes]:
        last_status: tuple[str, str | None, str | None] | None = None
        async for update in feed.follow(heartbeat=PING_SECONDS):
            if update is None:
                yield PING
                continue
            state = update.state
            if state is None:  # deleted while watched: no status to report, just end
                return
            chunk = b""
            if update.metrics:
                first, last = update.metrics[0][0], update.metrics[-1][0]
                chunk = feed.cached(
                    ("progress", first, last), partial(_progress, update.metrics, state.epochs)
                )
            status = (state.status.value, state.stop_reason, state.error)
            if status != last_status:
                last_status = status
                chunk += feed.cached(("status", *status), partial(_status, state))
            if chunk:
                yield chunk  # one send per update, however many epochs it brings

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)


def _event(name: str, data: str) -> bytes:
    return f"event: {name}\r\ndata: {data}\r\n\r\n".encode()


def _progress(metrics: list[tuple[int, dict[str, Any]]], epochs: int) -> bytes:
    return b"".join(
        _event(
            "progress",
            ProgressEvent(
                epoch=epoch, epochs=epochs, metrics=EpochMetricsOut(**values)
            ).model_dump_json(),
        )
        for epoch, values in metrics
    )


def _status(state: RunSnapshot) -> bytes:
    change = StatusEvent(status=state.status, stop_reason=state.stop_reason, error=state.error)
    return _event("status", change.model_dump_json())
