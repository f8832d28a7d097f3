"""The activation functions of annlab's engine and the derivatives training uses.

There is no HTTP endpoint for these curves (they do not depend on a run), so the
figure is drawn from ``core.activations`` directly: each function's own ``forward``
and ``backward`` (the same calls ``core.network.Network`` makes), on one column of
net values. ``step`` shows derivative 1, the perceptron learning rule.

    .venv/bin/python docs/lecture_activations.py docs/img/lecture/activations.png
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")

import numpy as np
from matplotlib.figure import Figure

from core.activations import Scratch, get_activation

#: Okabe–Ito, as the server's plots.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000")
NAMES = ("step", "sigmoid", "tanh", "arctan", "relu", "leaky_relu", "linear")


def curves(name: str, net: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """f(net) and the f′ that backward applies (dvalues = 1), by the engine's code."""
    activation = get_activation(name)
    z = net.reshape(-1, 1).copy()
    scratch = Scratch.like(z)
    y = activation.forward(z, np.empty_like(z), scratch).copy()
    derivative = activation.backward(np.ones_like(z), z, y, scratch)
    return y[:, 0], derivative[:, 0].copy()


def main(path: str) -> None:
    net = np.linspace(-4.0, 4.0, 801)
    fig = Figure(figsize=(10, 5), dpi=100, layout="constrained")
    axes = fig.subplots(2, 4, sharex=True).ravel()
    for ax, name in zip(axes, NAMES, strict=False):
        y, derivative = curves(name, net)
        ax.plot(net, y, color=COLOURS[0], lw=2, label="f(net)")
        ax.plot(net, derivative, color=COLOURS[3], lw=1.6, ls="--", label="f′(net) in backward")
        ax.set_title(name, fontsize=11)
        ax.axhline(0, color="0.6", lw=0.8)
        ax.axvline(0, color="0.6", lw=0.8)
        ax.grid(alpha=0.3)
        ax.set_xlabel("net", fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    axes[-1].axis("off")
    axes[-1].legend(handles, labels, loc="center", fontsize=10, frameon=False)
    axes[-1].text(
        0.5,
        0.15,
        "step: f′ = 1, the\nperceptron learning rule",
        ha="center",
        fontsize=9,
        transform=axes[-1].transAxes,
    )
    fig.suptitle("annlab's activation functions and the derivative training applies")
    fig.savefig(path, format="png")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "activations.png")
