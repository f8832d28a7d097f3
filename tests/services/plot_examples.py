"""Real data for the plot tests and the docs' example images: runs trained with
``core.training.train`` on built-in sets, trajectories from ``core.surfaces``.

``python -m tests.services.plot_examples OUTDIR`` writes the example PNGs (docs/img/plots/)
and prints the render time of each kind at 800 × 500."""

from __future__ import annotations

import io
import sys
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from app.services import plots
from core.datasets import load_builtin
from core.specs import RunSpec, TrajectoryRequest, check_against_dataset
from core.surfaces import SURFACES, run_trajectories
from core.training import TrainResult, train


def metrics_lists(result: TrainResult) -> dict[str, list[Any]]:
    """``GET /runs/{id}/metrics``'s shape from a training history."""
    keys = ("epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "learning_rate")
    return {k: [getattr(m, k) for m in result.history] for k in keys}


def train_on(dataset: str, **overrides: Any) -> tuple[TrainResult, Any]:
    data = load_builtin(dataset)
    body: dict[str, Any] = {
        "dataset": dataset,
        "model": {
            "layers": [
                {"units": 16, "activation": "tanh"},
                {"units": len(data.class_names or [1]), "activation": "softmax"},
            ]
        },
        "optimizer": {"type": "adam", "learning_rate": 0.01},
        "training": {"epochs": 150, "batch_size": 32, "seed": 0, "validation_split": 0.2},
        "dtype": "float64",
    }
    body.update(overrides)
    spec = check_against_dataset(RunSpec.model_validate(body), data.shape())
    return train(spec, data), data


@cache
def moons_run() -> tuple[TrainResult, Any]:
    return train_on(
        "moons", training={"epochs": 300, "batch_size": 32, "seed": 0, "validation_split": 0.2}
    )


@cache
def iris_run() -> tuple[TrainResult, Any]:
    return train_on(
        "iris",
        training={
            "epochs": 200,
            "batch_size": 16,
            "seed": 0,
            "validation_split": 0.2,
            "early_stopping": {"patience": 30, "restore_best": True},
        },
    )


def boundary_grid(result: TrainResult, features: np.ndarray, n: int = 100) -> dict[str, Any]:
    """API.md's decision-boundary answer, computed as the service does: the padded data
    range, ``predictions[j][i]`` the class at (x[i], y[j]), ``confidence`` its probability."""
    low, high = features.min(axis=0), features.max(axis=0)
    pad = (high - low) * 0.1
    xs = np.linspace(low[0] - pad[0], high[0] + pad[0], n)
    ys = np.linspace(low[1] - pad[1], high[1] + pad[1], n)
    gx, gy = np.meshgrid(xs, ys)
    outputs, _ = result.model.predict(np.column_stack([gx.ravel(), gy.ravel()]))
    return {
        "epoch": result.epochs_run,
        "x": xs.tolist(),
        "y": ys.tolist(),
        "class_names": result.model.class_names,
        "predictions": outputs.argmax(axis=1).reshape(n, n).tolist(),
        "confidence": outputs.max(axis=1).reshape(n, n).tolist(),
    }


def trajectories_answer(function: str = "rosenbrock") -> dict[str, Any]:
    request = TrajectoryRequest.model_validate(
        {
            "function": function,
            "start": [-1.5, 2.0],
            "steps": 500,
            "optimizers": [
                {"type": "sgd", "learning_rate": 0.001, "momentum": 0.9},
                {"type": "sgd", "learning_rate": 0.0005},
                {"type": "adagrad", "learning_rate": 0.5},
                {"type": "rmsprop", "learning_rate": 0.01},
                {"type": "adam", "learning_rate": 0.05},
            ],
        }
    )
    return run_trajectories(request)


def experiment_runs() -> list[tuple[str, dict[str, list[Any]]]]:
    runs = []
    for optimizer in (
        {"type": "sgd", "learning_rate": 0.1},
        {"type": "sgd", "learning_rate": 0.1, "momentum": 0.9},
        {"type": "adam", "learning_rate": 0.01},
    ):
        for seed in (0, 1):
            result, _ = train_on(
                "moons",
                optimizer=optimizer,
                training={"epochs": 100, "batch_size": 32, "seed": seed, "validation_split": 0.2},
            )
            label = f"optimizer={plots.optimizer_label(optimizer)}, training.seed={seed}"
            runs.append((label, metrics_lists(result)))
    return runs


def examples(fmt: plots.Format = "png", width: int = 800, height: int = 500) -> dict[str, bytes]:
    """One plot of each kind, from real data."""
    moons, moons_data = moons_run()
    iris, _ = iris_run()
    answer = trajectories_answer()
    surface = SURFACES["rosenbrock"]
    size: dict[str, Any] = {"fmt": fmt, "width": width, "height": height}
    return {
        "loss-iris": plots.loss_plot(
            metrics_lists(iris), title="adam on iris", best_epoch=iris.best_epoch, **size
        ),
        "decision-boundary-moons": plots.decision_boundary_plot(
            boundary_grid(moons, moons_data.features),
            points=moons_data.features,
            labels=moons_data.targets,
            title=f"moons, epoch {moons.epochs_run}",
            feature_names=moons_data.feature_names,
            **size,
        ),
        "trajectories-rosenbrock": plots.trajectories_plot(
            answer, f=plots.SurfaceFunction(surface.value), **size
        ),
        "experiment-moons": plots.experiment_plot(
            experiment_runs(), title="optimizers on moons", **size
        ),
    }


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    from PIL import Image  # matplotlib's own dependency

    for name, png in examples().items():
        # Docs copies only: a 256-colour palette keeps each file small.
        image = Image.open(io.BytesIO(png)).convert("RGB").quantize(256)
        image.save(out / f"{name}.png", optimize=True)
        png = (out / f"{name}.png").read_bytes()
        print(f"{name}.png {len(png) / 1024:.1f} KiB")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img/plots"))
