"""Races against a real `annlab serve` (issue 15, item 3): the same Idempotency-Key at
the same instant, a worker killed before its first heartbeat, alias moves beside
predictions by alias. Real threads released together by a barrier; servers on ports
19900-19999."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .server import (
    API,
    Server,
    free_port_in,
    submit,
    tiny_spec,
    wait_status,
    wait_until,
    worker_pids,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PORTS = (19900, 19999)
ROUNDS = 20


@pytest.fixture(scope="module")
def race_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("races")
    (root / "data").mkdir()
    server = Server(name="races", data_dir=root / "data", log_dir=root)
    try:
        server.start(port=free_port_in(*PORTS), ANNLAB_WORKERS="1")
        yield server
    finally:
        if server.running:
            server.stop()
        server.cleanup()


def _together(n: int, work: Any) -> list[Any]:
    """``work(i)`` in ``n`` threads released at the same instant; their answers."""
    barrier = threading.Barrier(n)
    answers: list[Any] = [None] * n

    def run(i: int) -> None:
        answers[i] = work(i, barrier)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


# ----------------------------------------------------------------- idempotency


def test_the_same_key_sent_twice_at_the_same_instant_makes_one_run(race_server: Server) -> None:
    clients = [race_server.client(), race_server.client()]
    outcomes: Counter[str] = Counter()
    try:
        for client in clients:  # connected before the barrier: both requests leave at once
            assert client.get("/healthz").status_code == 200
        with race_server.client() as reader:
            before = reader.get(f"{API}/runs").json()["total"]
            for round_ in range(ROUNDS):
                key = {"Idempotency-Key": f"race-{round_}"}
                spec = tiny_spec(seed=round_)

                def post(
                    i: int, barrier: threading.Barrier, spec: Any = spec, key: Any = key
                ) -> httpx.Response:
                    barrier.wait()
                    return clients[i].post(f"{API}/runs", json=spec, headers=key)

                answers = _together(2, post)
                statuses = sorted(answer.status_code for answer in answers)
                outcomes[str(statuses)] += 1
                assert statuses in ([202, 409], [200, 202]), [a.text for a in answers]
                created = next(a for a in answers if a.status_code == 202).json()["id"]
                replay = next(a for a in answers if a.status_code != 202)
                if replay.status_code == 200:
                    assert replay.json()["id"] == created
                else:
                    assert "Idempotency-Key" in replay.json()["detail"]
                # a retry afterwards is always the same run
                again = reader.post(f"{API}/runs", json=spec, headers=key)
                assert again.status_code == 200 and again.json()["id"] == created
            after = reader.get(f"{API}/runs").json()["total"]
        assert after - before == ROUNDS, f"{after - before} runs for {ROUNDS} keys: {outcomes}"
    finally:
        for client in clients:
            client.close()
    print(f"idempotency races: {ROUNDS} rounds, outcomes {dict(outcomes)}")


# --------------------------------------------------- killed before first heartbeat


def _progress_rows(db: Path, run_id: str) -> tuple[int, str | None, str | None]:
    with sqlite3.connect(db, timeout=30) as connection:
        metrics = connection.execute(
            "SELECT count(*) FROM run_metrics WHERE run_id = ?", (run_id,)
        ).fetchone()[0]
        started, heartbeat = connection.execute(
            "SELECT started_at, heartbeat_at FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
    return metrics, started, heartbeat


def test_a_worker_killed_before_its_first_heartbeat_has_its_run_swept(
    race_server: Server,
) -> None:
    # a first epoch of seconds (480 single-row steps of a 4.2 M-parameter network):
    # the worker is killed after its claim, before it wrote any progress
    spec = {
        "dataset": "spiral",
        "model": {
            "layers": [
                {"units": 2048, "activation": "tanh"},
                {"units": 2048, "activation": "tanh"},
                {"units": 3, "activation": "softmax"},
            ]
        },
        "optimizer": {"type": "sgd", "learning_rate": 0.001},
        "training": {"epochs": 1, "batch_size": 1, "validation_split": 0.2, "snapshots": "none"},
    }
    with race_server.client() as client:
        run = submit(client, spec)
        wait_status(client, run["id"], {"running"}, timeout=30)
        metrics, started, heartbeat = _progress_rows(race_server.db_path, run["id"])
        assert metrics == 0 and heartbeat == started, "the worker already wrote progress"
        victims = worker_pids(race_server.pid)
        assert victims, "no worker process"
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert _progress_rows(race_server.db_path, run["id"])[0] == 0

        # swept by the supervisor (dead pid), trained again, never left running
        def swept() -> dict[str, Any] | None:
            current = client.get(f"{API}/runs/{run['id']}").json()
            return (
                current if current["status"] != "running" or current["progress"]["step"] else None
            )

        wait_until(swept, 60, "the run of the killed worker is still running")
        client.post(f"{API}/runs/{run['id']}/cancel")  # the retrained run is not the point
        final = wait_status(client, run["id"], timeout=60)
        assert final["status"] in ("cancelled", "succeeded"), final
    with sqlite3.connect(race_server.db_path, timeout=30) as connection:
        attempts = connection.execute(
            "SELECT attempts FROM runs WHERE id = ?", (run["id"],)
        ).fetchone()[0]
    assert attempts == 1, f"the kill counted {attempts} attempts"


# ------------------------------------------------------------ aliases and predict

XOR = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]


def _train_versions(client: httpx.Client, name: str, seeds: list[int]) -> None:
    runs = [submit(client, tiny_spec(seed=seed)) for seed in seeds]
    for run in runs:
        assert wait_status(client, run["id"], timeout=60)["status"] == "succeeded"
    assert client.post(f"{API}/models", json={"name": name}).status_code == 201
    for run in runs:
        answer = client.post(f"{API}/models/{name}/versions", json={"run_id": run["id"]})
        assert answer.status_code == 201, answer.text


def test_alias_moves_and_predictions_by_alias_never_answer_another_version(
    race_server: Server,
) -> None:
    name = "race-model"
    with race_server.client() as client:
        _train_versions(client, name, seeds=[0, 1, 2])
        outputs = {}
        for version in (1, 2, 3):
            answer = client.post(
                f"{API}/models/{name}/versions/{version}/predict", json={"inputs": XOR}
            )
            assert answer.status_code == 200, answer.text
            outputs[version] = answer.json()["outputs"]
        assert len({str(value) for value in outputs.values()}) == 3, "versions not told apart"
        assert (
            client.put(f"{API}/models/{name}/aliases/prod", json={"version": 1}).status_code == 200
        )

    movers, predictors, moves, predicts = 2, 4, 60, 80
    seen: Counter[str] = Counter()
    problems: list[str] = []
    lock = threading.Lock()

    def work(i: int, barrier: threading.Barrier) -> None:
        with race_server.client(timeout=30) as http:
            http.get("/healthz")
            barrier.wait()
            if i < movers:
                for n in range(moves):
                    version = 1 + (n + i) % 2
                    answer = http.put(
                        f"{API}/models/{name}/aliases/prod", json={"version": version}
                    )
                    if answer.status_code != 200:
                        with lock:
                            problems.append(f"PUT -> {answer.status_code} {answer.text[:200]}")
                return
            for _ in range(predicts):
                answer = http.post(
                    f"{API}/models/{name}/aliases/prod/predict", json={"inputs": XOR}
                )
                with lock:
                    if answer.status_code != 200:
                        problems.append(f"predict -> {answer.status_code} {answer.text[:200]}")
                        continue
                    match = [v for v, out in outputs.items() if out == answer.json()["outputs"]]
                    seen[f"v{match[0]}" if match else "other"] += 1

    _together(movers + predictors, work)
    assert not problems, problems[:5]
    assert set(seen) <= {"v1", "v2"}, f"answers from a version never aliased: {dict(seen)}"
    assert sum(seen.values()) == predictors * predicts

    # once the moves are over, the alias answers where it points (no stale resolution)
    with race_server.client() as client:
        for version in (2, 1, 2):
            client.put(f"{API}/models/{name}/aliases/prod", json={"version": version})
            answer = client.post(f"{API}/models/{name}/aliases/prod/predict", json={"inputs": XOR})
            assert answer.json()["outputs"] == outputs[version]
        pointed = client.get(f"{API}/models/{name}").json()["aliases"]["prod"]
        final = client.post(f"{API}/models/{name}/aliases/prod/predict", json={"inputs": XOR})
        assert final.json()["outputs"] == outputs[pointed]
    print(f"alias race: {movers * moves} moves, {predictors * predicts} predicts, {dict(seen)}")
