"""The validation losses of an experiment's runs, one line each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.services.plots.canvas import (
    axis_labels,
    empty,
    figure,
    placed_legend,
    render,
    series,
    spans_decades,
)
from app.services.plots.style import (
    DEFAULT_HEIGHT,
    DEFAULT_WIDTH,
    MAX_LEGEND_ENTRIES,
    Format,
    colour,
    linestyle,
)


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
    fig, scale = figure(width, height)
    ax = fig.subplots(1, 1)
    ax.set_title(title, fontsize=scale * 12)
    values: list[float] = []
    drawn = 0
    for index, (label, metrics) in enumerate(runs):
        epochs = [int(e) for e in metrics.get("epoch", [])]
        curve = series(epochs, metrics.get("val_loss"))
        what = ""
        if not curve[0]:
            curve, what = series(epochs, metrics.get("train_loss")), " (train loss)"
        if not curve[0]:
            continue
        ax.plot(
            *curve,
            color=colour(index),
            ls=linestyle(index),
            lw=1.4 * scale,
            label=f"{label}{what}" if drawn < MAX_LEGEND_ENTRIES else "_nolegend_",
        )
        values.extend(curve[1])
        drawn += 1
    if not drawn:
        empty(ax, "no run has recorded an epoch yet", scale)
    elif spans_decades(values):
        ax.set_yscale("log")
    axis_labels(ax, "epoch", "validation loss", scale)
    if drawn > MAX_LEGEND_ENTRIES:
        ax.plot([], [], ls="none", label=f"+{drawn - MAX_LEGEND_ENTRIES} more runs")
    placed_legend(fig, ax, scale, width)
    return render(fig, fmt)
