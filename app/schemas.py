"""Response and request bodies of the API that are not run specs (those are ``core.specs``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    Strict,
    StrictFloat,
    StrictInt,
    WithJsonSchema,
)

from app.db.datasets import task_of
from app.db.tables import DatasetRow, MetricRow, RunRow
from core.datasets import BuiltinInfo
from core.loaders import MAX_FEATURES
from core.specs import NAME_MAX_LENGTH, RunSpec, StandardizeDoc, Task
from core.stopping import RunStatus, StopReason
from core.surfaces import Surface, TrajectoryResult

#: The stop reasons a run reports: every one but ``paused`` (the engine's answer to a
#: pause, after which the run is queued again, never stored).
REPORTED_STOP_REASONS = tuple(reason for reason in StopReason if reason is not StopReason.PAUSED)

#: ``core.stopping``'s enums in bodies and query strings, validated by the enum itself and
#: documented inline as a list of strings (what they are on the wire), not as schema objects.
RunStatusField = Annotated[
    RunStatus,
    PlainValidator(RunStatus),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"enum": [status.value for status in RunStatus], "type": "string"}),
]
StopReasonField = Annotated[
    StopReason,
    PlainValidator(StopReason),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"enum": [reason.value for reason in REPORTED_STOP_REASONS], "type": "string"}),
]
#: Built-in datasets have no upload time; they report the project's epoch.
BUILTIN_CREATED_AT = datetime(2025, 1, 1, tzinfo=UTC)


class Problem(BaseModel):
    detail: Any = Field(
        description="What went wrong: a message, or FastAPI's list of validation errors "
        "(each with `loc` naming the field and `msg`)."
    )


def problem(description: str) -> dict[str, Any]:
    """An error response of a route, for its ``responses=`` (OpenAPI)."""
    return {"model": Problem, "description": description}


#: The errors any route with a JSON body can answer, before its own checks.
MALFORMED_JSON = problem("Malformed or too deeply nested JSON.")
TOO_LARGE = problem("Body over ANNLAB_MAX_BODY_BYTES.")


class Health(BaseModel):
    status: str = Field(description="`ok`, or why the service is not ready.", examples=["ok"])


# ------------------------------------------------------------------------ datasets


class DatasetOut(BaseModel):
    id: str = Field(description="Dataset id: a built-in name or `ds_…` for uploads.")
    name: str = Field(description="Human-readable name.")
    task: Task = Field(description="`classification` or `regression`.")
    n_samples: int = Field(description="Rows.")
    n_features: int = Field(description="Input width (columns of features).")
    n_outputs: int = Field(description="Classes (classification) or target columns (regression).")
    class_names: list[str] | None = Field(
        description="Class names in index order; null for regression."
    )
    feature_names: list[str] = Field(description="One name per feature column.")
    builtin: bool = Field(description="Built-in sets are read-only.")
    created_at: datetime = Field(description="Upload time (UTC).")

    @classmethod
    def from_builtin(cls, dataset_id: str, info: BuiltinInfo) -> DatasetOut:
        return cls(
            id=dataset_id,
            name=dataset_id,
            task=info.task,
            n_samples=info.n_samples,
            n_features=info.n_features,
            n_outputs=info.n_outputs,
            class_names=list(info.class_names) if info.class_names is not None else None,
            feature_names=list(info.feature_names),
            builtin=True,
            created_at=BUILTIN_CREATED_AT,
        )

    @classmethod
    def from_row(cls, row: DatasetRow) -> DatasetOut:
        return cls(
            id=row.id,
            name=row.name,
            task=task_of(row),
            n_samples=row.n_samples,
            n_features=row.n_features,
            n_outputs=row.n_outputs,
            class_names=row.class_names,
            feature_names=row.feature_names,
            builtin=False,
            created_at=row.created_at,
        )


class DatasetList(BaseModel):
    items: list[DatasetOut] = Field(description="Built-ins first, then uploads, newest first.")
    total: int = Field(description="Number of items.")


Number = StrictInt | StrictFloat


#: The example of a JSON dataset upload (in the schema and the upload's OpenAPI examples).
DATASET_EXAMPLE: dict[str, Any] = {
    "name": "and gate",
    "task": "classification",
    "features": [[0, 0], [0, 1], [1, 0], [1, 1]],
    "targets": ["no", "no", "no", "yes"],
    "feature_names": ["a", "b"],
}


class DatasetCreate(BaseModel):
    """A dataset uploaded as JSON."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [DATASET_EXAMPLE]})

    name: str = Field(min_length=1, max_length=NAME_MAX_LENGTH, description="Human-readable name.")
    task: Task = Field(description="`classification` or `regression`.")
    features: list[Annotated[list[Number], Field(min_length=1, max_length=MAX_FEATURES)]] = Field(
        min_length=2, description="One row of numbers per sample (all finite), 2 or more."
    )
    targets: list[Number | str | list[Number]] = Field(
        min_length=2,
        description="One per row: class indices or names (classification), numbers or lists "
        "of numbers for several outputs (regression).",
    )
    feature_names: list[Annotated[str, Field(max_length=NAME_MAX_LENGTH)]] | None = Field(
        None, max_length=MAX_FEATURES, description="One name per feature column."
    )


