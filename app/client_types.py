"""The answers of annlab's HTTP API (API.md) as typed objects, and its one error, for `app.client`.

Kept apart from the server's own schemas on purpose: a client must not need the
engine or the database code, and must keep working when the server adds fields.
So every model ignores nothing and forbids nothing (``extra="allow"``: a field the
server adds later is kept as an attribute) and every field API.md lists as
"added later" is optional with a neutral default.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field


class ApiError(Exception):
    """A request annlab refused (``status`` its HTTP status) or could not answer
    (``status`` None: unreachable, dropped). ``detail`` is the body's ``detail`` as sent."""

    def __init__(self, status: int | None, detail: Any) -> None:
        self.status = status
        self.detail = detail
        super().__init__(render_detail(detail))


def render_detail(detail: Any) -> str:
    """The server's message: a string as is; FastAPI's 422 list as one
    "field.path: message" line per problem (the leading ``body`` dropped)."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        lines = []
        for problem in detail:
            if not isinstance(problem, Mapping):
                lines.append(str(problem))
                continue
            loc = [str(part) for part in problem.get("loc", [])]
            if loc and loc[0] == "body":
                loc = loc[1:]
            message = str(problem.get("msg", problem))
            lines.append(f"{'.'.join(loc)}: {message}" if loc else message)
        return "\n".join(lines)
    if isinstance(detail, Mapping) and "message" in detail:  # MLflow's error shape
        return str(detail["message"])
    return str(detail)


def error_from(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return ApiError(response.status_code, text or f"HTTP {response.status_code}")
    if isinstance(body, Mapping) and "detail" in body:
        return ApiError(response.status_code, body["detail"])
    return ApiError(response.status_code, body)


#: The statuses after which a run never changes again.
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


class ApiModel(BaseModel):
    """Base of every answer: unknown fields are kept, never an error."""

    model_config = ConfigDict(extra="allow", frozen=True)


class Dataset(ApiModel):
    id: str
    name: str
    task: Literal["classification", "regression"]
    n_samples: int
    n_features: int
    n_outputs: int = 1
    class_names: list[str] | None = None
    feature_names: list[str] = Field(default_factory=list)
    builtin: bool = False
    created_at: datetime | None = None


class Progress(ApiModel):
    epoch: int = 0
    epochs: int = 0
    step: int = 0


class EpochMetrics(ApiModel):
    """One epoch's numbers; accuracy is None for regression, val_* without validation."""

    train_loss: float | None = None
    val_loss: float | None = None
    train_accuracy: float | None = None
    val_accuracy: float | None = None
    learning_rate: float | None = None


class Run(ApiModel):
    id: str
    name: str
    status: str
    spec: dict[str, Any]
    dataset: str
    n_parameters: int = 0
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: Progress = Field(default_factory=Progress)
    metrics: EpochMetrics = Field(default_factory=EpochMetrics)
    best_epoch: int | None = None
    stop_reason: str | None = None
    error: str | None = None
    # API.md "Runs: what a user relies on (additions)":
    owner: str | None = None
    experiment_id: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    best_metrics: EpochMetrics | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to finish (or None while either is unknown)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


T = TypeVar("T")


class Page(ApiModel, Generic[T]):
    """One page of a list: ``items`` and the ``total`` matching the filters."""

    items: list[T]
    total: int


class Metrics(ApiModel):
    """One list per metric, one entry per recorded epoch."""

    epoch: list[int] = Field(default_factory=list)
    train_loss: list[float | None] = Field(default_factory=list)
    val_loss: list[float | None] = Field(default_factory=list)
    train_accuracy: list[float | None] = Field(default_factory=list)
    val_accuracy: list[float | None] = Field(default_factory=list)
    learning_rate: list[float | None] = Field(default_factory=list)


class Prediction(ApiModel):
    """``outputs``: the raw network output per row; ``predictions``: class names or values."""

    outputs: list[list[float]]
    predictions: list[Any]


# ------------------------------------------------------------------- events


class ProgressEvent(ApiModel):
    """``event: progress``: one recorded epoch."""

    kind: Literal["progress"] = "progress"
    id: str | None = None
    epoch: int
    epochs: int
    metrics: EpochMetrics


class StatusEvent(ApiModel):
    """``event: status``: the run's status changed (the first event is the current one)."""

    kind: Literal["status"] = "status"
    id: str | None = None
    status: str
    stop_reason: str | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


RunEvent = ProgressEvent | StatusEvent


# -------------------------------------------------------------- experiments


class ExperimentRun(ApiModel):
    id: str
    params: dict[str, Any] = Field(default_factory=dict)
    status: str
    best_epoch: int | None = None
    best_metrics: EpochMetrics | None = None


class Spread(ApiModel):
    """Mean, std (ddof 1; None for one run), min and max of a metric over seeds."""

    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None


class SummaryRow(ApiModel):
    params: dict[str, Any] = Field(default_factory=dict)
    n: int
    val_loss: Spread | None = None
    val_accuracy: Spread | None = None


class Best(ApiModel):
    run_id: str
    metric: str
    value: float


class Experiment(ApiModel):
    id: str
    name: str
    status: str
    created_at: datetime | None = None
    base: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    runs: list[ExperimentRun] = Field(default_factory=list)
    summary: list[SummaryRow] = Field(default_factory=list)
    best: Best | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("finished", "cancelled")


# ------------------------------------------------------------------- models


class ModelVersion(ApiModel):
    version: int
    run_id: str
    epoch: int | None = None
    created_at: datetime | None = None
    metrics: dict[str, Any] | None = None


class Model(ApiModel):
    name: str
    description: str | None = None
    created_at: datetime | None = None
    latest_version: int | None = None
    versions: list[ModelVersion] = Field(default_factory=list)
    aliases: dict[str, int] = Field(default_factory=dict)
