"""training.threads: the BLAS threads of a run, for its whole call and after a resume."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController

from core.checkpoint import Checkpoint
from core.datasets import load_builtin
from core.errors import CheckpointError
from core.specs import RunSpec
from core.stopping import Stop
from core.training import train

from .conftest import make_spec


def blas_threads() -> list[int]:
    """The threads of NumPy's own BLAS (the engine's GEMMs): SciPy's bundled OpenBLAS,
    loaded into the test process by the cross-checks, is not the run's."""
    blas = ThreadpoolController().select(user_api="blas").info()
    numpy_own = [info for info in blas if "numpy" in Path(info["filepath"]).parent.name]
    return [info["num_threads"] for info in numpy_own or blas]


def spec_with(threads: int, dtype: str = "float32") -> RunSpec:
    data = load_builtin("spiral")
    return make_spec(
        data,
        model={
            "layers": [{"units": 64, "activation": "tanh"}, {"units": 3, "activation": "softmax"}]
        },
        optimizer={"type": "adam", "learning_rate": 0.01},
        training={"epochs": 6, "batch_size": 64, "threads": threads, "seed": 2},
        dtype=dtype,
    )


def weights(result: Any) -> np.ndarray:
    return np.concatenate([a.ravel() for pair in result.model.layers for a in pair])


@pytest.mark.parametrize("threads", [1, 2])
def test_blas_runs_on_the_specs_threads_during_training_only(threads: int) -> None:
    if not blas_threads():
        pytest.skip("no BLAS library seen by threadpoolctl")
    before = blas_threads()
    seen: list[list[int]] = []
    train(
        spec_with(threads), load_builtin("spiral"), on_epoch=lambda m: seen.append(blas_threads())
    )
    assert seen and all(counts == [threads] * len(counts) for counts in seen)
    assert blas_threads() == before


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_same_threads_give_the_same_bits(dtype: str) -> None:
    data = load_builtin("spiral")
    first = train(spec_with(2, dtype), data)
    second = train(spec_with(2, dtype), data)
    np.testing.assert_array_equal(weights(first), weights(second))


def test_a_resume_keeps_the_runs_threads_and_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    import core.training as training_module

    monkeypatch.setattr(training_module, "POLL_SECONDS", 0.0)
    data = load_builtin("spiral")
    spec = spec_with(2)
    straight = train(spec, data)
    calls = {"n": 0}

    def pause_at_20() -> Stop | None:
        calls["n"] += 1
        return Stop.PAUSE if calls["n"] == 20 else None

    paused = train(spec, data, should_stop=pause_at_20)
    checkpoint = Checkpoint.from_bytes(paused.checkpoint.to_bytes())
    assert RunSpec.model_validate_json(checkpoint.spec_json).training.threads == 2
    seen: list[list[int]] = []
    resumed = train(
        spec, data, resume_from=checkpoint, on_epoch=lambda m: seen.append(blas_threads())
    )
    np.testing.assert_array_equal(weights(resumed), weights(straight))
    if blas_threads():
        assert seen and all(counts == [2] * len(counts) for counts in seen)
    with pytest.raises(CheckpointError, match="another spec"):  # threads are part of the spec
        train(spec_with(1), data, resume_from=checkpoint)


# ------------------------------------------- runs in threads of a shared process
#
# NumPy's OpenBLAS has one thread pool per process, and threadpoolctl lets only one
# "controlling thread" change it (others are silently ignored). These tests train in
# threads other than the one that last set a limit, as the thread executor does in a
# server whose start set one BLAS thread.


@pytest.fixture
def restore_blas() -> Any:
    """Put the process's BLAS threads back as they were, with no thread in control."""
    from threadpoolctl import OpenBLASController, threadpool_limits

    before = blas_threads()
    yield
    OpenBLASController.clear_controlling_thread(force=True)
    if before:
        threadpool_limits(limits=before[0], user_api="blas")
    OpenBLASController.clear_controlling_thread(force=True)


def wait_until(condition: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.005)


def train_in_thread(spec: RunSpec, seen: list[int], **callbacks: Any) -> threading.Thread:
    data = load_builtin("spiral")
    on_epoch = callbacks.pop("on_epoch", None)

    def record(metrics: Any) -> None:
        seen.append(blas_threads()[0])
        if on_epoch is not None:
            on_epoch(metrics)

    thread = threading.Thread(target=train, args=(spec, data), kwargs={"on_epoch": record})
    thread.start()
    return thread


@pytest.mark.usefixtures("restore_blas")
def test_a_run_in_another_thread_gets_its_threads_after_a_plain_limit_elsewhere() -> None:
    from threadpoolctl import threadpool_limits

    if not blas_threads():
        pytest.skip("no BLAS library seen by threadpoolctl")
    threadpool_limits(limits=1, user_api="blas")  # this thread now controls OpenBLAS
    seen: list[int] = []
    train_in_thread(spec_with(2), seen).join()
    assert seen == [2] * 6
    assert blas_threads() == [1]  # what this thread set is back


@pytest.mark.usefixtures("restore_blas")
def test_runs_in_two_threads_with_different_threads_take_turns() -> None:
    from core.blas_threads import _POOL

    if not blas_threads():
        pytest.skip("no BLAS library seen by threadpoolctl")
    first_seen: list[int] = []
    second_seen: list[int] = []
    second_started = threading.Event()

    def hold_until_the_second_is_in(metrics: Any) -> None:
        if metrics.epoch == 1:
            second_started.set()
            # the second run either waits for the pool or (without the arbiter)
            # trains at once: go on when either is seen
            wait_until(lambda: _POOL.waiting > 0 or second_seen)

    first = train_in_thread(spec_with(1), first_seen, on_epoch=hold_until_the_second_is_in)
    assert second_started.wait(30)
    second = train_in_thread(spec_with(2), second_seen)
    first.join()
    second.join()
    assert first_seen == [1] * 6
    assert second_seen == [2] * 6


@pytest.mark.usefixtures("restore_blas")
def test_a_process_limit_set_during_a_run_applies_after_it() -> None:
    from threadpoolctl import ThreadpoolController

    from core.blas_threads import set_process_threads

    if not blas_threads():
        pytest.skip("no BLAS library seen by threadpoolctl")
    seen: list[int] = []

    def set_one(metrics: Any) -> None:
        if metrics.epoch == 1:
            set_process_threads(ThreadpoolController(), 1)

    train_in_thread(spec_with(2), seen, on_epoch=set_one).join()
    assert seen == [2] * 6
    assert blas_threads() == [1]


@pytest.mark.usefixtures("restore_blas")
def test_the_servers_one_thread_leaves_other_threads_free_to_limit() -> None:
    from threadpoolctl import ThreadpoolController, threadpool_limits

    from core.blas_threads import set_process_threads

    if not blas_threads():
        pytest.skip("no BLAS library seen by threadpoolctl")
    set_process_threads(ThreadpoolController(), 1)  # as app.main's start does
    assert blas_threads() == [1]
    inside: list[int] = []

    def limited() -> None:
        with threadpool_limits(limits=2, user_api="blas"):
            inside.extend(blas_threads())

    thread = threading.Thread(target=limited)
    thread.start()
    thread.join()
    assert inside == [2]
