"""Shared pieces of the benchmarks: workloads, synthetic data, machine facts, tables.

Nothing here imports torch or scikit-learn: those are optional (the ``bench``
extra) and are imported only by the contenders that need them.
"""

from __future__ import annotations

import itertools
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Workload:
    """One benchmark case: a synthetic classification set and a ReLU MLP."""

    name: str
    n_samples: int
    n_features: int
    n_classes: int
    hidden: tuple[int, ...]
    batch_size: int
    timed_epochs: int = 5

    @property
    def sizes(self) -> list[int]:
        """Layer widths from input to output."""
        return [self.n_features, *self.hidden, self.n_classes]

    @property
    def n_parameters(self) -> int:
        s = self.sizes
        return sum(a * b + b for a, b in itertools.pairwise(s))

    @property
    def flops_per_epoch(self) -> float:
        """The conventional 6 × parameters × samples (forward 2, backward 4)."""
        return 6.0 * self.n_parameters * self.n_samples

    def describe(self) -> str:
        net = "-".join(str(s) for s in self.sizes)
        return (
            f"{self.name}: {self.n_samples}x{self.n_features}, {self.n_classes} classes, "
            f"{net}, batch {self.batch_size}"
        )


WORKLOADS: dict[str, Workload] = {
    "W1": Workload("W1", 150, 4, 3, (16,), 16, timed_epochs=100),
    "W2": Workload("W2", 20_000, 64, 10, (128, 128), 64, timed_epochs=5),
    "W3": Workload("W3", 20_000, 64, 10, (128, 128), 256, timed_epochs=5),
    "W4": Workload("W4", 20_000, 64, 10, (512, 512), 1024, timed_epochs=5),
}

#: Adam as the issue fixes it; epsilon is PyTorch's and scikit-learn's default.
LEARNING_RATE = 1e-3
ADAM_EPSILON = 1e-8


def make_data(
    n_samples: int, n_features: int, n_classes: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian class clusters: learnable, not trivially separable.

    Class centres are drawn N(0, s²) with s chosen so that two centres are about
    3.5 noise deviations apart; each row is its centre plus N(0, 1) noise.
    Classes are balanced. Returns float64 features (n, d) and int64 labels (n,).
    """
    rng = np.random.default_rng(seed)
    scale = 3.5 / np.sqrt(2.0 * n_features)
    centres = rng.normal(0.0, scale, size=(n_classes, n_features))
    labels = rng.permutation(np.arange(n_samples) % n_classes).astype(np.int64)
    features = centres[labels] + rng.normal(0.0, 1.0, size=(n_samples, n_features))
    return features, labels


def workload_data(workload: Workload, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return make_data(workload.n_samples, workload.n_features, workload.n_classes, seed)


def he_weights(
    sizes: Sequence[int], seed: int = 0, dtype: type = np.float32
) -> list[tuple[np.ndarray, np.ndarray]]:
    """He-initialised (W (n_in, n_out), b) pairs, biases 0, from a fixed seed."""
    rng = np.random.default_rng(seed)
    layers = []
    for n_in, n_out in itertools.pairwise(sizes):
        w = rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_in, n_out)).astype(dtype)
        layers.append((w, np.zeros(n_out, dtype=dtype)))
    return layers


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, nearest-rank."""
    if not sorted_values:
        return float("nan")
    rank = max(1, int(np.ceil(q / 100.0 * len(sorted_values))))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def gemm_peak_gflops(n: int = 2048, repeats: int = 7) -> float:
    """float32 GEMM rate of ``numpy.matmul`` on n×n matrices (median of repeats), GFLOP/s."""
    rng = np.random.default_rng(1)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    np.matmul(a, b, out=out)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append(time.perf_counter() - t)
    return 2.0 * n**3 / median(times) / 1e9


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def blas_info() -> list[str]:
    """One line per BLAS/OpenMP pool loaded in this process (threadpoolctl, if installed)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["threadpoolctl not installed"]
    lines = []
    for pool in threadpool_info():
        lines.append(
            f"{pool.get('internal_api')} {pool.get('version')} "
            f"({pool.get('architecture', '-')}, {pool.get('num_threads')} threads) "
            f"{os.path.basename(pool.get('filepath', ''))}"
        )
    return lines


def machine_lines() -> list[str]:
    env = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP_", "MKL_"))}
    return [
        f"cpu: {cpu_model()}, nproc {os.cpu_count()}",
        f"python {platform.python_version()}, numpy {np.__version__}",
        *(f"blas: {line}" for line in blas_info()),
        f"env: {env or 'no OPENBLAS_*/OMP_*/MKL_* set'}",
    ]


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table, right-aligned numbers, that pastes into Markdown as a code block."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for index, row in enumerate(cells):
        out.append(
            "  ".join(
                c.ljust(w) if i == 0 or index == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.1f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.4f}"
    return str(value)


class LoadMonitor:
    """How much of the machine *other* processes used between ``start`` and ``stop``.

    The benchmark machine may be shared (tests of colleagues, CI): numbers taken
    while others use the cores are not comparable, so each run records it.
    Fraction of all cores, from /proc/stat minus this process's own CPU time.
    """

    def __init__(self) -> None:
        self._t0 = self._busy0 = self._own0 = 0.0

    @staticmethod
    def _busy_seconds() -> float:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except OSError:
            return float("nan")
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own_seconds() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def start(self) -> LoadMonitor:
        self._t0 = time.perf_counter()
        self._busy0 = self._busy_seconds()
        self._own0 = self._own_seconds()
        return self

    def stop(self) -> float:
        wall = time.perf_counter() - self._t0
        busy = self._busy_seconds() - self._busy0
        own = self._own_seconds() - self._own0
        if wall <= 0 or busy != busy:
            return float("nan")
        return max(0.0, (busy - own) / (wall * (os.cpu_count() or 1)))


def others_load(window: float = 0.25) -> float:
    monitor = LoadMonitor().start()
    time.sleep(window)
    return monitor.stop()


def wait_quiet(max_seconds: float, threshold: float = 0.1) -> float:
    """Wait (at most ``max_seconds``) for a moment when other processes use < threshold
    of the machine; returns the last reading."""
    deadline = time.monotonic() + max_seconds
    load = others_load()
    while load >= threshold and time.monotonic() < deadline:
        load = others_load()
    return load


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result
