"""The plots: real data in (runs trained by the engine, trajectories of core.surfaces),
exact PNG sizes and valid SVG out; the renderer's bound, cache and non-blocking."""

from __future__ import annotations

import asyncio
import struct
import threading
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
import pytest

from app.services import plots
from app.services.plot_pool import PlotCache, PlotRenderer, PlotsBusy
from app.services.plots import canvas
from tests.services import plot_examples as ex

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk (the first one, right after the signature)."""
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def svg_root(data: bytes) -> ET.Element:
    root = ET.fromstring(data)
    assert root.tag.endswith("svg")
    return root


def svg_text(data: bytes) -> str:
    return data.decode("utf-8")


@pytest.fixture(scope="module")
def kinds() -> dict[str, Any]:
    """For each kind of plot, a function (fmt, width, height) → bytes on real data."""
    iris, _ = ex.iris_run()
    moons, moons_data = ex.moons_run()
    grid = ex.boundary_grid(moons, moons_data.features, n=60)
    answer = ex.trajectories_answer()
    f = plots.SurfaceFunction("rosenbrock")
    runs = [
        ("optimizer=adam lr=0.01", ex.metrics_lists(iris)),
        ("optimizer=adam lr=0.01 (moons)", ex.metrics_lists(moons)),
    ]
    return {
        "loss": lambda **s: plots.loss_plot(
            ex.metrics_lists(iris), title="iris", best_epoch=iris.best_epoch, **s
        ),
        "boundary": lambda **s: plots.decision_boundary_plot(
            grid,
            points=moons_data.features,
            labels=moons_data.targets,
            title="moons",
            feature_names=moons_data.feature_names,
            **s,
        ),
        "trajectories": lambda **s: plots.trajectories_plot(answer, f=f, **s),
        "experiment": lambda **s: plots.experiment_plot(runs, title="exp", **s),
    }


@pytest.mark.parametrize("kind", ["loss", "boundary", "trajectories", "experiment"])
@pytest.mark.parametrize("size", [(800, 500), (200, 200), (333, 2999)])
def test_png_has_exactly_the_requested_size(kinds: dict[str, Any], kind: str, size: Any) -> None:
    width, height = size
    assert png_size(kinds[kind](fmt="png", width=width, height=height)) == (width, height)


@pytest.mark.parametrize("kind", ["loss", "boundary", "trajectories", "experiment"])
def test_svg_is_valid_xml(kinds: dict[str, Any], kind: str) -> None:
    data = kinds[kind](fmt="svg", width=640, height=480)
    root = svg_root(data)
    assert (root.get("width"), root.get("height")) == ("640", "480")  # pixels, like the PNG
    assert root.get("viewBox")


def test_every_pixel_size_in_range_gives_that_canvas() -> None:
    """The figure's inches × dpi never truncates one pixel short (e.g. 29.999… → 29)."""
    fig, _ = canvas.figure(800, 500)
    for width in range(plots.MIN_SIZE, plots.MAX_SIZE + 1):
        fig.set_size_inches((width + 0.01) / plots.DPI, 5.0101)
        assert int(fig.bbox.width) == width


@pytest.mark.parametrize(
    ("width", "height", "message"),
    [(199, 500, "width"), (800, 3001, "height"), (0, 0, "width"), (800.5, 500, "width")],
)
def test_check_size_names_the_parameter(width: Any, height: Any, message: str) -> None:
    with pytest.raises(plots.PlotError, match=message):
        plots.check_size(width, height)
    with pytest.raises(plots.PlotError, match=message):
        plots.loss_plot({"epoch": []}, title="t", width=width, height=height)


def test_loss_plot_labels_legend_best_epoch_and_accuracy_panel() -> None:
    iris, _ = ex.iris_run()
    svg = svg_text(
        plots.loss_plot(
            ex.metrics_lists(iris), title="adam on iris", best_epoch=iris.best_epoch, fmt="svg"
        )
    )
    # Matplotlib's SVG keeps each text as a comment before its glyphs.
    for text in (
        "adam on iris",
        "epoch",
        "loss",
        "accuracy",
        "train loss",
        "validation loss",
        f"best epoch ({iris.best_epoch})",
        "validation accuracy",
    ):
        assert f"<!-- {text} -->" in svg, text


