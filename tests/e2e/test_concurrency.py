"""Many clients at once against one server and one SQLite file."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.waiting import wait_for

from .server import API, TERMINAL, Server, tiny_spec

N_RUNS = 100


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_hundred_concurrent_submissions_all_run(server: Server, client: httpx.Client) -> None:
    log_start = len(server.log_text())

    def post(index: int) -> httpx.Response:
        with server.client(timeout=30) as http:
            return http.post(f"{API}/runs", json=tiny_spec(seed=index) | {"name": f"burst {index}"})

    with ThreadPoolExecutor(max_workers=32) as pool:
        responses = list(pool.map(post, range(N_RUNS)))

    statuses = [response.status_code for response in responses]
    assert statuses == [202] * N_RUNS, {code: statuses.count(code) for code in set(statuses)}
    ids = [response.json()["id"] for response in responses]
    assert len(set(ids)) == N_RUNS, "every submission got its own id"

    pending = set(ids)
    final: dict[str, dict] = {}

    def all_finished() -> bool:
        for run_id in list(pending):
            run = client.get(f"{API}/runs/{run_id}").json()
            if run["status"] in TERMINAL:
                final[run_id] = run
                pending.discard(run_id)
        return not pending

    wait_for(
        all_finished,
        timeout=120,
        interval=0.2,
        message=f"not all of {N_RUNS} runs finished",
        describe=lambda: f"{len(pending)} pending",
    )
    failed = {
        run_id: (run["status"], run["error"])
        for run_id, run in final.items()
        if run["status"] != "succeeded"
    }
    assert not failed, failed

    log = server.log_text()[log_start:]
    assert "database is locked" not in log.lower(), "SQLite lock contention reached the log"
    assert "Traceback" not in log, "the server logged a traceback during the burst"


# ------------------------------------------------- submissions mixed with predict and delete

N_MIXED = 200


def mixed_burst(server: Server, client: httpx.Client, timeout: float = 60) -> dict[str, int]:
    """200 concurrent submissions mixed with predictions on a finished run and deletes
    of some of the new runs: every submission 202 or 429, never a 5xx, every accepted
    run that was not deleted finishes. Returns counts for the report."""
    from .server import submit, wait_status

    log_start = len(server.log_text())
    done = submit(client, tiny_spec(seed=999))
    assert wait_status(client, done["id"])["status"] == "succeeded"

    def post(index: int) -> list[tuple[str, int, str | None]]:
        with server.client(timeout=30) as http:
            response = http.post(
                f"{API}/runs", json=tiny_spec(seed=index) | {"name": f"mixed {index}"}
            )
            answers = [("post", response.status_code, None)]
            if response.status_code == 202:
                run_id = response.json()["id"]
                answers[0] = ("post", 202, run_id)
                if index % 10 == 0:  # delete some, queued or running or finished
                    answers.append(
                        ("delete", http.delete(f"{API}/runs/{run_id}").status_code, run_id)
                    )
            if index % 3 == 0:
                predicted = http.post(f"{API}/runs/{done['id']}/predict", json={"inputs": [[0, 1]]})
                answers.append(("predict", predicted.status_code, None))
            return answers

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = [answer for batch in pool.map(post, range(N_MIXED)) for answer in batch]
    burst = time.monotonic() - started
    codes = [(kind, code) for kind, code, _ in answers]
    assert not [c for c in codes if c[1] >= 500], codes
    assert {code for kind, code in codes if kind == "post"} <= {202, 429}, codes
    assert {code for kind, code in codes if kind == "delete"} <= {204}, codes
    assert {code for kind, code in codes if kind == "predict"} <= {200}, codes
    deleted = {run_id for kind, _, run_id in answers if kind == "delete"}
    accepted = {run_id for kind, code, run_id in answers if kind == "post" and code == 202}
    for run_id in deleted:
        assert client.get(f"{API}/runs/{run_id}").status_code == 404

    pending = accepted - deleted

    def all_finished() -> bool:
        for run_id in list(pending):
            run = client.get(f"{API}/runs/{run_id}").json()
            if run["status"] in TERMINAL:
                assert run["status"] == "succeeded", run
                pending.discard(run_id)
        return not pending

    wait_for(
        all_finished,
        timeout=timeout,
        interval=0.1,
        message="not all accepted runs finished",
        describe=lambda: f"{len(pending)} pending",
    )
    log = server.log_text()[log_start:]
    assert "database is locked" not in log.lower(), "SQLite lock contention reached the log"
    assert "Traceback" not in log, "the server logged a traceback during the burst"
    counts = {
        "accepted": len(accepted),
        "rejected_429": sum(1 for kind, code in codes if kind == "post" and code == 429),
        "deleted": len(deleted),
        "predictions": sum(1 for kind, _ in codes if kind == "predict"),
        "burst_seconds": round(burst, 2),
        "total_seconds": round(time.monotonic() - started, 2),
    }
    print(f"mixed burst on {server.name}: {counts}")
    return counts


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_200_mixed_concurrent_requests_on_sqlite(make_server) -> None:
    server: Server = make_server("mixed-sqlite", ANNLAB_WORKERS="2").start()
    with server.client() as client:
        mixed_burst(server, client)
    server.stop()
