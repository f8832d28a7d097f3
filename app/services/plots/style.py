"""The plots' shared vocabulary: sizes, formats, the palette and the one error type.

Colours: the Okabe–Ito palette (distinguishable with every common colour-vision
deficiency), and classes also differ by marker shape. Kept free of Matplotlib so a
router can validate ``?width=&height=`` and name a media type without loading it.
"""

from __future__ import annotations

from typing import Literal

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


def colour(index: int) -> str:
    """The ``index``-th line's colour, the palette repeating."""
    return PALETTE[index % len(PALETTE)]


def linestyle(index: int) -> str:
    """The ``index``-th line's dash pattern: solid for the first round of colours, then
    dashed, …, so two lines sharing a colour still differ."""
    return LINESTYLES[(index // len(PALETTE)) % len(LINESTYLES)]