# ---------------------------------------------------------------------------- runs


class Progress(BaseModel):
    epoch: int = Field(description="Epochs recorded so far.")
    epochs: int = Field(description="Epochs asked for.")
    step: int = Field(description="Optimizer steps so far.")


class EpochMetricsOut(BaseModel):
    train_loss: float | None = Field(None, description="Loss on the training rows.")
    val_loss: float | None = Field(None, description="Loss on the validation rows (null without).")
    train_accuracy: float | None = Field(
        None, description="Accuracy on the training rows (null for regression)."
    )
    val_accuracy: float | None = Field(
        None, description="Validation accuracy (null for regression or without)."
    )
    learning_rate: float | None = Field(None, description="Learning rate of the epoch's last step.")


class RunOut(BaseModel):
    id: str = Field(description="Run id.")
    name: str = Field(description="The spec's name (default '<optimizer> on <dataset>').")
    status: RunStatusField = Field(
        title="Status", description="queued → running → succeeded | failed | cancelled."
    )
    spec: RunSpec = Field(description="The normalised spec, every default filled in.")
    dataset: str = Field(description="Dataset id.")
    n_parameters: int = Field(description="Weights and biases of the network.")
    created_at: datetime = Field(description="Submission time (UTC).")
    started_at: datetime | None = Field(description="First time a worker took the run.")
    finished_at: datetime | None = Field(description="When the run reached its final status.")
    progress: Progress
    metrics: EpochMetricsOut = Field(description="Metrics of the latest recorded epoch.")
    best_epoch: int | None = Field(description="Epoch of the best validation (or training) loss.")
    stop_reason: StopReasonField | None = Field(
        title="Stop Reason", description="Why training stopped; null until it has."
    )
    error: str | None = Field(description="What went wrong, for failed runs.")

    @classmethod
    def from_row(cls, row: RunRow) -> RunOut:
        return cls(
            id=row.id,
            name=row.name,
            status=RunStatus(row.status),
            spec=RunSpec.model_validate(row.spec),
            dataset=row.dataset_id,
            n_parameters=row.n_parameters,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            progress=Progress(epoch=row.epoch, epochs=row.epochs, step=row.step),
            metrics=EpochMetricsOut(**(row.metrics or {})),
            best_epoch=row.best_epoch,
            stop_reason=StopReason(row.stop_reason) if row.stop_reason is not None else None,
            error=row.error,
        )


class RunList(BaseModel):
    items: list[RunOut] = Field(description="A page of runs, newest first.")
    total: int = Field(description="Runs matching the filters, over all pages.")


class MetricsOut(BaseModel):
    epoch: list[int] = Field(description="Recorded epochs, 1-based.")
    train_loss: list[float | None] = Field(description="Training loss per epoch.")
    val_loss: list[float | None] = Field(description="Validation loss per epoch (null without).")
    train_accuracy: list[float | None] = Field(
        description="Training accuracy per epoch (null for regression)."
    )
    val_accuracy: list[float | None] = Field(
        description="Validation accuracy per epoch (null for regression or without)."
    )
    learning_rate: list[float | None] = Field(
        description="Learning rate of each epoch's last step."
    )

    @classmethod
    def from_rows(cls, rows: list[MetricRow] | Any) -> MetricsOut:
        return cls(
            epoch=[row.epoch for row in rows],
            train_loss=[row.train_loss for row in rows],
            val_loss=[row.val_loss for row in rows],
            train_accuracy=[row.train_accuracy for row in rows],
            val_accuracy=[row.val_accuracy for row in rows],
            learning_rate=[row.learning_rate for row in rows],
        )


