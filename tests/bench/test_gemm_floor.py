"""bench.gemm_floor's plan is the BLAS work of a real epoch: every ``numpy.matmul`` that
``core.layers`` makes during one epoch of ``core.training.train`` (mini-batches, then
the per-epoch metrics), with the same shapes and transposed views. No timing."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

import core.layers
from bench import gemm_floor
from bench.common import Workload, workload_data
from bench.train import engine_dataset, engine_spec
from core.training import train

#: A last mini-batch shorter than the others, a metrics chunk shorter than the others,
#: a bias gradient above GEMV_BIAS_MAX (not a BLAS call then), three layers.
TOY = Workload("toy", 2_100, 5, 3, (700, 9), 250, timed_epochs=1)


class _MatmulSpy:
    """``numpy`` as ``core.layers`` sees it, with ``matmul`` recorded."""

    def __init__(self) -> None:
        self.calls: Counter[gemm_floor.Product] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)

    def matmul(self, left: np.ndarray, right: np.ndarray, **kwargs: Any) -> np.ndarray:
        transposed = (
            "left"
            if left.ndim == 2 and left.flags.f_contiguous and not left.flags.c_contiguous
            else "right"
            if right.flags.f_contiguous and not right.flags.c_contiguous
            else ""
        )
        self.calls[(left.shape, right.shape, transposed)] += 1
        return np.matmul(left, right, **kwargs)


def test_the_plan_is_the_products_of_one_real_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    features, labels = workload_data(TOY)
    dataset = engine_dataset(features, labels)
    spec = engine_spec(TOY, epochs=1, dataset=dataset)
    spy = _MatmulSpy()
    monkeypatch.setattr(core.layers, "np", spy)
    train(spec, dataset)
    steps, metrics = gemm_floor.epoch_plan(TOY)
    assert spy.calls == steps + metrics
    # the toy covers what it is meant to: a short last batch, a reduction instead of a GEMV
    assert ((100, 5), (5, 700), "") in steps
    assert not any(left == (250,) and right == (250, 700) for left, right, _ in steps)


def test_a_product_is_timed_and_the_table_renders() -> None:
    product = ((8, 4), (4, 3), "")
    assert gemm_floor.time_product(product, min_seconds=0.0001, best_of=1) > 0
    left, _right, out = gemm_floor._operands(((4, 8), (8, 3), "left"), np.random.default_rng(0))
    assert left.shape == (4, 8) and not left.flags.c_contiguous and out.shape == (4, 3)
    repeat = gemm_floor.Repeat("W3", 1, 0.03, 0.01, 0.05, 0.12, float("nan"), 0.0)
    rendered = gemm_floor.table([repeat])
    assert "80%" in rendered and "3.00" in rendered  # floor/engine; x sklearn at the floor


def test_main_runs_on_a_workload_without_sklearn(capsys: pytest.CaptureFixture[str]) -> None:
    assert gemm_floor.main(["-w", "W1", "-r", "1", "--epochs", "2", "--no-sklearn"]) == 0
    out = capsys.readouterr().out
    assert "W1: the BLAS floor is" in out


def test_an_unknown_workload_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        gemm_floor.main(["-w", "W9"])
    assert "unknown workloads" in capsys.readouterr().err
