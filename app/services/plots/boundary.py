"""A two-feature classifier's regions with the data on top."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.colors import to_rgb

from app.services.plots.canvas import axis_labels, figure, legend, render
from app.services.plots.style import (
    DEFAULT_HEIGHT,
    DEFAULT_WIDTH,
    MARKERS,
    Format,
    PlotError,
    colour,
)


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

    fig, scale = figure(width, height)
    ax = fig.subplots(1, 1)
    k = max(len(class_names), 2)
    colours = np.array([to_rgb(colour(i)) for i in range(k)])
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
            color=colour(index),
            marker=MARKERS[index % len(MARKERS)],
            edgecolors="black",
            linewidths=0.35 * scale,
            label=name,
            zorder=3,
        )
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_title(title, fontsize=scale * 12)
    axis_labels(ax, feature_names[0], feature_names[1], scale)
    ax.grid(False)  # grid lines would cut through the regions
    legend(ax, scale, title="class", framealpha=0.9, markerscale=1.6)
    return render(fig, fmt)