def test_loss_plot_regression_has_no_accuracy_panel() -> None:
    metrics = {
        "epoch": [1, 2, 3],
        "train_loss": [1.0, 0.5, 0.2],
        "val_loss": [1.1, 0.6, 0.3],
        "train_accuracy": [None] * 3,
        "val_accuracy": [None] * 3,
    }
    svg = svg_text(plots.loss_plot(metrics, title="sine", task="regression", fmt="svg"))
    assert "<!-- accuracy -->" not in svg
    assert "<!-- validation loss -->" in svg


def test_loss_plot_goes_logarithmic_past_two_decades() -> None:
    epochs = list(range(1, 51))
    wide = {"epoch": epochs, "train_loss": list(np.geomspace(10.0, 0.01, 50))}
    narrow = {"epoch": epochs, "train_loss": list(np.geomspace(1.0, 0.02, 50))}
    # Log axes label their ticks with mathtext powers of ten: "$\mathdefault{10^{-2}}$".
    assert "10^{" in svg_text(plots.loss_plot(wide, title="w", task="regression", fmt="svg"))
    assert "10^{" not in svg_text(plots.loss_plot(narrow, title="n", task="regression", fmt="svg"))
    assert canvas.spans_decades([10.0, 0.01]) and not canvas.spans_decades([1.0, 0.02])
    assert not canvas.spans_decades([1.0, 0.0, 1e-9])  # a zero: never log


def test_loss_plot_of_a_run_without_epochs_yet() -> None:
    data = plots.loss_plot({"epoch": [], "train_loss": []}, title="queued", fmt="png")
    assert png_size(data) == (800, 500)
    assert "no epochs recorded yet" in svg_text(
        plots.loss_plot({"epoch": []}, title="queued", fmt="svg")
    )


def test_decision_boundary_legend_names_classes_and_axes_name_features() -> None:
    moons, data = ex.moons_run()
    grid = ex.boundary_grid(moons, data.features, n=40)
    grid["class_names"] = ["upper", "lower"]
    svg = svg_text(
        plots.decision_boundary_plot(
            grid,
            points=data.features,
            labels=data.targets,
            title="moons",
            feature_names=["width", "depth"],
            fmt="svg",
        )
    )
    for text in ("upper", "lower", "width", "depth", "class", "moons"):
        assert f"<!-- {text} -->" in svg, text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda g: g.pop("predictions"), "two-feature"),
        (lambda g: g.update(x=g["x"][:-1]), "predictions must be"),
    ],
)
def test_decision_boundary_rejects_bad_grids(change: Any, message: str) -> None:
    grid = {
        "x": [0.0, 1.0, 2.0],
        "y": [0.0, 1.0],
        "class_names": ["a", "b"],
        "predictions": [[0, 0, 1], [0, 1, 1]],
        "confidence": None,
    }
    change(grid)
    with pytest.raises(plots.PlotError, match=message):
        plots.decision_boundary_plot(
            grid, points=np.zeros((2, 2)), labels=np.array([0, 1]), title="t"
        )


def test_trajectories_legend_labels_optimizers_start_and_minima() -> None:
    answer = ex.trajectories_answer("himmelblau")
    minima = [[3.0, 2.0], [-2.805118, 3.131312], [-3.779310, -3.283186], [3.584428, -1.848126]]
    svg = svg_text(
        plots.trajectories_plot(
            answer, f=plots.SurfaceFunction("himmelblau"), minima=minima, fmt="svg"
        )
    )
    for text in (
        "sgd lr=0.001 momentum=0.9",
        "adam lr=0.05",
        "start",
        "minima",
        "optimizers on himmelblau",
        "x",
        "y",
    ):
        assert f"<!-- {text} -->" in svg, text


