"""Server-side plots (API.md "Plots"): pure functions from the API's JSON shapes to bytes.

Each function builds its own ``Figure`` and draws it with ``FigureCanvasAgg`` (the
object-oriented API): no pyplot, no global figure state, no ``rcParams`` changes,
so any number of threads can render at once. Font sizes are passed to every text
call and scale with the figure, so a 200 × 200 thumbnail and a 3000 × 2000 poster
both read well. A PNG is exactly ``width`` × ``height`` pixels (the figure is laid
out with constrained layout, never cropped with ``bbox_inches="tight"``).

Colours: the Okabe–Ito palette (distinguishable with every common colour-vision
deficiency), and classes also differ by marker shape.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")  # no display, ever; harmless when already set

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

Format = Literal["png", "svg"]

MIN_SIZE, MAX_SIZE = 200, 3000
DEFAULT_WIDTH, DEFAULT_HEIGHT = 800, 500
DPI = 100

#: Okabe & Ito (2008), ordered so the first colours contrast most on white.
PALETTE = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#000000",  # black
)
#: The eighth Okabe–Ito colour, too pale for a line on white: kept for markers.
YELLOW = "#F0E442"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")
#: More lines than this and the legend lists only the first ones, saying how many are left.
MAX_LEGEND_ENTRIES = 24


class PlotError(ValueError):
    """The data cannot be drawn as asked (the route answers 422 with this message)."""


def check_size(width: int, height: int) -> tuple[int, int]:
    """``(width, height)`` if both are within 200..3000 pixels, else a ``PlotError``
    naming the parameter (routes validate ``?width=&height=`` with it)."""
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise PlotError(f"{name} must be an integer number of pixels, got {value!r}")
        if not MIN_SIZE <= value <= MAX_SIZE:
            raise PlotError(f"{name} must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {value}")
    return width, height


def media_type(fmt: Format) -> str:
    """The ``Content-Type`` of a rendered plot."""
    return "image/png" if fmt == "png" else "image/svg+xml"


# ----------------------------------------------------------------------- the plots


def loss_plot(
    metrics: Mapping[str, Sequence[Any]],
    *,
    title: str,
    best_epoch: int | None = None,
    task: Literal["classification", "regression"] = "classification",
    fmt: Format = "png",
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
) -> bytes:
    """Train and validation loss per epoch (``GET /runs/{id}/metrics``'s lists), the
    best epoch marked, and accuracy in a second panel for classification.

    The loss axis is logarithmic when the (positive) losses span more than two
    decades, so the tail of a long run is not a flat line at zero."""
    fig, scale = _figure(width, height)
    epochs = [int(e) for e in metrics.get("epoch", [])]
    train = _series(epochs, metrics.get("train_loss"))
    val = _series(epochs, metrics.get("val_loss"))
    train_acc = _series(epochs, metrics.get("train_accuracy"))
    val_acc = _series(epochs, metrics.get("val_accuracy"))
    with_accuracy = task == "classification" and bool(train_acc[0] or val_acc[0])

    if with_accuracy:
        loss_ax, acc_ax = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    else:
        loss_ax, acc_ax = fig.subplots(1, 1), None
    fig.suptitle(title, fontsize=scale * 12)

    if not epochs:
        _empty(loss_ax, "no epochs recorded yet", scale)
        _labels(loss_ax, "epoch", "loss", scale)
        if acc_ax is not None:
            _labels(acc_ax, "epoch", "accuracy", scale)
        return _render(fig, fmt)

    loss_ax.plot(*train, color=PALETTE[0], lw=1.6 * scale, label="train loss")
    if val[0]:
        loss_ax.plot(*val, color=PALETTE[1], lw=1.6 * scale, label="validation loss")
    if _spans_decades([*train[1], *val[1]]):
        loss_ax.set_yscale("log")
    if best_epoch is not None and best_epoch in epochs:
        watched = val if val[0] else train
        _mark_best(loss_ax, watched, best_epoch, scale)
        if acc_ax is not None:
            acc_ax.axvline(best_epoch, color="0.35", ls="--", lw=1.0 * scale)
    _labels(loss_ax, None if acc_ax is not None else "epoch", "loss", scale)
    _legend(loss_ax, scale)

    if acc_ax is not None:
        if train_acc[0]:
            acc_ax.plot(*train_acc, color=PALETTE[0], lw=1.6 * scale, label="train accuracy")
        if val_acc[0]:
            acc_ax.plot(*val_acc, color=PALETTE[1], lw=1.6 * scale, label="validation accuracy")
        low = min([*train_acc[1], *val_acc[1]])
        acc_ax.set_ylim(max(0.0, math.floor(low * 10) / 10 - 0.02), 1.02)
        _labels(acc_ax, "epoch", "accuracy", scale)
        _legend(acc_ax, scale, loc="lower right")
    if len(epochs) == 1:
        loss_ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
    return _render(fig, fmt)


def decision_boundary_plot(
    grid: Mapping[str, Any],
    *,
    points: np.ndarray,
    labels: np.ndarray,
    title: str,
    feature_names: Sequence[str] = ("x₁", "x₂"),
    show_confidence: bool = True,
    fmt: Format = "png",
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
) -> bytes:
    """The class regions of API.md's decision-boundary answer filled in light colours
    (paler where the model is less sure, when ``confidence`` is given and
    ``show_confidence``), the boundaries drawn, and the dataset's ``points`` (n, 2)
    on top, coloured and shaped by their class index in ``labels``."""
    if "predictions" not in grid:
        raise PlotError("a decision-boundary plot needs a two-feature classification grid")
    xs = np.asarray(grid["x"], dtype=np.float64)
    ys = np.asarray(grid["y"], dtype=np.float64)
    classes = np.asarray(grid["predictions"], dtype=np.int64)
    class_names = [str(c) for c in grid["class_names"]]
    points = np.asarray(points, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if classes.shape != (ys.size, xs.size):
        raise PlotError(
            f"predictions must be len(y) × len(x) = {ys.size} × {xs.size}, got "
            f"{' × '.join(map(str, classes.shape))}"
        )
    if points.ndim != 2 or points.shape[1] != 2 or labels.shape != (points.shape[0],):
        raise PlotError("points must be (n, 2) with one class index per point in labels")
    if len(feature_names) != 2:
        raise PlotError("a decision-boundary plot needs exactly two feature names")

    fig, scale = _figure(width, height)
    ax = fig.subplots(1, 1)
    k = max(len(class_names), 2)
    colours = np.array([to_rgb(_colour(i)) for i in range(k)])
    strength = np.full(classes.shape, 0.45)
    confidence = grid.get("confidence")
    if show_confidence and confidence is not None:
        conf = np.array(
            [[np.nan if c is None else c for c in row] for row in confidence], dtype=np.float64
        )
        if conf.shape == classes.shape and np.isfinite(conf).all():
            floor = 1.0 / k  # the least confident a k-class prediction can be
            strength = 0.12 + 0.43 * np.clip((conf - floor) / (1.0 - floor), 0.0, 1.0)
    image = 1.0 - strength[..., None] * (1.0 - colours[np.clip(classes, 0, k - 1)])
    dx = (xs[-1] - xs[0]) / max(xs.size - 1, 1) / 2
    dy = (ys[-1] - ys[0]) / max(ys.size - 1, 1) / 2
    extent = (xs[0] - dx, xs[-1] + dx, ys[0] - dy, ys[-1] + dy)
    ax.imshow(image, extent=extent, origin="lower", aspect="auto", interpolation="nearest")
    for index, name in enumerate(class_names):
        mine = points[labels == index]
        ax.scatter(
            mine[:, 0],
            mine[:, 1],
            s=(22 if len(points) < 300 else 12) * scale**2,
            color=_colour(index),
            marker=MARKERS[index % len(MARKERS)],
            edgecolors="black",
            linewidths=0.35 * scale,
            label=name,
            zorder=3,
        )
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_title(title, fontsize=scale * 12)
    _labels(ax, feature_names[0], feature_names[1], scale)
    ax.grid(False)  # grid lines would cut through the regions
    _legend(ax, scale, title="class", framealpha=0.9, markerscale=1.6)
    return _render(fig, fmt)


def trajectories_plot(
    answer: Mapping[str, Any],
    *,
    f: Callable[[np.ndarray, np.ndarray], np.ndarray],
    window: tuple[float, float, float, float] | None = None,
    minima: Sequence[Sequence[float]] | None = None,
    title: str | None = None,
    fmt: Format = "png",
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
) -> bytes:
    """Log-spaced contour lines of ``f`` (vectorised: ``f(X, Y)`` on meshgrids) and
    each optimizer's path of API.md's trajectories answer in its own colour, the
    start and the minima (``minima``, default the answer's one ``minimum``) marked.

    ``window`` = (x_min, x_max, y_min, y_max); by default the box around the start,
    the minima and the paths, so a run-away path does not shrink the picture to a
    dot (it leaves the frame instead). Use ``SurfaceFunction`` to pass one of
    ``core.surfaces``' functions through a process pool (it pickles)."""
    trajectories = list(answer.get("trajectories", []))
    if not trajectories:
        raise PlotError("the answer has no trajectories to draw")
    if minima is None:
        minima = [answer["minimum"]] if answer.get("minimum") is not None else []
    paths = [np.asarray(t["points"], dtype=np.float64).reshape(-1, 2) for t in trajectories]
    x0, x1, y0, y1 = window or _window(paths, minima)
    if not (x0 < x1 and y0 < y1):
        raise PlotError("window must be (x_min, x_max, y_min, y_max) with min < max")

    fig, scale = _figure(width, height)
    ax = fig.subplots(1, 1)
    gx, gy = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
    with np.errstate(all="ignore"):
        z = np.asarray(f(gx, gy), dtype=np.float64)
    finite = z[np.isfinite(z)]
    if finite.size:
        shifted = z - finite.min()  # ≥ 0, so log spacing also works for the saddle
        top = float(np.nanmax(shifted[np.isfinite(shifted)]))
        positive = shifted[np.isfinite(shifted) & (shifted > 0)]
        if top > 0 and positive.size:
            low = max(float(positive.min()), top * 1e-6)
            levels = np.geomspace(low, top, 14)
            ax.contour(
                gx, gy, shifted, levels=levels, colors="0.55", linewidths=0.6 * scale, alpha=0.8
            )

    start = answer.get("start") or (paths[0][0].tolist() if paths[0].size else None)
    for index, (trajectory, path) in enumerate(zip(trajectories, paths, strict=True)):
        colour = _colour(index)
        style = LINESTYLES[(index // len(PALETTE)) % len(LINESTYLES)]
        label = optimizer_label(trajectory.get("optimizer", {}))
        if trajectory.get("diverged_at") is not None:
            label += f" (diverged at step {trajectory['diverged_at']})"
        if path.size == 0:
            ax.plot([], [], color=colour, ls=style, label=label)
            continue
        # Earlier paths wider, so a later one drawn over the same valley leaves them showing.
        wide = 1.4 + 1.6 * (len(paths) - 1 - index) / max(len(paths) - 1, 1)
        ax.plot(
            path[:, 0],
            path[:, 1],
            color=colour,
            ls=style,
            lw=wide * scale,
            label=label,
            zorder=3,
            solid_capstyle="round",
        )
        ax.plot(
            *path[-1],
            marker="o",
            ms=5 * scale,
            color=colour,
            mec="white",
            mew=0.6 * scale,
            zorder=4,
        )
    if start is not None:
        ax.plot(
            *start,
            marker="o",
            ms=8 * scale,
            color="white",
            mec="black",
            mew=1.4 * scale,
            ls="none",
            label="start",
            zorder=5,
        )
    if minima:
        m = np.asarray(minima, dtype=np.float64).reshape(-1, 2)
        ax.plot(
            m[:, 0],
            m[:, 1],
            marker="*",
            ms=13 * scale,
            color=YELLOW,
            mec="black",
            mew=0.9 * scale,
            ls="none",
            label="minimum" if len(m) == 1 else "minima",
            zorder=5,
        )
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    name = str(answer.get("function", "f"))
    ax.set_title(title or f"optimizers on {name}", fontsize=scale * 12)
    _labels(ax, "x", "y", scale)
    _placed_legend(fig, ax, scale, width)
    return _render(fig, fmt)


def experiment_plot(
    runs: Sequence[tuple[str, Mapping[str, Sequence[Any]]]],
    *,
    title: str,
    fmt: Format = "png",
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
) -> bytes:
    """One validation-loss line per run of an experiment, labelled by its parameters
    (train loss, said so in the label, for a run without validation)."""
    fig, scale = _figure(width, height)
    ax = fig.subplots(1, 1)
    ax.set_title(title, fontsize=scale * 12)
    values: list[float] = []
    drawn = 0
    for index, (label, metrics) in enumerate(runs):
        epochs = [int(e) for e in metrics.get("epoch", [])]
        series = _series(epochs, metrics.get("val_loss"))
        what = ""
        if not series[0]:
            series, what = _series(epochs, metrics.get("train_loss")), " (train loss)"
        if not series[0]:
            continue
        ax.plot(
            *series,
            color=_colour(index),
            ls=LINESTYLES[(index // len(PALETTE)) % len(LINESTYLES)],
            lw=1.4 * scale,
            label=f"{label}{what}" if drawn < MAX_LEGEND_ENTRIES else "_nolegend_",
        )
        values.extend(series[1])
        drawn += 1
    if not drawn:
        _empty(ax, "no run has recorded an epoch yet", scale)
    elif _spans_decades(values):
        ax.set_yscale("log")
    _labels(ax, "epoch", "validation loss", scale)
    if drawn > MAX_LEGEND_ENTRIES:
        ax.plot([], [], ls="none", label=f"+{drawn - MAX_LEGEND_ENTRIES} more runs")
    _placed_legend(fig, ax, scale, width)
    return _render(fig, fmt)


def optimizer_label(optimizer: Mapping[str, Any]) -> str:
    """A label like "adam lr=0.05", plus every setting that differs from a plain run of that type
    (momentum, Nesterov, penalties, a schedule), so two paths never share a label."""
    parts = [str(optimizer.get("type", "optimizer"))]
    if "learning_rate" in optimizer:
        parts.append(f"lr={optimizer['learning_rate']:g}")
    if optimizer.get("momentum"):
        parts.append(f"momentum={optimizer['momentum']:g}")
    if optimizer.get("nesterov"):
        parts.append("nesterov")
    for key in ("l1", "l2"):
        if optimizer.get(key):
            parts.append(f"{key}={optimizer[key]:g}")
    schedule = optimizer.get("schedule") or {}
    if schedule.get("type", "constant") != "constant":
        details = ",".join(f"{k}={v:g}" for k, v in schedule.items() if k != "type")
        parts.append(f"{schedule['type']}({details})")
    return " ".join(parts)


class SurfaceFunction:
    """``f(X, Y)`` from a function of one point p = (x, y) that also works on stacked
    arrays (every function of ``core.surfaces``). A plain class, so it pickles into a
    process pool when ``value`` is a module-level function."""

    def __init__(self, value: Callable[[np.ndarray], Any]) -> None:
        self.value = value

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.asarray(self.value(np.stack([x, y])), dtype=np.float64)


# ------------------------------------------------------------------------- helpers


def _figure(width: int, height: int) -> tuple[Figure, float]:
    """A figure of exactly width × height pixels, and the factor text and lines scale
    by (1 at 800 × 500). The tiny extra size keeps the canvas' ``int()`` of
    ``inches × dpi`` from rounding 29.999… down to one pixel short."""
    check_size(width, height)
    fig = Figure(
        figsize=((width + 0.01) / DPI, (height + 0.01) / DPI), dpi=DPI, layout="constrained"
    )
    FigureCanvasAgg(fig)
    scale = min(max(math.sqrt(width * height / (DEFAULT_WIDTH * DEFAULT_HEIGHT)), 0.7), 2.6)
    return fig, scale


def _render(fig: Figure, fmt: Format) -> bytes:
    buffer = io.BytesIO()
    if fmt == "png":
        fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    elif fmt == "svg":
        fig.savefig(buffer, format="svg", metadata={"Date": None})
        # Matplotlib sizes the SVG in points (72 per inch): state the requested pixels
        # instead; the viewBox keeps the drawing's own units, so it scales to fit.
        width, height = (round(v * DPI) for v in fig.get_size_inches())
        return re.sub(
            rb'width="[0-9.]+pt" height="[0-9.]+pt"',
            f'width="{width}" height="{height}"'.encode(),
            buffer.getvalue(),
            count=1,
        )
    else:
        raise PlotError(f"format must be 'png' or 'svg', got {fmt!r}")
    return buffer.getvalue()


def _series(epochs: list[int], values: Sequence[Any] | None) -> tuple[list[int], list[float]]:
    """The (epoch, value) pairs whose value is a finite number (JSON's nulls dropped)."""
    if not values:
        return [], []
    pairs = [
        (e, float(v))
        for e, v in zip(epochs, values, strict=False)
        if v is not None and math.isfinite(float(v))
    ]
    return [e for e, _ in pairs], [v for _, v in pairs]


def _spans_decades(values: Sequence[float], decades: float = 2.0) -> bool:
    positive = [v for v in values if v > 0]
    return (
        len(positive) == len(values)
        and bool(positive)
        and (max(positive) / min(positive) > 10**decades)
    )


def _mark_best(ax: Axes, series: tuple[list[int], list[float]], best: int, scale: float) -> None:
    value = series[1][series[0].index(best)] if best in series[0] else None
    ax.axvline(best, color="0.35", ls="--", lw=1.0 * scale)
    if value is not None:
        ax.plot(
            [best],
            [value],
            marker="o",
            ms=7 * scale,
            color=PALETTE[3],
            mec="black",
            mew=0.8 * scale,
            ls="none",
            label=f"best epoch ({best})",
            zorder=4,
        )
    else:
        ax.add_line(Line2D([], [], color="0.35", ls="--", label=f"best epoch ({best})"))


def _labels(ax: Axes, xlabel: str | None, ylabel: str, scale: float) -> None:
    if xlabel == "epoch":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=scale * 10)
    ax.set_ylabel(ylabel, fontsize=scale * 10)
    ax.tick_params(labelsize=scale * 8.5, width=0.8 * scale, length=3.5 * scale)
    ax.grid(True, color="0.9", lw=0.6 * scale)
    ax.set_axisbelow(True)


def _legend(ax: Axes, scale: float, **options: Any) -> None:
    handles, _ = ax.get_legend_handles_labels()
    if len(handles) > 1:
        ax.legend(fontsize=scale * 8.5, title_fontsize=scale * 9, **options)


def _placed_legend(fig: Figure, ax: Axes, scale: float, width: int) -> None:
    """A legend that never hides the plot: inside the axes for a few entries on a
    wide figure, beside it for many, below it on a narrow figure; labels too long for
    the room they get are shortened with "…"."""
    handles, labels = ax.get_legend_handles_labels()
    if len(handles) < 2:
        return
    count = len(handles)
    font = scale * (8 if count > 6 else 8.5)
    char_px = 0.6 * font * DPI / 72  # a generous average glyph width
    if width < 500:
        ncols = 2 if count > 4 else 1
        room = 0.95 * width / ncols - 5 * font * DPI / 72  # minus handle and gaps
        where = {"loc": "outside lower center", "ncols": ncols}
    elif count > 6:
        ncols = 1 if count <= 16 else 2
        room = 0.42 * width / ncols - 5 * font * DPI / 72
        where = {"loc": "outside right upper", "ncols": ncols}
    else:
        ax.legend(handles, labels, fontsize=font, loc="best", framealpha=0.9)
        return
    labels = [_shorten(label, max(int(room / char_px), 8)) for label in labels]
    fig.legend(handles, labels, fontsize=font, frameon=False, **where)


def _shorten(text: str, limit: int) -> str:
    """Cut in the middle: labels of one grid differ at either end (the first and the
    last parameter), so both ends stay."""
    if len(text) <= limit:
        return text
    head = (limit - 1) * 2 // 5
    return text[:head] + "…" + text[len(text) - (limit - 1 - head) :]


def _empty(ax: Axes, message: str, scale: float) -> None:
    ax.text(
        0.5,
        0.5,
        message,
        ha="center",
        va="center",
        transform=ax.transAxes,
        fontsize=scale * 11,
        color="0.4",
    )


def _colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _window(
    paths: list[np.ndarray], minima: Sequence[Sequence[float]]
) -> tuple[float, float, float, float]:
    """The box of the start and minima, widened to hold the paths up to 4× its size."""
    anchors = [p[0] for p in paths if p.size] + [np.asarray(m, dtype=np.float64) for m in minima]
    base = np.array(anchors).reshape(-1, 2)
    low, high = base.min(axis=0), base.max(axis=0)
    centre, half = (low + high) / 2, np.maximum((high - low) / 2, 0.5)
    every = np.concatenate([base, *[p for p in paths if p.size]])
    low = np.maximum(every.min(axis=0), centre - 4 * half)
    high = np.minimum(every.max(axis=0), centre + 4 * half)
    pad = np.maximum((high - low) * 0.08, 0.25)
    return (
        float(low[0] - pad[0]),
        float(high[0] + pad[0]),
        float(low[1] - pad[1]),
        float(high[1] + pad[1]),
    )
