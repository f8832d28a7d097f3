"""The loss curves of one run (``GET /runs/{id}/plots/loss``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from app.services.plots.canvas import (
    axis_labels,
    empty,
    figure,
    legend,
    render,
    series,
    spans_decades,
)
from app.services.plots.style import DEFAULT_HEIGHT, DEFAULT_WIDTH, PALETTE, Format


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
    fig, scale = figure(width, height)
    epochs = [int(e) for e in metrics.get("epoch", [])]
    train = series(epochs, metrics.get("train_loss"))
    val = series(epochs, metrics.get("val_loss"))
    train_acc = series(epochs, metrics.get("train_accuracy"))
    val_acc = series(epochs, metrics.get("val_accuracy"))
    with_accuracy = task == "classification" and bool(train_acc[0] or val_acc[0])

    if with_accuracy:
        loss_ax, acc_ax = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    else:
        loss_ax, acc_ax = fig.subplots(1, 1), None
    fig.suptitle(title, fontsize=scale * 12)

    if not epochs:
        empty(loss_ax, "no epochs recorded yet", scale)
        axis_labels(loss_ax, "epoch", "loss", scale)
        if acc_ax is not None:
            axis_labels(acc_ax, "epoch", "accuracy", scale)
        return render(fig, fmt)

    loss_ax.plot(*train, color=PALETTE[0], lw=1.6 * scale, label="train loss")
    if val[0]:
        loss_ax.plot(*val, color=PALETTE[1], lw=1.6 * scale, label="validation loss")
    if spans_decades([*train[1], *val[1]]):
        loss_ax.set_yscale("log")
    if best_epoch is not None and best_epoch in epochs:
        watched = val if val[0] else train
        _mark_best(loss_ax, watched, best_epoch, scale)
        if acc_ax is not None:
            acc_ax.axvline(best_epoch, color="0.35", ls="--", lw=1.0 * scale)
    axis_labels(loss_ax, None if acc_ax is not None else "epoch", "loss", scale)
    legend(loss_ax, scale)

    if acc_ax is not None:
        if train_acc[0]:
            acc_ax.plot(*train_acc, color=PALETTE[0], lw=1.6 * scale, label="train accuracy")
        if val_acc[0]:
            acc_ax.plot(*val_acc, color=PALETTE[1], lw=1.6 * scale, label="validation accuracy")
        low = min([*train_acc[1], *val_acc[1]])
        acc_ax.set_ylim(max(0.0, math.floor(low * 10) / 10 - 0.02), 1.02)
        axis_labels(acc_ax, "epoch", "accuracy", scale)
        legend(acc_ax, scale, loc="lower right")
    if len(epochs) == 1:
        loss_ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
    return render(fig, fmt)


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
