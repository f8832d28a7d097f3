"""API.md-shaped answers for the contract tests (fields as the contract names them)."""

from __future__ import annotations

from typing import Any

SPEC: dict[str, Any] = {
    "name": "adam on iris",
    "dataset": "iris",
    "model": {
        "layers": [{"units": 16, "activation": "relu"}, {"units": 3, "activation": "softmax"}],
        "init": "auto",
    },
    "loss": "cross_entropy",
    "optimizer": {
        "type": "adam",
        "learning_rate": 0.01,
        "beta1": 0.9,
        "beta2": 0.999,
        "epsilon": 1e-7,
        "l1": 0.0,
        "l2": 0.0,
        "schedule": {"type": "constant"},
    },
    "training": {
        "epochs": 200,
        "batch_size": 16,
        "shuffle": True,
        "seed": 0,
        "validation_split": 0.2,
        "standardize": True,
        "early_stopping": None,
    },
    "dtype": "float64",
    "initial_weights": None,
}


def run(run_id: str = "run_1", status: str = "succeeded", **changes: Any) -> dict[str, Any]:
    document = {
        "id": run_id,
        "name": "adam on iris",
        "status": status,
        "spec": SPEC,
        "dataset": "iris",
        "n_parameters": 131,
        "created_at": "2026-12-01T19:00:00Z",
        "started_at": "2026-12-01T19:00:01Z",
        "finished_at": "2026-12-01T19:00:03Z"
        if status in ("succeeded", "failed", "cancelled")
        else None,
        "progress": {"epoch": 200, "epochs": 200, "step": 1600},
        "metrics": {
            "train_loss": 0.05,
            "val_loss": 0.09,
            "train_accuracy": 0.98,
            "val_accuracy": 0.967,
            "learning_rate": 0.01,
        },
        "best_epoch": 120,
        "stop_reason": "completed" if status == "succeeded" else None,
        "error": None,
        "owner": "alice",
        "experiment_id": None,
        "tags": {"team": "red"},
        "best_metrics": {
            "train_loss": 0.06,
            "val_loss": 0.071,
            "train_accuracy": 0.97,
            "val_accuracy": 0.983,
            "learning_rate": 0.01,
        },
    }
    document.update(changes)
    return document


def experiment(status: str = "finished", run_status: str = "succeeded") -> dict[str, Any]:
    def entry(index: int, optimizer: str, seed: int, val_loss: float) -> dict[str, Any]:
        return {
            "id": f"run_{index}",
            "params": {"optimizer": {"type": optimizer}, "training.seed": seed},
            "status": run_status,
            "best_epoch": 40 + index,
            "best_metrics": {
                "train_loss": val_loss / 2,
                "val_loss": val_loss,
                "train_accuracy": 0.9,
                "val_accuracy": 0.95,
                "learning_rate": 0.01,
            },
        }

    return {
        "id": "exp_1",
        "name": "optimizers on moons",
        "status": status,
        "created_at": "2026-12-01T19:00:00Z",
        "base": SPEC,
        "grid": {"optimizer": [{"type": "sgd"}, {"type": "adam"}], "training.seed": [0, 1]},
        "runs": [
            entry(1, "sgd", 0, 0.30),
            entry(2, "sgd", 1, 0.32),
            entry(3, "adam", 0, 0.11),
            entry(4, "adam", 1, 0.13),
        ],
        "summary": [
            {
                "params": {"optimizer": {"type": "sgd"}},
                "n": 2,
                "val_loss": {"mean": 0.31, "std": 0.01414, "min": 0.30, "max": 0.32},
                "val_accuracy": {"mean": 0.95, "std": 0.0, "min": 0.95, "max": 0.95},
            },
            {
                "params": {"optimizer": {"type": "adam"}},
                "n": 2,
                "val_loss": {"mean": 0.12, "std": 0.01414, "min": 0.11, "max": 0.13},
                "val_accuracy": {"mean": 0.95, "std": 0.0, "min": 0.95, "max": 0.95},
            },
        ],
        "best": {"run_id": "run_3", "metric": "val_loss", "value": 0.11}
        if status == "finished"
        else None,
    }


def model() -> dict[str, Any]:
    return {
        "name": "iris-classifier",
        "description": "the lab's iris model",
        "created_at": "2026-12-01T19:00:00Z",
        "latest_version": 2,
        "versions": [
            {
                "version": 1,
                "run_id": "run_1",
                "epoch": None,
                "created_at": "2026-12-01T19:01:00Z",
                "metrics": {"val_loss": 0.2, "val_accuracy": 0.9},
            },
            {
                "version": 2,
                "run_id": "run_2",
                "epoch": 50,
                "created_at": "2026-12-01T19:02:00Z",
                "metrics": {"val_loss": 0.07, "val_accuracy": 0.983},
            },
        ],
        "aliases": {"production": 2, "staging": 1},
    }


IRIS = {
    "id": "iris",
    "name": "iris",
    "task": "classification",
    "n_samples": 150,
    "n_features": 4,
    "n_outputs": 3,
    "class_names": ["setosa", "versicolor", "virginica"],
    "feature_names": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
    "builtin": True,
    "created_at": "2026-01-01T00:00:00Z",
}

PREDICTION = {
    "outputs": [[0.97, 0.02, 0.01], [0.01, 0.1, 0.89]],
    "predictions": ["setosa", "virginica"],
}
