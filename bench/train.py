"""Training throughput: the annlab engine against PyTorch and scikit-learn.

    python -m bench.train                 # W1..W4, 3 repeats
    python -m bench.train --quick         # a fast look (fewer epochs, 1 repeat)
    python -m bench.train -w W1,W4 -r 5

Every contender trains the same network (ReLU hidden layers, softmax output,
cross-entropy, Adam lr 1e-3, eps 1e-8) on the same synthetic data with shuffled
mini-batches. One warm-up epoch, then the median of the timed epochs; the
whole comparison is repeated and the median over repeats is reported.

The engine is timed through ``core.training.train`` itself, with what the
service turns on: an ``on_epoch`` callback receiving the per-epoch metrics
(loss and accuracy on the whole training set), a ``should_stop`` cancellation
poll, the learning-rate schedule. Its epoch time is the time between two
``on_epoch`` calls. PyTorch and scikit-learn are timed on their plain training
loops (no per-epoch evaluation): the stricter comparison for the engine.

Before timing, one optimizer step of the engine and of PyTorch from the same
weights and batch are compared (``check_one_step``).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import multiprocessing
import os
import resource
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from bench.common import (
    ADAM_EPSILON,
    LEARNING_RATE,
    WORKLOADS,
    LoadMonitor,
    Workload,
    format_table,
    gemm_peak_gflops,
    he_weights,
    machine_lines,
    make_data,
    median,
    wait_quiet,
    workload_data,
)

# --------------------------------------------------------------------------- engine


def engine_dataset(features: np.ndarray, labels: np.ndarray, name: str = "bench"):
    from core.data import Dataset

    n_classes = int(labels.max()) + 1
    return Dataset(
        name=name,
        task="classification",
        features=np.ascontiguousarray(features, dtype=np.float64),
        targets=np.ascontiguousarray(labels, dtype=np.int64),
        class_names=[f"c{i}" for i in range(n_classes)],
        feature_names=[f"x{i}" for i in range(features.shape[1])],
    )


def engine_spec(
    workload: Workload,
    *,
    epochs: int,
    dtype: str = "float32",
    seed: int = 0,
    batch_size: int | None = -1,
    shuffle: bool = True,
    initial_weights: list[tuple[np.ndarray, np.ndarray]] | None = None,
    dataset,
    threads: int = 1,
):
    """The normalised ``RunSpec`` of a workload (batch_size -1 = the workload's;
    ``threads`` = ``training.threads``, BLAS threads of the run)."""
    from core.specs import (
        AdamSpec,
        InitialWeights,
        LayerSpec,
        LayerWeights,
        ModelSpec,
        RunSpec,
        TrainingSpec,
        check_against_dataset,
    )

    layers = [LayerSpec(units=h, activation="relu") for h in workload.hidden]
    layers.append(LayerSpec(units=workload.n_classes, activation="softmax"))
    init = None
    if initial_weights is not None:
        init = InitialWeights(
            layers=[
                LayerWeights(weights=w.astype(np.float64).tolist(), biases=b.tolist())
                for w, b in initial_weights
            ]
        )
    spec = RunSpec(
        name=f"bench {workload.name}",
        dataset=dataset.name,
        model=ModelSpec(layers=layers, init="he"),
        loss="cross_entropy",
        optimizer=AdamSpec(type="adam", learning_rate=LEARNING_RATE, epsilon=ADAM_EPSILON),
        training=TrainingSpec(
            epochs=epochs,
            batch_size=workload.batch_size if batch_size == -1 else batch_size,
            shuffle=shuffle,
            seed=seed,
            validation_split=0.0,
            standardize=False,
            early_stopping=None,
            threads=threads,
        ),
        dtype=dtype,
        initial_weights=init,
    )
    return check_against_dataset(spec, dataset.shape())


@dataclass
class Measurement:
    contender: str
    dtype: str
    epoch_seconds: list[float]
    accuracy: float
    extra: dict = field(default_factory=dict)
    others_load: float = float("nan")

    @property
    def seconds(self) -> float:
        return median(self.epoch_seconds)


def run_engine(
    workload: Workload,
    features: np.ndarray,
    labels: np.ndarray,
    *,
    dtype: str = "float32",
    timed_epochs: int,
    seed: int = 0,
    threads: int = 1,
    suffix: str = "",
) -> Measurement:
    """Time ``core.training.train``: epoch time = gap between two ``on_epoch`` calls.

    ``threads`` is the spec's ``training.threads``: the engine holds BLAS to that
    many threads for the whole call, as a service worker does. ``suffix`` is added
    to the contender's name (the second engine contender of a workload).
    """
    from core.training import train

    dataset = engine_dataset(features, labels)
    spec = engine_spec(
        workload,
        epochs=1 + timed_epochs,
        dtype=dtype,
        seed=seed,
        dataset=dataset,
        threads=threads,
    )
    stamps: list[float] = []
    history = []
    cancelled = [False]
    polls = [0]

    def on_epoch(metrics) -> None:
        stamps.append(time.perf_counter())
        history.append(metrics)

    def should_stop() -> bool:
        polls[0] += 1
        return cancelled[0]

    gc.collect()
    result = train(spec, dataset, on_epoch=on_epoch, should_stop=should_stop)
    if result.stop_reason != "completed":
        raise RuntimeError(f"engine run ended with {result.stop_reason}: {result.error}")
    times = list(np.diff(stamps))  # the first epoch (warm-up, with setup) is dropped
    last = history[-1]
    return Measurement(
        f"annlab-{_short(dtype)}{suffix}",
        dtype,
        [float(t) for t in times],
        float(last.train_accuracy),
        {"should_stop_polls": polls[0], "train_loss": float(last.train_loss)},
    )


# ---------------------------------------------------------------------------- torch


def _torch_model(sizes: Sequence[int], weights, dtype):
    import torch
    from torch import nn

    modules: list = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        modules.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            modules.append(nn.ReLU())
    model = nn.Sequential(*modules).to(dtype)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for lin, (w, b) in zip(linears, weights, strict=True):
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
            lin.bias.copy_(torch.from_numpy(b))
    return model, linears


def run_torch(
    workload: Workload,
    features: np.ndarray,
    labels: np.ndarray,
    *,
    threads: int,
    dtype: str = "float32",
    timed_epochs: int,
    seed: int = 0,
    epoch_metrics: bool = False,
) -> Measurement:
    """PyTorch CPU eager: randperm, index, zero_grad, forward, CE, backward, Adam.step.

    ``epoch_metrics``: after every epoch (inside its time) also the loss and accuracy on
    the whole training set, as the engine computes and the service reports them."""
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    np_dtype = np.dtype(dtype)
    tdtype = torch.float32 if np_dtype == np.float32 else torch.float64
    weights = he_weights(workload.sizes, seed, np_dtype.type)
    model, _ = _torch_model(workload.sizes, weights, tdtype)
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, eps=ADAM_EPSILON)
    loss_fn = nn.CrossEntropyLoss()
    x_all = torch.from_numpy(np.ascontiguousarray(features, dtype=np_dtype))
    y_all = torch.from_numpy(labels)
    gen = torch.Generator().manual_seed(seed)
    n, bs = workload.n_samples, workload.batch_size
    times = []
    gc.collect()
    for _epoch in range(1 + timed_epochs):
        t = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, bs):
            idx = perm[start : start + bs]
            xb, yb = x_all[idx], y_all[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        if epoch_metrics:
            with torch.inference_mode():
                out = model(x_all)
                float(loss_fn(out, y_all))
                float((out.argmax(1) == y_all).double().mean())
        times.append(time.perf_counter() - t)
    with torch.inference_mode():
        accuracy = float((model(x_all).argmax(1) == y_all).double().mean())
    name = f"torch-{_short(dtype)}-{threads}t" + ("+metrics" if epoch_metrics else "")
    return Measurement(name, dtype, times[1:], accuracy)


# -------------------------------------------------------------------------- sklearn


def run_sklearn(
    workload: Workload,
    features: np.ndarray,
    labels: np.ndarray,
    *,
    dtype: str = "float32",
    timed_epochs: int,
    seed: int = 0,
) -> Measurement:
    """``MLPClassifier`` (adam, alpha 0), one epoch per ``fit`` (max_iter=1, warm_start)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    x = np.ascontiguousarray(features, dtype=dtype)
    clf = MLPClassifier(
        hidden_layer_sizes=workload.hidden,
        activation="relu",
        solver="adam",
        alpha=0.0,
        batch_size=workload.batch_size,
        learning_rate_init=LEARNING_RATE,
        epsilon=ADAM_EPSILON,
        max_iter=1,
        warm_start=True,
        shuffle=True,
        random_state=seed,
        tol=0.0,
        n_iter_no_change=10**9,
        early_stopping=False,
    )
    times = []
    gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _epoch in range(1 + timed_epochs):
            t = time.perf_counter()
            clf.fit(x, labels)
            times.append(time.perf_counter() - t)
    accuracy = float(clf.score(x, labels))
    return Measurement(f"sklearn-{_short(dtype)}", dtype, times[1:], accuracy)


