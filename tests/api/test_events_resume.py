"""Event streams a client can rely on, read with a real SSE client (httpx-sse) from a
real server socket: an ``id:`` on every event, ``Last-Event-ID`` resumes without gaps
or repeats, the first event is the current status, and ``running`` comes before the
first ``progress`` also for a run that was queued at connect."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from httpx_sse import ServerSentEvent, connect_sse

from app.main import create_app
from tests.api.conftest import API, make_settings
from tests.support.specs import long_spec
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def http(tmp_path: Path) -> Iterator[httpx.Client]:
    """A client of an app served by uvicorn on a real socket (one worker thread)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app = create_app(make_settings(tmp_path / "data", workers=1))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started or None, timeout=30, message="uvicorn started")
    port = sock.getsockname()[1]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield client
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()


def _read(
    http: httpx.Client, url: str, *, until: Any, last_id: str | None = None
) -> list[ServerSentEvent]:
    """Events of one connection until ``until(events)`` holds (or the stream ends)."""
    headers = {"Last-Event-ID": last_id} if last_id is not None else {}
    events: list[ServerSentEvent] = []
    with connect_sse(http, "GET", url, headers=headers) as source:
        for event in source.iter_sse():
            events.append(event)
            if until(events):
                break
    return events


def _epochs(events: list[ServerSentEvent]) -> list[int]:
    return [json.loads(e.data)["epoch"] for e in events if e.event == "progress"]


def _statuses(events: list[ServerSentEvent]) -> list[str]:
    return [json.loads(e.data)["status"] for e in events if e.event == "status"]


def test_a_queued_run_streams_running_first_and_resumes_without_gaps(http: httpx.Client) -> None:
    blocker = http.post(f"{API}/runs", json=long_spec(name="blocker")).json()
    wait_for(
        lambda: http.get(f"{API}/runs/{blocker['id']}").json()["status"] == "running" or None,
        timeout=30,
        message="blocker running",
    )
    run = http.post(f"{API}/runs", json=long_spec(name="followed")).json()
    url = f"{API}/runs/{run['id']}/events"
    seen: list[ServerSentEvent] = []

    def first_connection(events: list[ServerSentEvent]) -> bool:
        if len(events) == 1:  # queued at connect: now let it start
            assert http.post(f"{API}/runs/{blocker['id']}/cancel").status_code == 202
        return len(_epochs(events)) >= 3

    seen += _read(http, url, until=first_connection)
    assert seen[0].event == "status" and json.loads(seen[0].data)["status"] == "queued"
    first_progress = next(i for i, e in enumerate(seen) if e.event == "progress")
    assert "running" in _statuses(seen[:first_progress])
    assert all(event.id for event in seen)
    assert [int(e.id) for e in seen if e.event == "progress"] == _epochs(seen)

    # reconnect after a progress event: the current status first, then the next epochs
    again = _read(http, url, last_id=seen[-1].id, until=lambda ev: len(_epochs(ev)) >= 2)
    assert again[0].event == "status" and json.loads(again[0].data)["status"] == "running"
    assert _epochs(again)[0] == _epochs(seen)[-1] + 1
    seen += again

    # reconnect after a status event (its id names the epoch it followed)
    status_id = again[0].id
    assert status_id.startswith(f"{_epochs(seen[: len(seen) - len(again)])[-1]}:s")
    assert status_id not in {e.id for e in seen[: len(seen) - len(again)]}  # counts on
    third = _read(http, url, last_id=status_id, until=lambda ev: len(_epochs(ev)) >= 1)
    assert _epochs(third)[0] == int(status_id.split(":")[0]) + 1

    # from the last id seen to the end: stop, and every epoch exactly once overall
    seen += third
    last = max(_epochs(seen))
    last_id = next(e.id for e in seen if e.event == "progress" and int(e.id) == last)
    assert http.post(f"{API}/runs/{run['id']}/stop").status_code == 202
    rest = _read(http, url, last_id=last_id, until=lambda ev: False)
    final = json.loads(rest[-1].data)
    assert rest[-1].event == "status"
    assert (final["status"], final["stop_reason"]) == ("succeeded", "stopped")
    epochs = sorted(set(_epochs(seen) + _epochs(rest)))
    assert epochs == list(range(1, max(epochs) + 1))
    assert _epochs(rest) == list(range(last + 1, max(epochs) + 1))


def test_a_finished_run_sends_its_history_then_its_final_status(http: httpx.Client) -> None:
    """The stream ends after a terminal status (API.md), and a client stops there: a run
    that finished before the stream opened sends its epochs first."""
    spec = long_spec(5, name="short")
    run = http.post(f"{API}/runs", json=spec).json()
    wait_for(
        lambda: http.get(f"{API}/runs/{run['id']}").json()["status"] == "succeeded" or None,
        timeout=60,
        message="finished",
    )
    events = _read(http, f"{API}/runs/{run['id']}/events", until=lambda ev: False)
    assert [e.event for e in events] == [*["progress"] * 5, "status"]
    assert _statuses(events) == ["succeeded"]
    assert events[-1].id == "5:s1"
    resumed = _read(http, f"{API}/runs/{run['id']}/events", last_id="5", until=lambda ev: False)
    assert [e.event for e in resumed] == ["status"]
