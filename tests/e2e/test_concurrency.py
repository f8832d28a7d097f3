"""Many clients at once against one server and one SQLite file."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

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

    deadline = time.monotonic() + 120
    pending = set(ids)
    final: dict[str, dict] = {}
    while pending and time.monotonic() < deadline:
        for run_id in list(pending):
            run = client.get(f"{API}/runs/{run_id}").json()
            if run["status"] in TERMINAL:
                final[run_id] = run
                pending.discard(run_id)
        time.sleep(0.2)
    assert not pending, f"{len(pending)} of {N_RUNS} runs not finished within 120 s"
    failed = {
        run_id: (run["status"], run["error"])
        for run_id, run in final.items()
        if run["status"] != "succeeded"
    }
    assert not failed, failed

    log = server.log_text()[log_start:]
    assert "database is locked" not in log.lower(), "SQLite lock contention reached the log"
    assert "Traceback" not in log, "the server logged a traceback during the burst"