def _short(dtype: str) -> str:
    return "f32" if np.dtype(dtype) == np.float32 else "f64"


# ---------------------------------------------------------------- correctness check


@dataclass
class StepCheck:
    case: str
    dtype: str
    max_abs_diff: float
    max_update: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance


def check_one_step(
    workload: Workload,
    *,
    n_rows: int = 256,
    dtype: str = "float32",
    seed: int = 0,
    torch_learning_rate: float = LEARNING_RATE,
) -> StepCheck:
    """One Adam step of the engine and of PyTorch from the same weights and batch.

    The engine step goes through ``core.training.train`` (initial_weights given,
    one epoch, the whole set as one batch, no shuffle); PyTorch does one
    forward/backward/``Adam.step`` on the same rows. Returns the largest absolute
    difference of the resulting parameters, next to the size of the step itself.
    (``torch_learning_rate`` exists so that a test can show a mismatch is caught.)
    """
    import torch
    from torch import nn

    np_dtype = np.dtype(dtype)
    features, labels = make_data(n_rows, workload.n_features, workload.n_classes, seed + 7)
    features = features.astype(np_dtype).astype(np.float64)  # exactly representable
    weights = he_weights(workload.sizes, seed + 11, np_dtype.type)
    # give the biases something to do (the engine must not assume zero biases)
    rng = np.random.default_rng(seed + 13)
    weights = [(w, rng.normal(0, 0.1, b.shape).astype(np_dtype)) for w, b in weights]

    from core.training import train

    dataset = engine_dataset(features, labels)
    spec = engine_spec(
        workload,
        epochs=1,
        dtype=dtype,
        seed=seed,
        batch_size=None,
        shuffle=False,
        initial_weights=weights,
        dataset=dataset,
    )
    result = train(spec, dataset)
    engine_after = [(np.asarray(w), np.asarray(b)) for w, b in result.model.layers]

    tdtype = torch.float32 if np_dtype == np.float32 else torch.float64
    model, linears = _torch_model(workload.sizes, weights, tdtype)
    opt = torch.optim.Adam(model.parameters(), lr=torch_learning_rate, eps=ADAM_EPSILON)
    opt.zero_grad()
    loss = nn.CrossEntropyLoss()(
        model(torch.from_numpy(features.astype(np_dtype))), torch.from_numpy(labels)
    )
    loss.backward()
    opt.step()

    diff = 0.0
    update = 0.0
    for (w0, b0), (we, be), lin in zip(weights, engine_after, linears, strict=True):
        wt = lin.weight.detach().numpy().T
        bt = lin.bias.detach().numpy()
        diff = max(diff, float(np.abs(we - wt).max()), float(np.abs(be - bt).max()))
        update = max(update, float(np.abs(wt - w0).max()), float(np.abs(bt - b0).max()))
    # float32: a few ulps of weights of size ~1 plus the rounding of the step itself
    tolerance = 2e-6 if np_dtype == np.float32 else 1e-12
    return StepCheck(workload.name, dtype, diff, update, tolerance)


