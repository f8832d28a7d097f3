"""Bodies of the experiment and model-registry routes (API.md "Experiments", "Models")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from app.schemas import EpochMetricsOut, MetricsOut, RunStatusField
from core.specs import NAME_MAX_LENGTH

#: Model names (and aliases): lower case, digits, ``.``, ``_``, ``-``; 1-64 characters.
MODEL_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"

ModelName = Annotated[
    str, Field(pattern=MODEL_NAME_PATTERN, description="`^[a-z0-9][a-z0-9._-]{0,63}$`.")
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------- experiments


class ExperimentIn(Strict):
    name: str = Field(
        min_length=1, max_length=NAME_MAX_LENGTH, description="The experiment's name."
    )
    base: dict[str, Any] = Field(description="A RunSpec: what every run shares.")
    grid: dict[str, list[Any]] = Field(
        description="Dotted paths into the spec, each with a non-empty list of values; the "
        "runs are the Cartesian product (the last key varying fastest)."
    )


class ExperimentRunOut(BaseModel):
    id: str = Field(description="Run id.")
    params: dict[str, Any] = Field(description="{path: value} of this run's combination.")
    status: RunStatusField = Field(description="The run's status.")
    best_epoch: int | None = Field(
        description="Epoch of the lowest val_loss (train_loss without validation)."
    )
    best_metrics: EpochMetricsOut | None = Field(description="The metrics of best_epoch.")


class StatsOut(BaseModel):
    mean: float = Field(description="Mean over the group's runs.")
    std: float | None = Field(description="ddof = 1; null for one run.")
    min: float = Field(description="Smallest value.")
    max: float = Field(description="Largest value.")


class SummaryRowOut(BaseModel):
    params: dict[str, Any] = Field(description="The group's params without training.seed.")
    n: int = Field(description="Runs of the group with best metrics.")
    val_loss: StatsOut | None = Field(
        description="val_loss at each run's best epoch: mean, std, min, max."
    )
    val_accuracy: StatsOut | None = Field(
        description="val_accuracy at each run's best epoch (null for regression)."
    )


class BestOut(BaseModel):
    run_id: str = Field(description="The best run.")
    metric: str = Field(description="`val_loss`, or `train_loss` when no run has validation.")
    value: float = Field(description="Its metric at its best epoch.")


class ExperimentOut(BaseModel):
    id: str = Field(description="Experiment id.")
    name: str = Field(description="The experiment's name.")
    status: str = Field(description="queued | running | finished | cancelled, from its runs.")
    created_at: datetime = Field(description="When it was created (UTC).")
    base: dict[str, Any] = Field(description="The base spec, as sent.")
    grid: dict[str, list[Any]] = Field(description="The grid, as sent.")
    runs: list[ExperimentRunOut] = Field(
        description="Its runs, in the grid's order (last key fastest)."
    )
    summary: list[SummaryRowOut] = Field(
        description="One row per group of runs that differ only in training.seed."
    )
    best: BestOut | None = Field(
        description="The run with the lowest val_loss at its best epoch; null before any."
    )


class ExperimentList(BaseModel):
    items: list[ExperimentOut] = Field(description="Experiments, newest first.")
    total: int = Field(description="How many there are in all.")


class ExperimentMetrics(BaseModel):
    runs: dict[str, MetricsOut] = Field(description="{run_id: the run's metrics lists}.")


# -------------------------------------------------------------------- models


class ModelIn(Strict):
    name: ModelName = Field(description="`^[a-z0-9][a-z0-9._-]{0,63}$`, unique on the server.")
    description: str | None = Field(None, max_length=10_000, description="What the model is for.")


class VersionIn(Strict):
    run_id: str = Field(
        max_length=200, description="A run of yours: its final model, or a snapshot (epoch)."
    )
    epoch: int | None = Field(
        None, ge=1, le=2**31 - 1, description="A snapshot's epoch; omitted: the final model."
    )


class AliasIn(Strict):
    version: int = Field(ge=1, le=2**31 - 1, description="The version the alias points at.")


class VersionOut(BaseModel):
    version: int = Field(description="1, 2, 3, …, never reused.")
    run_id: str = Field(description="The run the model comes from.")
    epoch: int | None = Field(description="The snapshot's epoch; null: the run's final model.")
    created_at: datetime = Field(description="When the version was added (UTC).")
    metrics: EpochMetricsOut | None = Field(description="The metrics of the model's epoch.")


class ModelOut(BaseModel):
    name: str = Field(description="The model's name.")
    description: str | None = Field(description="What the model is for.")
    created_at: datetime = Field(description="When it was created (UTC).")
    latest_version: int | None = Field(description="The highest version; null before the first.")
    versions: list[VersionOut] = Field(description="Its versions, oldest first.")
    aliases: dict[str, int] = Field(description="{alias: version}.")


class ModelList(BaseModel):
    items: list[ModelOut] = Field(description="Models, by name.")
    total: int = Field(description="How many there are in all.")