#: A finite number: ints accepted; booleans and numeric strings refused (as in uploads).
FiniteFloat = Annotated[float, Strict(), Field(allow_inf_nan=False)]


class PredictRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"inputs": [[5.1, 3.5, 1.4, 0.2]]}]}
    )

    inputs: list[list[FiniteFloat]] = Field(
        min_length=1, description="One row of n_features finite numbers per sample."
    )


class PredictResponse(BaseModel):
    outputs: list[list[float]] = Field(
        description="Raw network output per row (class probabilities for softmax)."
    )
    predictions: list[Any] = Field(
        description="Class names (classification) or values (regression), one per row."
    )


class LayerDocument(BaseModel):
    units: int = Field(description="Units (outputs) of the layer.")
    activation: str = Field(description="Activation applied to inputs @ weights + biases.")
    weights: list[list[float]] = Field(
        description="n_in rows × units: weights[i][j] joins input i to unit j."
    )
    biases: list[float] = Field(description="One bias per unit.")


class WeightsDocument(BaseModel):
    dtype: str = Field(description="`float32` or `float64`.")
    standardize: StandardizeDoc | None = Field(
        description="z-scoring applied before the first layer."
    )
    layers: list[LayerDocument] = Field(
        description="outputs = f(inputs @ weights + biases), per layer."
    )


class TrajectoryOut(BaseModel):
    optimizer: dict[str, Any] = Field(description="The normalised optimizer spec.")
    points: list[list[float]] = Field(description="[x, y] per step, starting at `start`.")
    values: list[float] = Field(
        description="The objective the optimizer minimises at each point: f(x, y) plus its "
        "L1/L2 term, λ₁(|x| + |y|) + λ₂(x² + y²) (just f without l1/l2)."
    )
    diverged_at: int | None = Field(None, description="First step with a non-finite value, if any.")


class TrajectoriesResponse(BaseModel):
    function: str = Field(description="The 2-D test function.")
    minimum: list[float] | None = Field(
        description="A minimum of the function (the first of `minima`; null for the saddle)."
    )
    minima: list[list[float]] = Field(
        description="Every minimum [x, y]: four for himmelblau, none for the saddle."
    )
    trajectories: list[TrajectoryOut] = Field(description="One per optimizer, in order.")

    @staticmethod
    def body(result: TrajectoryResult) -> dict[str, Any]:
        """The response body of ``core.surfaces.run_trajectories``'s result (arrays kept
        as NumPy: ORJSONResponse writes them without a Python list per point)."""
        return {
            "function": result.function,
            "minimum": None if result.minimum is None else list(result.minimum),
            "minima": [list(point) for point in result.minima],
            "trajectories": [
                {
                    "optimizer": trajectory.optimizer.model_dump(mode="json"),
                    "points": trajectory.points,
                    "values": trajectory.values,
                    "diverged_at": trajectory.diverged_at,
                }
                for trajectory in result.trajectories
            ],
        }


class PlotWindow(BaseModel):
    x: tuple[float, float] = Field(description="[lo, hi] of x.")
    y: tuple[float, float] = Field(description="[lo, hi] of y.")


class FunctionOut(BaseModel):
    name: str = Field(description="The function's name in `/optimizers/trajectories`.")
    formula: str = Field(description="f(x, y), in plain text.", examples=["x² + 10 y²"])
    minima: list[list[float]] = Field(description="Every minimum [x, y] (none for the saddle).")
    window: PlotWindow = Field(description="A plotting window showing the minima and the relief.")

    @classmethod
    def from_surface(cls, surface: Surface) -> FunctionOut:
        (x_lo, x_hi), (y_lo, y_hi) = surface.window
        return cls(
            name=surface.name,
            formula=surface.formula,
            minima=[list(point) for point in surface.minima],
            window=PlotWindow(x=(x_lo, x_hi), y=(y_lo, y_hi)),
        )


class FunctionsResponse(BaseModel):
    functions: list[FunctionOut] = Field(description="The 2-D test functions.")
