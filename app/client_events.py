"""A run's server-sent events as typed objects, surviving dropped connections.

API.md: every event carries an ``id:`` and a client reconnecting with
``Last-Event-ID`` gets only what it missed. The server on main at the time of
writing sends no ids and replays the whole history on every connection, so this
stream also deduplicates by content: progress for an epoch at or below the last
one yielded is skipped, and so is a status equal to the last status yielded
(the first event of every connection is the current status). Against either
server the caller sees each epoch once, in order.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, SSEError, connect_sse
from pydantic import ValidationError

from app.client_types import ApiError, ProgressEvent, RunEvent, StatusEvent, error_from

#: Seconds without a byte before the stream counts as dropped (the server pings every 15 s).
READ_TIMEOUT = 45.0
#: The longest pause between two reconnection attempts.
MAX_BACKOFF = 5.0


class EventStream:
    """One run's stream across reconnections; remembers what it has yielded."""

    def __init__(self, http: httpx.Client, path: str, last_event_id: str | None = None) -> None:
        self.http = http
        self.path = path
        self.last_event_id = last_event_id
        self.last_epoch = 0
        self.last_status: tuple[str, str | None, str | None] | None = None
        self.connections = 0

    def iterate(
        self,
        *,
        max_reconnects: int,
        backoff: float,
        on_reconnect: Callable[[int, Exception | None], None] | None,
    ) -> Iterator[RunEvent]:
        failures = 0
        while True:
            error: Exception | None = None
            try:
                for event in self._connect_once():
                    failures = 0
                    yield event
                    if isinstance(event, StatusEvent) and event.finished:
                        return
            except httpx.TransportError as exc:  # dropped, refused, silent for too long
                error = exc
            except ApiError as exc:
                if exc.status is None or exc.status < 500:
                    raise
                error = exc  # a server restarting answers 5xx for a moment
            failures += 1
            if failures > max_reconnects:
                reason = f": {error}" if error is not None else ""
                raise ApiError(
                    None,
                    f"lost the event stream {self.path} after {max_reconnects} "
                    f"reconnection attempts{reason}",
                ) from error
            if on_reconnect is not None:
                on_reconnect(failures, error)
            time.sleep(min(backoff * 2 ** (failures - 1), MAX_BACKOFF))

    def _connect_once(self) -> Iterator[RunEvent]:
        """One connection: the new events it brings, until the server closes it."""
        headers = {"Last-Event-ID": self.last_event_id} if self.last_event_id else {}
        timeout = httpx.Timeout(self.http.timeout.connect or 10.0, read=READ_TIMEOUT)
        self.connections += 1
        with connect_sse(self.http, "GET", self.path, headers=headers, timeout=timeout) as source:
            response = source.response
            if response.is_error:
                response.read()
                raise error_from(response)
            try:
                for sse in source.iter_sse():
                    if sse.id:
                        self.last_event_id = sse.id
                    event = self._accept(sse)
                    if event is not None:
                        yield event
            except SSEError as exc:  # not an event stream at all
                raise ApiError(response.status_code, f"{self.path}: {exc}") from exc

    def _accept(self, sse: ServerSentEvent) -> RunEvent | None:
        """The typed event, or None for a repeat, a ping or an event kind unknown here."""
        if sse.event not in ("progress", "status"):
            return None
        try:
            data: Any = json.loads(sse.data)
            if not isinstance(data, dict):
                return None
            if sse.event == "progress":
                progress = ProgressEvent.model_validate({**data, "id": sse.id or None})
                if progress.epoch <= self.last_epoch:
                    return None
                self.last_epoch = progress.epoch
                return progress
            status = StatusEvent.model_validate({**data, "id": sse.id or None})
        except (ValueError, ValidationError):
            return None  # a malformed event is not worth ending a follow for
        key = (status.status, status.stop_reason, status.error)
        if key == self.last_status:
            return None
        self.last_status = key
        return status
