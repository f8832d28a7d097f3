"""The seams later features build on: the executor registry, the worker's stop
signal, the model cache's keys, the idempotency key lock, the session that never
commits."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.config import ExecutorName, Settings
from app.db import runs as run_store
from app.jobs import registry
from app.jobs.base import Executor, NoExecutor
from app.jobs.local import ThreadExecutor
from app.jobs.worker import Worker, WorkerConfig, _Job
from app.services.runs import InFlightKeys
from app.services.serving import LoadedModel, ModelCache, ModelKey
from core.stopping import Stop


def test_every_executor_name_is_registered(tmp_path: Path) -> None:
    assert set(get_args(ExecutorName)) == set(registry.EXECUTORS)
    settings = Settings(data_dir=tmp_path, executor="none")
    assert isinstance(registry.make_executor(settings, sessionmaker()), NoExecutor)
    threads = Settings(data_dir=tmp_path, executor="thread", workers=1)
    assert isinstance(registry.make_executor(threads, sessionmaker()), ThreadExecutor)


def test_a_registered_executor_is_built_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notified: list[str] = []

    class Recording(NoExecutor):
        def __init__(self, *, settings: Settings, factory: sessionmaker[Session]) -> None:
            self.settings = settings

        def notify(self, run_id: str) -> None:
            notified.append(run_id)

    monkeypatch.setitem(registry.EXECUTORS, "recording", Recording)
    settings = Settings(data_dir=tmp_path).model_copy(update={"executor": "recording"})
    executor: Executor = registry.make_executor(settings, sessionmaker())
    executor.notify("run_1")
    assert isinstance(executor, Recording) and notified == ["run_1"]
    unknown = settings.model_copy(update={"executor": "nope"})
    with pytest.raises(ValueError, match="ANNLAB_EXECUTOR='nope' is not one of"):
        registry.make_executor(unknown, sessionmaker())


def test_the_server_notifies_the_executor_with_the_committed_run(idle_client: TestClient) -> None:
    seen: list[tuple[str, str]] = []
    factory = idle_client.app.state.session_factory  # type: ignore[attr-defined]

    class Checking(NoExecutor):
        def notify(self, run_id: str) -> None:
            with factory() as session:  # another session: sees only what is committed
                seen.append((run_id, str(run_store.get_status(session=session, run_id=run_id))))

    idle_client.app.state.executor = Checking()  # type: ignore[attr-defined]
    run = idle_client.post("/api/v1/runs", json=_TINY).json()
    assert seen == [(run["id"], "queued")]


_TINY = {
    "dataset": "xor",
    "model": {"layers": [{"units": 2, "activation": "softmax"}]},
    "training": {"epochs": 1},
}


def test_the_worker_answers_stop_members() -> None:
    stopping = {"now": False}
    worker = Worker(
        factory=sessionmaker(),
        config=WorkerConfig(worker_id="w", checkpoint_seconds=1.0, max_run_seconds=0.0),
        stop_requested=lambda: stopping["now"],
    )
    job = _Job(worker, "run_x")
    job.last_poll = float("inf")  # no database poll in this test
    assert job.should_stop() is None
    stopping["now"] = True
    assert job.should_stop() is Stop.PAUSE
    timed = _Job(
        Worker(
            factory=sessionmaker(),
            config=WorkerConfig(worker_id="w", checkpoint_seconds=1.0, max_run_seconds=1e-9),
            stop_requested=lambda: False,
        ),
        "run_y",
    )
    timed.started -= 1.0
    assert timed.should_stop() is Stop.INTERRUPT  # the time limit keeps the model


def test_evicting_a_run_forgets_each_of_its_models() -> None:
    cache = ModelCache(capacity=4)
    entry = LoadedModel(owner_id="u", model=None, n_features=1)  # type: ignore[arg-type]  # the cache never looks inside
    for key in (ModelKey("a"), ModelKey("a", epoch=3), ModelKey("b")):
        cache.put(key, entry)
    cache.evict("a")
    assert ModelKey("a") not in cache and ModelKey("a", 3) not in cache
    assert ModelKey("b") in cache


def test_an_idempotency_key_is_released_even_when_its_request_fails() -> None:
    keys = InFlightKeys()
    with pytest.raises(RuntimeError), keys.hold(("u", "k")):
        raise RuntimeError("the request failed")
    with keys.hold(("u", "k")):
        assert ("u", "k") in keys
    assert ("u", "k") not in keys
