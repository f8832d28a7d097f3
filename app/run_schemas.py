"""Bodies of the run routes added for what a user relies on: PATCH, evaluate, split.
(``RunOut`` and the older bodies are ``app.schemas``.)"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.schemas import Number
from core.specs import MAX_TAGS, NAME_MAX_LENGTH, TagKey, TagValue


class RunPatch(BaseModel):
    """New values for a run's name and/or tags (the tags replace the old ones)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "adam, wider", "tags": {"group": "a"}}]},
    )

    name: str | None = Field(
        None, min_length=1, max_length=NAME_MAX_LENGTH, description="The new name."
    )
    tags: dict[TagKey, TagValue] | None = Field(
        None, max_length=MAX_TAGS, description="The new tags (replace the old ones)."
    )


class EvaluateRequest(BaseModel):
    """Rows to evaluate a run's model on: a dataset id, or inline rows and targets
    (no body at all: the run's own validation rows)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"dataset": "iris"}, {"inputs": [[0.5, -0.2]], "targets": [1]}]
        },
    )

    dataset: str | None = Field(None, max_length=200, description="A dataset id.")
    inputs: list[list[Number]] | None = Field(None, min_length=1, description="Feature rows.")
    targets: list[Number | str | list[Number]] | None = Field(
        None, description="One target per row, as in a dataset upload."
    )


class ClassMetricsOut(BaseModel):
    precision: float = Field(description="tp / rows predicted as this class (0 if none).")
    recall: float = Field(description="tp / rows of this class (0 if none).")
    f1: float = Field(description="2 p r / (p + r) (0 if both are 0).")
    support: int = Field(description="Rows of this true class.")


class EvaluationOut(BaseModel):
    """Classification: n, loss, accuracy, confusion_matrix, per_class, macro_f1.
    Regression: n, loss, mse (plain mean of (t − y)²), rmse, mae, r2."""

    n: int = Field(description="Rows evaluated.")
    loss: float = Field(description="The model's training loss on these rows.")
    accuracy: float | None = Field(None, description="Classification only.")
    confusion_matrix: list[list[int]] | None = Field(
        None, description="Rows: true class, columns: predicted, in `class_names` order."
    )
    per_class: dict[str, ClassMetricsOut] | None = Field(None, description="By class name.")
    macro_f1: float | None = Field(None, description="Mean F1 over every class.")
    mse: float | None = Field(None, description="Regression: mean of (t − y)², not halved.")
    rmse: float | None = Field(None, description="Regression: √mse.")
    mae: float | None = Field(None, description="Regression: mean of |t − y|.")
    r2: float | None = Field(
        None, description="Regression: 1 − SS_res / SS_tot, per output, averaged."
    )


class SplitOut(BaseModel):
    train: list[int] = Field(description="Row indices of the training rows, in order.")
    validation: list[int] = Field(description="Row indices held out for validation.")


class PredictRecordsRequest(BaseModel):
    """Rows by feature name (any order); every record has every feature of the model."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "records": [
                        {
                            "sepal_length": 5.1,
                            "sepal_width": 3.5,
                            "petal_length": 1.4,
                            "petal_width": 0.2,
                        }
                    ]
                }
            ]
        },
    )

    records: list[dict[str, float]] = Field(
        min_length=1, description="One object per row: feature name → finite number."
    )
