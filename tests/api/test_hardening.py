"""Issue 16: bodies and limits before work, one file per upload, 415, Allow, short
422s, strict numbers, the cancel/delete race, event streams on one shared feed."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient

from app.db.engine import transaction, write_session
from app.errors import NotFound
from app.services import runs as run_service
from app.services.auth import LOCAL_ADMIN
from tests.support.specs import iris_spec, long_spec
from tests.support.waiting import wait_for

from .conftest import API, sse_events, submit

CSV = b"a,b,label\n" + b"".join(
    b"%d,%d,%s\n" % (i, i % 3, b"xy"[i % 2 : i % 2 + 1]) for i in range(40)
)


def upload(client: TestClient, files: Any, **fields: str) -> Any:
    data = {"target": "label", "task": "classification", **fields}
    return client.post(f"{API}/datasets", files=files, data=data)


def test_a_csv_upload_streams_and_is_stored(client: TestClient) -> None:
    response = upload(client, {"file": ("small.csv", CSV, "text/csv")})
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "small"


def test_a_second_file_is_a_422_not_silently_the_last(client: TestClient) -> None:
    files = [("file", ("one.csv", CSV, "text/csv")), ("file", ("two.csv", CSV, "text/csv"))]
    response = upload(client, files)
    assert response.status_code == 422, response.text
    assert "one CSV file per upload" in response.text


def test_multipart_names_have_the_json_limit_not_a_silent_cut(client: TestClient) -> None:
    response = upload(client, {"file": ("f.csv", CSV, "text/csv")}, name="n" * 201)
    assert response.status_code == 422, response.text
    assert upload(client, {"file": ("f.csv", CSV, "text/csv")}, name="n" * 200).status_code == 201
    long_file = "f" * 205 + ".csv"
    assert upload(client, {"file": (long_file, CSV, "text/csv")}).status_code == 422


def test_an_oversized_file_is_refused_while_it_streams(make_client: Any) -> None:
    client = make_client(max_dataset_bytes=1000, executor="none")
    response = upload(client, {"file": ("big.csv", CSV * 10, "text/csv")})
    assert response.status_code == 422, response.text
    assert "ANNLAB_MAX_DATASET_BYTES" in response.text


def test_json_feature_names_and_rows_are_bounded_and_declared(idle_client: TestClient) -> None:
    base = {"name": "x", "task": "regression", "features": [[1.0], [2.0]], "targets": [1.0, 2.0]}
    too_long = idle_client.post(f"{API}/datasets", json={**base, "feature_names": ["f" * 201]})
    assert too_long.status_code == 422, too_long.text
    empty = idle_client.post(f"{API}/datasets", json={**base, "features": [], "targets": []})
    assert empty.status_code == 422
    schema = idle_client.get("/openapi.json").json()["paths"][f"{API}/datasets"]["post"]
    body = schema["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert body["features"]["minItems"] == 2 and body["targets"]["minItems"] == 2


def test_an_unsupported_content_encoding_is_415(idle_client: TestClient) -> None:
    for path in (f"{API}/datasets", f"{API}/runs"):
        response = idle_client.post(
            path,
            content=b"\x1f\x8b...",
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        assert response.status_code == 415, response.text


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", f"{API}/runs/x", "DELETE, GET, HEAD, PATCH"),
        ("PUT", f"{API}/runs", "GET, HEAD, POST"),
        ("GET", f"{API}/runs/x/predict", "POST"),
        ("OPTIONS", "/healthz", "GET, HEAD"),
    ],
)
def test_every_405_allows_every_method_of_the_path(
    idle_client: TestClient, method: str, path: str, allow: str
) -> None:
    response = idle_client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow


def test_a_huge_invalid_body_is_not_echoed_back(idle_client: TestClient) -> None:
    body = b"x" * 2_000_000
    for path in (f"{API}/runs", f"{API}/runs/x/predict", f"{API}/datasets"):
        for content_type in ("text/plain", "application/json"):
            response = idle_client.post(path, content=body, headers={"Content-Type": content_type})
            assert 400 <= response.status_code < 500, response.text[:300]
            assert len(response.content) < 5000, (path, content_type, len(response.content))


def test_auth_is_checked_from_the_headers_before_the_body_is_read(make_client: Any) -> None:
    client = make_client(auth=True, executor="none")
    app = client.app
    asked: list[str] = []

    async def receive() -> dict[str, Any]:
        asked.append("body")
        return {"type": "http.request", "body": b"[" * 100 + b"]" * 100, "more_body": False}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    for path in ("/api/v1/runs", "/api/v1/datasets", "/api/v1/runs/r/predict"):
        scope = {
            "type": "http",
            "method": "POST",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"content-type", b"application/json")],
            "scheme": "http",
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 1),
            "root_path": "",
            "app": app,
        }
        sent.clear()
        client.portal.call(app, scope, receive, send)  # type: ignore[union-attr]
        assert sent[0]["status"] == 401, (path, sent)
    assert asked == [], "a body was read before the 401"


def test_cancel_of_a_run_deleted_meanwhile_is_404_not_500(idle_client: TestClient) -> None:
    run_id = submit(idle_client, iris_spec())["id"]
    factory = idle_client.app.state.session_factory  # type: ignore[attr-defined]
    with transaction(factory) as session:
        run = run_service.run_store.get_run(session=session, run_id=run_id, owner_id=None)
        assert run is not None
    with transaction(factory) as session:
        run_service.run_store.delete_run(session=session, run_id=run_id)
    with write_session(factory) as session, pytest.raises(NotFound):
        run_service.cancel_run(session=session, run=run, actor=LOCAL_ADMIN)


def test_cancel_and_delete_racing_never_answer_500(idle_client: TestClient) -> None:
    def call(method: str, path: str, codes: list[int]) -> None:
        codes.append(idle_client.request(method, path).status_code)

    for _ in range(10):
        run_id = submit(idle_client, iris_spec())["id"]
        codes: list[int] = []
        threads = [
            threading.Thread(target=call, args=("POST", f"{API}/runs/{run_id}/cancel", codes)),
            threading.Thread(target=call, args=("DELETE", f"{API}/runs/{run_id}", codes)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(code < 500 for code in codes), codes


def test_many_streams_on_a_run_share_one_feed(client: TestClient) -> None:
    run_id = submit(client, long_spec())["id"]
    app = client.app
    counts: list[int] = []
    streams = 12
    opened = threading.Barrier(streams + 1)

    def follow() -> None:
        with client.stream("GET", f"{API}/runs/{run_id}/events") as response:
            lines = response.iter_lines()
            while next(lines) != "":  # the first event
                pass
            opened.wait(timeout=30)
            for line in lines:
                if line.startswith("event: status") and "cancelled" in line:
                    break
        counts.append(1)

    threads = [threading.Thread(target=follow) for _ in range(streams)]
    for thread in threads:
        thread.start()
    opened.wait(timeout=30)
    feeds = app.state.run_feeds  # type: ignore[attr-defined]
    assert len(feeds) == 1
    assert feeds.feed(run_id).subscribers == streams
    assert client.post(f"{API}/runs/{run_id}/cancel").status_code in (200, 202)
    for thread in threads:
        thread.join(timeout=30)
    assert len(counts) == streams
    wait_for(lambda: len(feeds) == 0 or None, timeout=10, message="the feed did not stop")


def test_the_events_sent_match_the_openapi_event_schemas(client: TestClient) -> None:
    run_id = submit(client, iris_spec(epochs=5))["id"]
    events = sse_events(client, f"{API}/runs/{run_id}/events")
    document = client.get("/openapi.json").json()
    content = document["paths"][f"{API}/runs/{{run_id}}/events"]["get"]["responses"]["200"][
        "content"
    ]["text/event-stream"]
    schemas = {
        option["properties"]["event"]["const"]: option for option in content["itemSchema"]["oneOf"]
    }
    kinds = {kind for kind, _ in events}
    assert kinds == {"progress", "status"}, events
    for kind, data in events:
        jsonschema_rs.validate(schemas[kind], {"event": kind, "data": json.dumps(data)})
        jsonschema_rs.validate(schemas[kind]["properties"]["data"]["contentSchema"], data)
    assert [data["epoch"] for kind, data in events if kind == "progress"] == [1, 2, 3, 4, 5]


def test_streams_of_unknown_runs_leave_no_feed_behind(idle_client: TestClient) -> None:
    for index in range(5):
        assert idle_client.get(f"{API}/runs/nope{index}/events").status_code == 404
    assert len(idle_client.app.state.run_feeds) == 0  # type: ignore[attr-defined]


def test_offload_bounds_how_many_run_at_once() -> None:
    from app import offload

    running, peak = 0, 0
    gate = threading.Event()

    def work() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        gate.wait(5)
        running -= 1

    async def main() -> None:
        tasks = [asyncio.create_task(offload.offload("upload", work)) for _ in range(6)]
        await asyncio.sleep(0.2)
        gate.set()
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert peak == offload.LIMITS["upload"]


def test_json_uploads_are_parsed_off_the_loop(client: TestClient) -> None:
    body = {"name": "j", "task": "regression", "features": [[float(i)] for i in range(50)]}
    body["targets"] = [float(i) for i in range(50)]
    response = client.post(
        f"{API}/datasets",
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert io.BytesIO(response.content).getbuffer().nbytes > 0


def test_default_run_time_limit_with_auth(tmp_path: Any) -> None:
    from app.config import DEFAULT_AUTH_MAX_RUN_SECONDS, Settings

    assert Settings(data_dir=tmp_path, auth=True).resolved_max_run_seconds == (
        DEFAULT_AUTH_MAX_RUN_SECONDS
    )
    assert Settings(data_dir=tmp_path).resolved_max_run_seconds == 0
    assert Settings(data_dir=tmp_path, auth=True, max_run_seconds=0).resolved_max_run_seconds == 0
