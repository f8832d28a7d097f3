"""The BLAS floor of an epoch: W1–W4's matrix products alone, at their shapes, beside
the engine's whole epoch and scikit-learn's, in the same run.

    python -m bench.gemm_floor                 # W1..W4, 3 repeats
    python -m bench.gemm_floor -w W3 -r 5 --no-sklearn

Why: two goals of issue 14 — W3 ≥ 2× scikit-learn, W4 at ≥ 75 % of the GEMM peak —
can only be reached if the engine's epoch, its matrix products included, is that
fast. This lists every BLAS call of ``core.layers.Dense`` in one epoch (the
mini-batches' forward ``x W``, ``dW = xᵀ δ``, ``dx = δ Wᵀ`` below the top layer, the
bias gradient ``1ᵀ δ`` where it is a GEMV; then ENGINE.md's metrics after the epoch: a
forward pass over the whole training set in chunks of ``max(batch, EVAL_CHUNK)``
rows), times ``numpy.matmul`` on each distinct shape and memory layout on the run's
BLAS threads, and adds them up. No NumPy engine that computes those metrics can
have a shorter epoch on this machine, so scikit-learn's epoch ÷ the floor is the
largest "× scikit-learn" within reach, and 6 × parameters × samples ÷ the floor ÷
the 2048² peak the largest "% GEMM peak".

``tests/bench/test_gemm_floor.py`` checks that the plan is exactly the products one
epoch of ``core.training.train`` makes.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import math
import timeit
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from bench.common import (
    WORKLOADS,
    LoadMonitor,
    Workload,
    format_table,
    gemm_peak_gflops,
    machine_lines,
    median,
    workload_data,
)
from bench.service import THREADS
from bench.train import _have, run_engine, run_sklearn
from core.layers import GEMV_BIAS_MAX
from core.preparation import EVAL_CHUNK

#: (left operand's shape, right operand's shape, which operand is a transposed view)
Product = tuple[tuple[int, ...], tuple[int, ...], str]


def step_products(sizes: Sequence[int], rows: int) -> list[Product]:
    """The BLAS calls of one mini-batch of ``rows`` rows, as ``Dense`` makes them."""
    products: list[Product] = []
    pairs = list(itertools.pairwise(sizes))
    for n_in, n_out in pairs:
        products.append(((rows, n_in), (n_in, n_out), ""))  # z = x W
    for index in range(len(pairs) - 1, -1, -1):
        n_in, n_out = pairs[index]
        products.append(((n_in, rows), (rows, n_out), "left"))  # dW = xᵀ δ
        if rows * n_out <= GEMV_BIAS_MAX:
            products.append(((rows,), (rows, n_out), ""))  # db = 1ᵀ δ
        if index > 0:
            products.append(((rows, n_out), (n_out, n_in), "right"))  # dx = δ Wᵀ
    return products


def epoch_plan(workload: Workload) -> tuple[Counter[Product], Counter[Product]]:
    """(training steps, metrics pass): how often each product runs in one epoch."""
    n, batch, sizes = workload.n_samples, workload.batch_size, workload.sizes
    steps: Counter[Product] = Counter()
    for start in range(0, n, batch):
        steps.update(step_products(sizes, min(batch, n - start)))
    metrics: Counter[Product] = Counter()
    chunk = max(batch, EVAL_CHUNK)
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        metrics.update(((rows, a), (a, b), "") for a, b in itertools.pairwise(sizes))
    return steps, metrics


def _operands(product: Product, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """float32 operands of ``product`` in the engine's layout, and the output buffer."""
    left_shape, right_shape, transposed = product
    if transposed == "left":  # inputs.T: a view of a C-contiguous (rows, n_in) block
        left = rng.standard_normal(left_shape[::-1], dtype=np.float32).T
    else:
        left = rng.standard_normal(left_shape, dtype=np.float32)
    if transposed == "right":  # weights.T: a view of the (n_in, n_out) weights
        right = rng.standard_normal(right_shape[::-1], dtype=np.float32).T
    else:
        right = rng.standard_normal(right_shape, dtype=np.float32)
    rows = () if left.ndim == 1 else (left.shape[0],)
    return left, right, np.empty((*rows, right.shape[1]), np.float32)