# ------------------------------------------------------------------------- memory


def _worker_memory(workload: Workload, dtype: str, epochs: int, queue) -> None:
    """In a fresh process, as a service worker: RSS after imports, then peak while training."""
    import core.training  # imported first: its cost belongs to the baseline

    features, labels = workload_data(workload)
    dataset = engine_dataset(features, labels)
    spec = engine_spec(workload, epochs=epochs, dtype=dtype, dataset=dataset)
    base = _proc_status_mb("VmRSS")
    base_peak = _proc_status_mb("VmHWM")
    core.training.train(spec, dataset, on_epoch=lambda m: None, should_stop=lambda: False)
    queue.put(
        {
            "dtype": dtype,
            "rss_before_mb": base,
            "peak_before_mb": base_peak,
            "peak_mb": _proc_status_mb("VmHWM"),
        }
    )


def _proc_status_mb(field_name: str) -> float:
    """VmRSS / VmHWM of this process in MiB. (Not ``ru_maxrss``: after a spawn's exec
    it still holds the high-water mark of the forked parent, here hundreds of MiB.)"""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def worker_memory(workload: Workload, dtype: str, epochs: int = 2) -> dict:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker_memory, args=(workload, dtype, epochs, queue))
    proc.start()
    try:
        return queue.get(timeout=600)
    finally:
        proc.join(timeout=60)


