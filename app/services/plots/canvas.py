"""Figures, rendering and the axes furniture every plot shares.

Each plot builds its own ``Figure`` and draws it with ``FigureCanvasAgg`` (the
object-oriented API): no pyplot, no global figure state, no ``rcParams`` changes,
so any number of threads can render at once. Font sizes are passed to every text
call and scale with the figure, so a 200 × 200 thumbnail and a 3000 × 2000 poster
both read well. A PNG is exactly ``width`` × ``height`` pixels (the figure is laid
out with constrained layout, never cropped with ``bbox_inches="tight"``).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")  # no display, ever; harmless when already set

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from app.services.plots.style import (
    DEFAULT_HEIGHT,
    DEFAULT_WIDTH,
    DPI,
    Format,
    PlotError,
    check_size,
)


def figure(width: int, height: int) -> tuple[Figure, float]:
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


def render(fig: Figure, fmt: Format) -> bytes:
    """The figure as PNG or SVG bytes, with no timestamp in them, so the same data always
    gives the same bytes (the plot cache and ETags rely on it)."""
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


def series(epochs: list[int], values: Sequence[Any] | None) -> tuple[list[int], list[float]]:
    """The (epoch, value) pairs whose value is a finite number (JSON's nulls dropped)."""
    if not values:
        return [], []
    pairs = [
        (e, float(v))
        for e, v in zip(epochs, values, strict=False)
        if v is not None and math.isfinite(float(v))
    ]
    return [e for e, _ in pairs], [v for _, v in pairs]


def spans_decades(values: Sequence[float], decades: float = 2.0) -> bool:
    """Whether a log axis reads better: every value positive and max/min over 10**decades."""
    positive = [v for v in values if v > 0]
    return (
        len(positive) == len(values)
        and bool(positive)
        and (max(positive) / min(positive) > 10**decades)
    )


def axis_labels(ax: Axes, xlabel: str | None, ylabel: str, scale: float) -> None:
    """Axis titles, ticks (whole numbers on an epoch axis) and a light grid, all scaled."""
    if xlabel == "epoch":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=scale * 10)
    ax.set_ylabel(ylabel, fontsize=scale * 10)
    ax.tick_params(labelsize=scale * 8.5, width=0.8 * scale, length=3.5 * scale)
    ax.grid(True, color="0.9", lw=0.6 * scale)
    ax.set_axisbelow(True)


def legend(ax: Axes, scale: float, **options: Any) -> None:
    """A scaled legend inside the axes, only when there is more than one line to tell apart."""
    handles, _ = ax.get_legend_handles_labels()
    if len(handles) > 1:
        ax.legend(fontsize=scale * 8.5, title_fontsize=scale * 9, **options)


def placed_legend(fig: Figure, ax: Axes, scale: float, width: int) -> None:
    """A legend that never hides the plot: inside the axes for a few entries on a
    wide figure, beside it for many, below it on a narrow figure; labels too long for
    the room they get are shortened with "…"."""
    handles, labels = ax.get_legend_handles_labels()
    if len(handles) < 2:
        return
    count = len(handles)
    font = scale * (8 if count > 6 else 8.5)
    char_px = 0.6 * font * DPI / 72  # a generous average glyph width
    loc: Literal["outside lower center", "outside right upper"]
    if width < 500:
        ncols = 2 if count > 4 else 1
        room = 0.95 * width / ncols - 5 * font * DPI / 72  # minus handle and gaps
        loc = "outside lower center"
    elif count > 6:
        ncols = 1 if count <= 16 else 2
        room = 0.42 * width / ncols - 5 * font * DPI / 72
        loc = "outside right upper"
    else:
        ax.legend(handles, labels, fontsize=font, loc="best", framealpha=0.9)
        return
    labels = [_shorten(label, max(int(room / char_px), 8)) for label in labels]
    fig.legend(handles, labels, fontsize=font, frameon=False, loc=loc, ncols=ncols)


def _shorten(text: str, limit: int) -> str:
    """Cut in the middle: labels of one grid differ at either end (the first and the
    last parameter), so both ends stay."""
    if len(text) <= limit:
        return text
    head = (limit - 1) * 2 // 5
    return text[:head] + "…" + text[len(text) - (limit - 1 - head) :]


def empty(ax: Axes, message: str, scale: float) -> None:
    """Say why the axes are blank (a queued run), instead of drawing an empty frame."""
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
