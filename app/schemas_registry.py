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
    id: str
    params: dict[str, Any] = Field(description="{path: value} of this run's combination.")
    status: RunStatusField
    best_epoch: int | None
    best_metrics: EpochMetricsOut | None


class StatsOut(BaseModel):
    mean: float
    std: float | None = Field(description="ddof = 1; null for one run.")
    min: float
    max: float


class SummaryRowOut(BaseModel):
    params: dict[str, Any] = Field(description="The group's params without training.seed.")
    n: int = Field(description="Runs of the group with best metrics.")
    val_loss: StatsOut | None
    val_accuracy: StatsOut | None


class BestOut(BaseModel):
    run_id: str
    metric: str = Field(description="`val_loss`, or `train_loss` when no run has validation.")
    value: float


class ExperimentOut(BaseModel):
    id: str
    name: str
    status: str = Field(description="queued | running | finished | cancelled, from its runs.")
    created_at: datetime
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    runs: list[ExperimentRunOut]
    summary: list[SummaryRowOut]
    best: BestOut | None


class ExperimentList(BaseModel):
    items: list[ExperimentOut]
    total: int


class ExperimentMetrics(BaseModel):
    runs: dict[str, MetricsOut] = Field(description="{run_id: the run's metrics lists}.")


# -------------------------------------------------------------------- models


class ModelIn(Strict):
    name: ModelName
    description: str | None = Field(None, max_length=10_000)


class VersionIn(Strict):
    run_id: str = Field(max_length=200)
    epoch: int | None = Field(
        None, ge=1, le=2**31 - 1, description="A snapshot's epoch; omitted: the final model."
    )


class AliasIn(Strict):
    version: int = Field(ge=1, le=2**31 - 1)


class VersionOut(BaseModel):
    version: int
    run_id: str
    epoch: int | None = Field(description="The snapshot's epoch; null: the run's final model.")
    created_at: datetime
    metrics: EpochMetricsOut | None = Field(description="The metrics of the model's epoch.")


class ModelOut(BaseModel):
    name: str
    description: str | None
    created_at: datetime
    latest_version: int | None
    versions: list[VersionOut]
    aliases: dict[str, int]


class ModelList(BaseModel):
    items: list[ModelOut]
    total: int