# --------------------------------------------------------------------------- driver


Contender = tuple[str, Callable[..., Measurement], dict]


def contenders(
    *,
    dtypes: Sequence[str],
    torch: bool,
    sklearn: bool,
    engine: bool = True,
    engine_threads: int = 1,
) -> list[Contender]:
    """The contenders of one workload. ``engine_threads`` > 1: the engine runs with
    that many BLAS threads (``training.threads``, named ``annlab-f32``, the one the
    targets judge) and, beside it, with one (``annlab-f32-1t``)."""
    cores = os.cpu_count() or 1
    out: list[Contender] = []
    for dtype in dtypes:
        if engine:
            out.append(("engine", run_engine, {"dtype": dtype, "threads": engine_threads}))
            if engine_threads > 1:
                out.append(("engine", run_engine, {"dtype": dtype, "suffix": "-1t"}))
        if torch:
            for threads in sorted({1, cores}):
                out.append(("torch", run_torch, {"dtype": dtype, "threads": threads}))
        if sklearn:
            out.append(("sklearn", run_sklearn, {"dtype": dtype}))
    return out


def run_workload(
    workload: Workload,
    chosen: Sequence[Contender],
    *,
    repeats: int,
    timed_epochs: int | None = None,
    seed: int = 0,
    quiet_wait: float = 0.0,
    max_others: float = 0.15,
    retries: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, list[Measurement]]:
    """Every contender ``repeats`` times (interleaved); name → one Measurement per repeat.

    With ``quiet_wait`` > 0, each run first waits (that many seconds at most) for
    the other processes of the machine to use less than ``max_others`` of it; a run
    during which they used more is done again (``retries`` times at most) and the
    quietest attempt is kept.
    """
    features, labels = workload_data(workload, seed)
    epochs = timed_epochs or workload.timed_epochs
    results: dict[str, list[Measurement]] = {}
    for rep in range(repeats):
        for _kind, fn, kwargs in chosen:
            best: Measurement | None = None
            for _attempt in range(1 + retries):
                if quiet_wait > 0:
                    wait_quiet(quiet_wait, max_others)
                monitor = LoadMonitor().start()
                m = fn(workload, features, labels, timed_epochs=epochs, seed=seed, **kwargs)
                m.others_load = monitor.stop()
                if best is None or m.others_load < best.others_load:
                    best = m
                if not m.others_load >= max_others:  # NaN (no /proc) counts as quiet
                    break
            assert best is not None
            results.setdefault(best.contender, []).append(best)
            log(
                f"  [{workload.name} rep {rep + 1}/{repeats}] {best.contender:<16} "
                f"{best.seconds * 1e3:9.2f} ms/epoch  acc {best.accuracy:.4f}  "
                f"others used {100 * best.others_load:.0f}% of the CPUs"
            )
            time.sleep(0.05)
    return results