def test_trajectories_of_a_diverged_path_says_so() -> None:
    answer = {
        "function": "quadratic",
        "minimum": [0.0, 0.0],
        "trajectories": [
            {
                "optimizer": {"type": "sgd", "learning_rate": 2.0},
                "points": [[1.0, 1.0], [-3.0, -39.0]],
                "values": [11.0, 15219.0],
                "diverged_at": 2,
            }
        ],
    }
    svg = svg_text(plots.trajectories_plot(answer, f=plots.SurfaceFunction("quadratic"), fmt="svg"))
    assert "<!-- sgd lr=2 (diverged at step 2) -->" in svg


def test_optimizer_label_tells_settings_apart() -> None:
    assert plots.optimizer_label({"type": "adam", "learning_rate": 0.05}) == "adam lr=0.05"
    assert (
        plots.optimizer_label(
            {
                "type": "sgd",
                "learning_rate": 0.1,
                "momentum": 0.9,
                "nesterov": True,
                "l2": 0.001,
                "schedule": {"type": "step", "step_size": 10, "gamma": 0.5},
            }
        )
        == "sgd lr=0.1 momentum=0.9 nesterov l2=0.001 step(step_size=10,gamma=0.5)"
    )


def test_experiment_plot_labels_runs_and_falls_back_to_train_loss() -> None:
    runs = [
        ("lr=0.1", {"epoch": [1, 2], "val_loss": [0.5, 0.4], "train_loss": [0.6, 0.5]}),
        ("lr=0.01", {"epoch": [1, 2], "val_loss": [None, None], "train_loss": [0.7, 0.6]}),
    ]
    svg = svg_text(plots.experiment_plot(runs, title="grid", fmt="svg"))
    assert "<!-- lr=0.1 -->" in svg and "<!-- lr=0.01 (train loss) -->" in svg


def test_experiment_plot_with_many_runs_keeps_the_legend_bounded() -> None:
    runs = [
        (f"seed={i}", {"epoch": [1, 2], "val_loss": [1.0 / (i + 1), 0.5 / (i + 1)]})
        for i in range(30)
    ]
    svg = svg_text(plots.experiment_plot(runs, title="many", fmt="svg"))
    assert "<!-- seed=23 -->" in svg and "<!-- seed=24 -->" not in svg
    assert "<!-- +6 more runs -->" in svg


