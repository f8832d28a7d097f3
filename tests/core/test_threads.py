"""training.threads: the BLAS threads of a run, for its whole call and after a resume."""

from __future__ import annotations

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