@dataclass
class Row:
    workload: str
    contender: str
    dtype: str
    seconds: float
    spread: tuple[float, float]
    samples_per_s: float
    vs_torch: float | None
    vs_sklearn: float | None
    accuracy: float
    gemm_fraction: float | None
    others_load: float


def summarise(
    workload: Workload, results: dict[str, list[Measurement]], gemm_gflops: float | None
) -> list[Row]:
    per = {name: median([m.seconds for m in ms]) for name, ms in results.items()}
    rows = []
    for name, ms in results.items():
        dtype = ms[0].dtype
        torch_same = [s for n, s in per.items() if n.startswith("torch") and _same(n, dtype)]
        sk_same = [s for n, s in per.items() if n.startswith("sklearn") and _same(n, dtype)]
        sec = per[name]
        gemm = None
        if gemm_gflops:
            gemm = workload.flops_per_epoch / sec / 1e9 / gemm_gflops
        rows.append(
            Row(
                workload=workload.name,
                contender=name,
                dtype=dtype,
                seconds=sec,
                spread=(min(m.seconds for m in ms), max(m.seconds for m in ms)),
                samples_per_s=workload.n_samples / sec,
                vs_torch=min(torch_same) / sec if torch_same else None,
                vs_sklearn=sk_same[0] / sec if sk_same else None,
                accuracy=median([m.accuracy for m in ms]),
                gemm_fraction=gemm,
                others_load=max(m.others_load for m in ms),
            )
        )
    return rows


def _same(name: str, dtype: str) -> bool:
    return f"-{_short(dtype)}" in name


def table(rows: Sequence[Row]) -> str:
    headers = [
        "case",
        "contender",
        "ms/epoch",
        "min..max ms",
        "samples/s",
        "x best torch",
        "x sklearn",
        "train acc",
        "% GEMM peak",
        "others' CPU",
    ]
    body = []
    for r in rows:
        body.append(
            [
                r.workload,
                r.contender,
                r.seconds * 1e3,
                f"{r.spread[0] * 1e3:.2f}..{r.spread[1] * 1e3:.2f}",
                r.samples_per_s,
                r.vs_torch,
                r.vs_sklearn,
                f"{r.accuracy:.4f}",
                f"{100 * r.gemm_fraction:.1f}%" if r.gemm_fraction is not None else None,
                f"{100 * r.others_load:.0f}%",
            ]
        )
    return format_table(headers, body)


TARGETS = {"W1": 5.0, "W2": 2.5, "W3": 1.5, "W4": 1.0}


def verdicts(rows: Sequence[Row]) -> list[str]:
    lines = []
    for r in rows:
        if r.contender != "annlab-f32":
            continue
        parts = []
        if r.workload in TARGETS and r.vs_torch is not None:
            t = TARGETS[r.workload]
            parts.append(f"x best torch {r.vs_torch:.2f} (≥ {t}) {_met(r.vs_torch >= t)}")
        if r.vs_sklearn is not None:
            parts.append(f"x sklearn {r.vs_sklearn:.2f} (≥ 2) {_met(r.vs_sklearn >= 2.0)}")
        if r.workload == "W4" and r.gemm_fraction is not None:
            parts.append(
                f"GEMM peak {100 * r.gemm_fraction:.1f}% (≥ 75%) {_met(r.gemm_fraction >= 0.75)}"
            )
        if parts:
            lines.append(f"{r.workload}: " + "; ".join(parts))
    return lines