def time_product(product: Product, *, min_seconds: float = 0.004, best_of: int = 5) -> float:
    """Seconds of one ``numpy.matmul`` of ``product``: the best of ``best_of`` timeit
    loops, each long enough (``min_seconds``) to read the clock reliably."""
    left, right, out = _operands(product, np.random.default_rng(0))
    timer = timeit.Timer(lambda: np.matmul(left, right, out=out))
    loops = 1
    while timer.timeit(loops) < min_seconds:
        loops *= 4
    return min(timer.repeat(repeat=best_of, number=loops)) / loops


def plan_seconds(plan: Counter[Product], threads: int) -> float:
    with threadpool_limits(limits=threads, user_api="blas"):
        return sum(count * time_product(product) for product, count in plan.items())


@dataclass
class Repeat:
    workload: str
    threads: int
    steps_seconds: float
    metrics_seconds: float
    engine_seconds: float
    sklearn_seconds: float | None
    peak_gflops: float
    others: float

    @property
    def floor(self) -> float:
        return self.steps_seconds + self.metrics_seconds


def one_repeat(workload: Workload, *, use_sklearn: bool, epochs: int | None) -> Repeat:
    features, labels = workload_data(workload)
    threads = THREADS.get(workload.name, 1)
    timed_epochs = epochs or workload.timed_epochs
    monitor = LoadMonitor().start()
    steps, metrics = epoch_plan(workload)
    steps_seconds = plan_seconds(steps, threads)
    metrics_seconds = plan_seconds(metrics, threads)
    gc.collect()
    engine = run_engine(workload, features, labels, timed_epochs=timed_epochs, threads=threads)
    sklearn = None
    if use_sklearn:
        sklearn = run_sklearn(workload, features, labels, timed_epochs=timed_epochs).seconds
    peak = gemm_peak_gflops() if workload.name == "W4" else float("nan")
    return Repeat(
        workload.name,
        threads,
        steps_seconds,
        metrics_seconds,
        engine.seconds,
        sklearn,
        peak,
        monitor.stop(),
    )


def table(repeats: Sequence[Repeat]) -> str:
    rows = []
    for r in repeats:
        wl = WORKLOADS[r.workload]
        ms = 1000.0
        peak_share = (
            "-"
            if math.isnan(r.peak_gflops)
            else f"{wl.flops_per_epoch / r.floor / 1e9 / r.peak_gflops:.1%}"
        )
        rows.append(
            [
                r.workload,
                r.threads,
                r.steps_seconds * ms,
                r.metrics_seconds * ms,
                r.floor * ms,
                r.engine_seconds * ms,
                f"{r.floor / r.engine_seconds:.0%}",
                "-" if r.sklearn_seconds is None else r.sklearn_seconds * ms,
                "-" if r.sklearn_seconds is None else r.sklearn_seconds / r.engine_seconds,
                "-" if r.sklearn_seconds is None else r.sklearn_seconds / r.floor,
                peak_share,
                f"{r.others:.0%}",
            ]
        )
    headers = [
        "case",
        "threads",
        "floor: steps ms",
        "floor: metrics ms",
        "floor ms",
        "engine ms",
        "floor/engine",
        "sklearn ms",
        "x sklearn",
        "x sklearn at the floor",
        "% GEMM peak at the floor",
        "others' CPU",
    ]
    return format_table(headers, rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gemm_floor", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("-w", "--workloads", default="W1,W2,W3,W4")
    parser.add_argument("-r", "--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, help="timed epochs (default: the workload's)")
    parser.add_argument("--no-sklearn", action="store_true")
    args = parser.parse_args(argv)
    names = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {list(WORKLOADS)}")
    use_sklearn = not args.no_sklearn and _have("sklearn")
    print("# bench.gemm_floor")
    for line in machine_lines():
        print(line)
    repeats = [
        one_repeat(WORKLOADS[name], use_sklearn=use_sklearn, epochs=args.epochs)
        for _ in range(args.repeats)
        for name in names
    ]
    repeats.sort(key=lambda r: names.index(r.workload))
    print()
    print(table(repeats))
    print()
    for name in names:
        mine = [r for r in repeats if r.workload == name]
        share = median([r.floor / r.engine_seconds for r in mine])
        line = f"{name}: the BLAS floor is {share:.0%} of the engine's epoch (median)"
        if use_sklearn:
            reach = median([(r.sklearn_seconds or 0.0) / r.floor for r in mine])
            line += f"; x sklearn at most {reach:.2f} with no other work at all"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