def test_plots_render_concurrently_from_threads(kinds: dict[str, Any]) -> None:
    """The OO API keeps no shared state: renders in parallel threads give the same bytes."""
    reference = {k: fn(fmt="png", width=400, height=300) for k, fn in kinds.items()}
    results: dict[str, list[bytes]] = {k: [] for k in kinds}

    def work(kind: str) -> None:
        results[kind].append(kinds[kind](fmt="png", width=400, height=300))

    threads = [threading.Thread(target=work, args=(k,)) for k in kinds for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for kind, got in results.items():
        assert got == [reference[kind]] * 2


# ----------------------------------------------------------------- the renderer


def test_same_key_is_rendered_once() -> None:
    calls: list[int] = []

    def fn(n: int) -> bytes:
        calls.append(n)
        return b"png%d" % n

    async def main() -> None:
        renderer = PlotRenderer(kind="thread")
        try:
            first = await asyncio.gather(
                *(renderer.render(("run", "loss"), fn, 1) for _ in range(5))
            )
            again = await renderer.render(("run", "loss"), fn, 2)
            other = await renderer.render(("run", "other"), fn, 3)
            uncached = [await renderer.render(None, fn, 4) for _ in range(2)]
        finally:
            renderer.shutdown()
        assert first == [b"png1"] * 5 and again == b"png1" and other == b"png3"
        assert uncached == [b"png4", b"png4"]
        assert calls == [1, 3, 4, 4] and renderer.renders == 4

    asyncio.run(main())


def test_a_blocked_render_does_not_block_the_event_loop() -> None:
    release = threading.Event()
    started = threading.Event()

    def slow() -> bytes:
        started.set()
        assert release.wait(30), "never released"
        return b"done"

    async def main() -> None:
        renderer = PlotRenderer(kind="thread", max_workers=1, max_pending=2)
        try:
            task = asyncio.create_task(renderer.render("slow", slow))
            while not started.is_set():
                await asyncio.sleep(0)  # let the render reach the pool
            # An unrelated coroutine completes while the render is still blocked.
            other = await asyncio.wait_for(asyncio.to_thread(lambda: "other"), timeout=30)
            assert other == "other" and not task.done()
            release.set()
            assert await task == b"done"
        finally:
            release.set()
            renderer.shutdown()

    asyncio.run(main())


def test_over_the_bound_is_refused_at_once_then_accepted_again() -> None:
    release = threading.Event()

    def slow() -> bytes:
        assert release.wait(30)
        return b"x"

    async def main() -> None:
        renderer = PlotRenderer(kind="thread", max_workers=1, max_pending=2)
        try:
            tasks = [asyncio.create_task(renderer.render(k, slow)) for k in ("a", "b")]
            await asyncio.sleep(0)
            assert renderer.pending == 2
            with pytest.raises(PlotsBusy, match="at most 2") as refused:
                await renderer.render("c", slow)
            assert refused.value.retry_after >= 1
            release.set()
            assert await asyncio.gather(*tasks) == [b"x", b"x"]
            assert renderer.pending == 0
            assert await renderer.render("c", slow) == b"x"
        finally:
            release.set()
            renderer.shutdown()

    asyncio.run(main())


def test_a_failed_render_is_not_cached_and_raises_to_every_waiter() -> None:
    attempts: list[int] = []

    def bad() -> bytes:
        attempts.append(1)
        raise plots.PlotError("cannot draw")

    async def main() -> None:
        renderer = PlotRenderer(kind="thread")
        try:
            results = await asyncio.gather(
                *(renderer.render("k", bad) for _ in range(3)), return_exceptions=True
            )
            assert all(isinstance(r, plots.PlotError) for r in results)
            with pytest.raises(plots.PlotError):
                await renderer.render("k", bad)
        finally:
            renderer.shutdown()
        assert len(attempts) == 2  # once for the three concurrent callers, once after

    asyncio.run(main())


def test_a_caller_that_goes_away_does_not_cancel_a_shared_render() -> None:
    release = threading.Event()
    started = threading.Event()

    def slow() -> bytes:
        started.set()
        assert release.wait(30)
        return b"shared"

    async def main() -> None:
        renderer = PlotRenderer(kind="thread", max_workers=1)
        try:
            leaving = asyncio.create_task(renderer.render("k", slow))
            staying = asyncio.create_task(renderer.render("k", slow))
            while not started.is_set():
                await asyncio.sleep(0)
            leaving.cancel()
            with pytest.raises(asyncio.CancelledError):
                await leaving
            release.set()
            assert await staying == b"shared"
            assert renderer.cache.get("k") == b"shared" and renderer.renders == 1
            assert renderer.pending == 0
        finally:
            release.set()
            renderer.shutdown()

    asyncio.run(main())


def test_cache_is_lru_bounded_by_entries_and_bytes() -> None:
    cache = PlotCache(max_entries=2, max_bytes=10)
    cache.put("a", b"1234")
    cache.put("b", b"1234")
    assert cache.get("a") == b"1234"  # a is now the most recent
    cache.put("c", b"1234")
    assert cache.get("b") is None and cache.get("a") and cache.get("c")
    cache.put("d", b"123456789")  # 4 + 9 > 10: drops the oldest until it fits
    assert cache.get("a") is None and cache.get("c") is None and cache.get("d")
    cache.put("huge", b"x" * 11)
    assert cache.get("huge") is None and len(cache) == 1


def test_process_pool_renders_a_real_plot() -> None:
    """The default pool: the plot functions and SurfaceFunction pickle into it."""
    answer = ex.trajectories_answer("quadratic")

    async def main() -> bytes:
        renderer = PlotRenderer()
        try:
            return await renderer.render(
                ("traj",),
                plots.trajectories_plot,
                answer,
                f=plots.SurfaceFunction("quadratic"),
                width=300,
                height=200,
            )
        finally:
            renderer.shutdown()

    assert png_size(asyncio.run(main())) == (300, 200)