def _met(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def _have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.train", description=__doc__.split("\n")[0]
    )
    parser.add_argument("-w", "--workloads", default="W1,W2,W3,W4", help="comma list of W1..W4")
    parser.add_argument("-r", "--repeats", type=int, default=3)
    parser.add_argument("-e", "--epochs", type=int, default=None, help="timed epochs per run")
    parser.add_argument("--quick", action="store_true", help="1 repeat, 2 timed epochs")
    parser.add_argument("--no-f64", action="store_true", help="skip the float64 contenders")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--no-sklearn", action="store_true")
    parser.add_argument("--no-memory", action="store_true", help="skip the W4 worker RSS")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=15.0,
        help="before each run, wait up to this many seconds for other processes to idle",
    )
    parser.add_argument(
        "--max-others",
        type=float,
        default=0.15,
        help="a run during which other processes used more than this fraction of the "
        "CPUs is done again (see --retries)",
    )
    parser.add_argument("--retries", type=int, default=2)
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.epochs = 1, args.epochs or 2
        args.retries, args.quiet_wait = 0, min(args.quiet_wait, 1.0)

    names = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {list(WORKLOADS)}")
    use_torch = not args.no_torch and _have("torch")
    use_sklearn = not args.no_sklearn and _have("sklearn")
    if use_torch:
        import torch
    if use_sklearn:
        import sklearn.neural_network

    print("# bench.train")
    for line in machine_lines():
        print(line)
    if use_torch:
        import torch

        print(f"torch {torch.__version__} (threads default {torch.get_num_threads()})")
    if use_sklearn:
        import sklearn

        print(f"scikit-learn {sklearn.__version__}")

    if use_torch:
        print("\n## correctness: one Adam step, engine vs PyTorch, same weights and batch")
        for wl in (WORKLOADS["W1"], WORKLOADS["W2"]):
            for dtype in ("float32", "float64"):
                c = check_one_step(wl, dtype=dtype, seed=args.seed)
                print(
                    f"{wl.name} {dtype}: max |Δparam| {c.max_abs_diff:.3g} "
                    f"(step size {c.max_update:.3g}, tolerance {c.tolerance:g}) "
                    f"{'OK' if c.ok else 'FAIL'}"
                )
                if not c.ok:
                    print("correctness check failed: not timing", file=sys.stderr)
                    return 1
    else:
        print("\n(torch not installed: correctness check and torch contenders skipped)")

    dtypes = ["float32"] if args.no_f64 else ["float32", "float64"]
    chosen = contenders(dtypes=dtypes, torch=use_torch, sklearn=use_sklearn)
    # W4 is judged with `training.threads` = the cores, as bench.service submits it;
    # the engine on one thread is timed beside it
    chosen_big = contenders(
        dtypes=dtypes, torch=use_torch, sklearn=use_sklearn, engine_threads=os.cpu_count() or 1
    )
    peaks = []
    all_rows: list[Row] = []
    for name in names:
        wl = WORKLOADS[name]
        print(f"\n## {wl.describe()}; {wl.n_parameters:,} parameters")
        peaks.append(gemm_peak_gflops())
        results = run_workload(
            wl,
            chosen_big if name == "W4" else chosen,
            repeats=args.repeats,
            timed_epochs=args.epochs,
            seed=args.seed,
            quiet_wait=args.quiet_wait,
            max_others=args.max_others,
            retries=args.retries,
        )
        peaks.append(gemm_peak_gflops())
        all_rows.extend(summarise(wl, results, median(peaks) if name == "W4" else None))

    peak = median(peaks) if peaks else float("nan")
    print(
        f"\n## results (median over {args.repeats} repeat(s) of the median timed epoch; "
        f"float32 GEMM peak numpy.matmul 2048²: {peak:.1f} GFLOP/s)"
    )
    print("x best torch / x sklearn: their epoch time ÷ this one's, same dtype (> 1 = faster)")
    print(table(all_rows))
    print("\n## targets (annlab-f32)")
    for line in verdicts(all_rows):
        print(line)

    memory = []
    if "W4" in names and not args.no_memory:
        print("\n## W4 worker memory (fresh spawned process, core.training.train, 2 epochs)")
        for dtype in dtypes:
            mem = worker_memory(WORKLOADS["W4"], dtype)
            memory.append(mem)
            print(
                f"{dtype}: RSS after imports+data {mem['rss_before_mb']:.0f} MiB, "
                f"peak RSS {mem['peak_mb']:.0f} MiB "
                f"(+{mem['peak_mb'] - mem['rss_before_mb']:.0f} MiB for training)"
            )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "gemm_gflops": peak,
                    "rows": [asdict(r) for r in all_rows],
                    "memory": memory,
                },
                f,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
