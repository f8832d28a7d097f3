"""A run's progress as server-sent events, from the run's shared feed
(``app.services.run_feed``): one database poller per watched run, however many
streams follow it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
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


#: (status, stop_reason, error): what a status event says.
StatusKey = tuple[str, str | None, str | None]
RUNNING: StatusKey = (RunStatus.RUNNING.value, None, None)


@dataclass(frozen=True)
class EventIds:
    """Where a stream is: the last epoch sent and the status events sent so far.

    A ``progress`` event's id is its epoch (``12``); a ``status`` event's id is its
    number on the stream and the epoch it follows (``12:s3``), so that a client
    reconnecting with ``Last-Event-ID`` (either kind) gets the epochs after that one,
    each once, and status numbers that go on counting."""

    epoch: int = 0
    statuses: int = 0

    @classmethod
    def parse(cls, header: str | None) -> EventIds:
        """The ids after ``Last-Event-ID`` (none, or not one of ours: from the start)."""
        epoch_text, _, status_text = (header or "").strip().partition(":s")
        if not epoch_text.isdigit() or (status_text and not status_text.isdigit()):
            return cls()
        return cls(epoch=int(epoch_text), statuses=int(status_text or 0))

    def next_status(self) -> EventIds:
        return EventIds(self.epoch, self.statuses + 1)

    def at_epoch(self, epoch: int) -> EventIds:
        return EventIds(epoch, self.statuses)

    @property
    def status_id(self) -> str:
        return f"{self.epoch}:s{self.statuses}"


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
            "current one (a run that has already finished: its epochs, then its final "
            "status), and `: ping` comments on a quiet stream; the stream ends after a "
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

    resume = EventIds.parse(request.headers.get("last-event-id"))

    async def stream() -> AsyncIterator[bytes]:
        ids = resume
        sent: StatusKey | None = None  # the last status sent on this stream
        async for update in feed.follow(heartbeat=PING_SECONDS, after_epoch=ids.epoch):
            if update is None:
                yield PING
                continue
            state = update.state
            if state is None:  # deleted while watched: no status to report, just end
                return
            chunk = b""
            current: StatusKey = (state.status.value, state.stop_reason, state.error)
            if sent is None and not (state.terminal and update.metrics):
                # The first event is the current status, except for a run that finished
                # before the stream's first look: its history comes first, then its
                # one final status, for the stream ends after a terminal status (API.md)
                # and a client stops there.
                sent = current
                chunk += _status(ids := ids.next_status(), current)
            if update.metrics:
                if sent is not None and sent[0] == RunStatus.QUEUED:  # it started meanwhile
                    sent = RUNNING if current[0] != RunStatus.RUNNING else current
                    chunk += _status(ids := ids.next_status(), sent)
                first, last = update.metrics[0][0], update.metrics[-1][0]
                chunk += feed.cached(
                    ("progress", first, last), partial(_progress, update.metrics, state.epochs)
                )
                ids = ids.at_epoch(last)
                if state.terminal:
                    sent = None  # after the history: the final status, last
            if current != sent:
                sent = current
                chunk += _status(ids := ids.next_status(), current)
            if chunk:
                yield chunk  # one send per update, however many epochs it brings

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)


def _event(name: str, data: str, event_id: str) -> bytes:
    return f"id: {event_id}\r\nevent: {name}\r\ndata: {data}\r\n\r\n".encode()


def _progress(metrics: list[tuple[int, dict[str, Any]]], epochs: int) -> bytes:
    return b"".join(
        _event(
            "progress",
            ProgressEvent(
                epoch=epoch, epochs=epochs, metrics=EpochMetricsOut(**values)
            ).model_dump_json(),
            str(epoch),
        )
        for epoch, values in metrics
    )


def _status(ids: EventIds, status: StatusKey) -> bytes:
    change = StatusEvent(status=RunStatus(status[0]), stop_reason=status[1], error=status[2])
    return _event("status", change.model_dump_json(), ids.status_id)
