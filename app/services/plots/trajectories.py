"""Optimizers' paths over one of ``core.surfaces``' functions."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from app.services.plots.canvas import axis_labels, figure, placed_legend, render
from app.services.plots.style import (
    DEFAULT_HEIGHT,
    DEFAULT_WIDTH,
    YELLOW,
    Format,
    PlotError,
    colour,
    linestyle,
)
from core.surfaces import evaluate as evaluate_surface


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

    fig, scale = figure(width, height)
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
        line_colour = colour(index)
        style = linestyle(index)
        label = optimizer_label(trajectory.get("optimizer", {}))
        if trajectory.get("diverged_at") is not None:
            label += f" (diverged at step {trajectory['diverged_at']})"
        if path.size == 0:
            ax.plot([], [], color=line_colour, ls=style, label=label)
            continue
        # Earlier paths wider, so a later one drawn over the same valley leaves them showing.
        wide = 1.4 + 1.6 * (len(paths) - 1 - index) / max(len(paths) - 1, 1)
        ax.plot(
            path[:, 0],
            path[:, 1],
            color=line_colour,
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
            color=line_colour,
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
    axis_labels(ax, "x", "y", scale)
    placed_legend(fig, ax, scale, width)
    return render(fig, fmt)


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
    """``f(X, Y)`` of one of ``core.surfaces``' functions, by name, on meshgrids. A
    plain class holding only the name, so it pickles into a process pool."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return evaluate_surface(self.name, x, y)


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
