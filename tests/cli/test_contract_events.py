"""Contract tests of the event stream (API.md "Events"): ids, Last-Event-ID on
reconnection, and the client's deduplication — against canned streams on an
`httpx.MockTransport`, since main's server sends no ids yet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.client import AnnlabClient, ApiError
from app.client_types import ProgressEvent, StatusEvent

PATH = "/api/v1/runs/run_1/events"


def progress(epoch: int, epochs: int = 5) -> str:
    metrics = {
        "train_loss": 1.0 / epoch,
        "val_loss": 1.1 / epoch,
        "train_accuracy": 0.5,
        "val_accuracy": 0.5,
        "learning_rate": 0.01,
    }
    return f"id: {epoch}\nevent: progress\ndata: {json.dumps({'epoch': epoch, 'epochs': epochs, 'metrics': metrics})}\n\n"


def status(counter: int, value: str, stop_reason: str | None = None) -> str:
    data = {"status": value, "stop_reason": stop_reason, "error": None}
    return f"id: s{counter}\nevent: status\ndata: {json.dumps(data)}\n\n"


class Stream(httpx.SyncByteStream):
    """An event-stream body; ``drop`` ends it as a dropped connection would."""

    def __init__(self, events: list[str], drop: bool = False) -> None:
        self.events, self.drop = events, drop

    def __iter__(self) -> Iterator[bytes]:
        for event in self.events:
            yield event.encode()
        if self.drop:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body"
            )


def answer(events: list[str], drop: bool = False) -> httpx.Response:
    return httpx.Response(
        200, headers={"content-type": "text/event-stream"}, stream=Stream(events, drop)
    )


def client_for(*answers: httpx.Response) -> tuple[AnnlabClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("GET", PATH)
        seen.append(request)
        return queue.pop(0)

    return AnnlabClient("http://annlab.test", transport=httpx.MockTransport(handle)), seen


def shape(events: list[Any]) -> list[Any]:
    return [e.epoch if isinstance(e, ProgressEvent) else e.status for e in events]


def test_a_drop_reconnects_with_last_event_id_and_gets_only_what_was_missed() -> None:
    api, seen = client_for(
        answer([status(1, "running"), progress(1), progress(2), progress(3)], drop=True),
        answer(
            [status(2, "running"), progress(4), progress(5), status(3, "succeeded", "completed")]
        ),
    )
    reconnects: list[int] = []
    events = list(api.events("run_1", backoff=0, on_reconnect=lambda n, e: reconnects.append(n)))
    assert shape(events) == ["running", 1, 2, 3, 4, 5, "succeeded"]
    assert "last-event-id" not in seen[0].headers
    assert seen[1].headers["last-event-id"] == "3"
    assert seen[0].headers["accept"] == "text/event-stream"
    assert reconnects == [1]
    assert (
        events[1].id == "1"
        and isinstance(events[-1], StatusEvent)
        and events[-1].stop_reason == "completed"
    )


def test_a_server_that_replays_everything_is_deduplicated() -> None:
    """Today's server: no ids, the whole history again on each connection."""
    history = [progress(1), progress(2), progress(3)]
    api, _ = client_for(
        answer([status(1, "running"), *history[:2]], drop=True),
        answer([status(1, "running"), *history, status(2, "succeeded", "completed")]),
    )
    assert shape(list(api.events("run_1", backoff=0))) == ["running", 1, 2, 3, "succeeded"]


def test_a_stream_that_ends_cleanly_before_the_final_status_is_reopened() -> None:
    api, seen = client_for(
        answer([status(1, "queued")]),
        answer([status(2, "running"), progress(1), status(3, "failed", "diverged")]),
    )
    assert shape(list(api.events("run_1", backoff=0))) == ["queued", "running", 1, "failed"]
    assert seen[1].headers["last-event-id"] == "s1"


def test_the_stream_ends_at_the_terminal_status() -> None:
    api, seen = client_for(answer([status(1, "succeeded", "completed"), progress(9)]))
    assert shape(list(api.events("run_1"))) == ["succeeded"]
    assert len(seen) == 1


def test_too_many_drops_in_a_row_is_an_api_error() -> None:
    api, seen = client_for(*(answer([], drop=True) for _ in range(4)))
    with pytest.raises(
        ApiError, match=r"lost the event stream .* after 3 reconnection attempts"
    ) as caught:
        list(api.events("run_1", backoff=0, max_reconnects=3))
    assert caught.value.status is None and len(seen) == 4


def test_an_unknown_run_is_a_404_not_a_reconnection() -> None:
    api, seen = client_for(httpx.Response(404, json={"detail": "run 'run_1' not found"}))
    with pytest.raises(ApiError, match="run 'run_1' not found"):
        list(api.events("run_1", backoff=0))
    assert len(seen) == 1


def test_pings_and_unknown_events_are_skipped() -> None:
    api, _ = client_for(
        answer(
            [
                ": ping\n\n",
                'event: snapshot\ndata: {"epoch": 1}\n\n',
                progress(1),
                status(1, "succeeded"),
            ]
        )
    )
    assert shape(list(api.events("run_1"))) == [1, "succeeded"]
