"""Server-side plots (API.md "Plots"): pure functions from the API's JSON shapes to bytes.

One module per kind of plot (``loss``, ``boundary``, ``trajectories``, ``experiment``),
the shared figure and legend code in ``canvas``, sizes, palette and ``PlotError`` in
``style``. Callers import from here (``from app.services import plots``); the functions
keep their own module path, which is what a process pool pickles them by.
"""

from __future__ import annotations

from app.services.plots.boundary import decision_boundary_plot
from app.services.plots.experiment import experiment_plot
from app.services.plots.loss import loss_plot
from app.services.plots.style import (
    DEFAULT_HEIGHT,
    DEFAULT_WIDTH,
    DPI,
    MAX_SIZE,
    MIN_SIZE,
    Format,
    PlotError,
    check_size,
    media_type,
)
from app.services.plots.trajectories import SurfaceFunction, optimizer_label, trajectories_plot

__all__ = [
    "DEFAULT_HEIGHT",
    "DEFAULT_WIDTH",
    "DPI",
    "MAX_SIZE",
    "MIN_SIZE",
    "Format",
    "PlotError",
    "SurfaceFunction",
    "check_size",
    "decision_boundary_plot",
    "experiment_plot",
    "loss_plot",
    "media_type",
    "optimizer_label",
    "trajectories_plot",
]
