"""Spec fields and number types: tags, the default optimizer, strict numbers, name limits,
snapshots and threads."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from core.errors import DatasetError, SpecError
from core.loaders import MAX_FEATURES, dataset_from_csv, dataset_from_json
from core.specs import (
    MAX_SNAPSHOT_EPOCHS,
    MAX_TAGS,
    NAME_MAX_LENGTH,
    RunSpec,
    SGDSpec,
    TrajectoryRequest,
    spec_error_from_validation,
)


def spec(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "dataset": "iris",
        "model": {"layers": [{"units": 3, "activation": "softmax"}]},
        "optimizer": {"type": "adam", "learning_rate": 0.01},
    }
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = body
        for part in parents:
            target = target.setdefault(part, {})
        if value is DELETE:
            target.pop(last)
        else:
            target[last] = value
    return body


DELETE = object()


def refused_field(body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        RunSpec.model_validate(body)
    return spec_error_from_validation(info.value).field


def test_the_optimizer_may_be_omitted_and_is_plain_sgd() -> None:
    parsed = RunSpec.model_validate(spec(optimizer=DELETE))
    assert parsed.optimizer == SGDSpec(type="sgd")
    assert parsed.optimizer.learning_rate == 0.01 and parsed.optimizer.momentum == 0.0


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("optimizer__beta2", False, "optimizer.adam.beta2"),
        ("optimizer__learning_rate", "0.1", "optimizer.adam.learning_rate"),
        ("optimizer__learning_rate", True, "optimizer.adam.learning_rate"),
        ("training__epochs", True, "training.epochs"),
        ("training__epochs", "10", "training.epochs"),
        ("training__epochs", 10.0, "training.epochs"),
        ("training__validation_split", "0.2", "training.validation_split"),
        ("training__shuffle", 1, "training.shuffle"),
        ("training__shuffle", "true", "training.shuffle"),
        ("training__threads", True, "training.threads"),
        ("model__layers", [{"units": "3", "activation": "softmax"}], "model.layers.0.units"),
        ("model__init", {"type": "normal", "std": "1"}, "model.init"),
    ],
)
def test_booleans_and_numeric_strings_are_not_numbers(path: str, value: Any, field: str) -> None:
    assert refused_field(spec(**{path: value})).startswith(field)


def test_integers_are_fine_where_floats_are_expected() -> None:
    parsed = RunSpec.model_validate(
        spec(
            optimizer={"type": "sgd", "learning_rate": 1, "momentum": 0},
            training={"validation_split": 0},
        )
    )
    assert parsed.optimizer.learning_rate == 1.0 and isinstance(
        parsed.optimizer.learning_rate, float
    )


def test_trajectory_requests_have_strict_numbers_too() -> None:
    base = {"function": "quadratic", "start": [1, 1], "steps": 3, "optimizers": [{"type": "sgd"}]}
    assert TrajectoryRequest.model_validate(base).start == (1.0, 1.0)
    for bad in ({"start": [True, 1]}, {"steps": "3"}, {"optimizers": [{"type": "sgd", "l2": "1"}]}):
        with pytest.raises(ValidationError):
            TrajectoryRequest.model_validate(base | bad)


def test_tags_default_to_empty_and_are_kept() -> None:
    assert RunSpec.model_validate(spec()).tags == {}
    tags = {"course": "ann-lecture", "group.b/2": "x" * 256}
    assert RunSpec.model_validate(spec(tags=tags)).tags == tags


@pytest.mark.parametrize(
    "tags",
    [
        {f"k{i}": "v" for i in range(MAX_TAGS + 1)},
        {"k" * 65: "v"},
        {"": "v"},
        {"a:b": "v"},
        {"white space": "v"},
        {"k": "v" * 257},
        {"k": 5},
        {"k": True},
    ],
)
def test_tags_are_bounded(tags: dict[str, Any]) -> None:
    assert refused_field(spec(tags=tags)).startswith("tags")


def test_names_share_one_limit() -> None:
    RunSpec.model_validate(spec(name="n" * NAME_MAX_LENGTH))
    assert refused_field(spec(name="n" * (NAME_MAX_LENGTH + 1))) == "name"
    rows = {"task": "classification", "features": [[0.0], [1.0]], "targets": ["a", "b"]}
    dataset_from_json(name="n" * NAME_MAX_LENGTH, **rows)
    with pytest.raises(DatasetError, match=str(NAME_MAX_LENGTH)) as info:
        dataset_from_json(name="n" * (NAME_MAX_LENGTH + 1), **rows)
    assert info.value.field == "name"
    csv = b"x,y\n0,a\n1,b\n"
    with pytest.raises(DatasetError, match=str(NAME_MAX_LENGTH)):  # multipart uploads alike
        dataset_from_csv(content=csv, target="y", task="classification", name="n" * 201)


def test_feature_and_class_names_are_bounded() -> None:
    rows = {"name": "d", "task": "classification", "features": [[0.0], [1.0]]}
    with pytest.raises(DatasetError, match="at most 200") as info:
        dataset_from_json(**rows, targets=["a", "b"], feature_names=["f" * 201])
    assert info.value.field == "feature_names[0]"
    with pytest.raises(DatasetError, match="at most 200"):
        dataset_from_json(**rows, targets=["a", "c" * 201])
    header = "f" * 201 + ",y\n"
    with pytest.raises(DatasetError, match="at most 200"):
        dataset_from_csv(
            content=(header + "0,a\n1,b\n").encode(), target="y", task="classification", name="d"
        )


def test_the_number_of_features_is_bounded() -> None:
    wide = [[0.0] * (MAX_FEATURES + 1), [1.0] * (MAX_FEATURES + 1)]
    with pytest.raises(DatasetError, match=f"at most {MAX_FEATURES}"):
        dataset_from_json(name="d", task="classification", features=wide, targets=["a", "b"])
    dataset_from_json(
        name="d", task="classification", features=[row[:-1] for row in wide], targets=["a", "b"]
    )
    header = ",".join(f"x{j}" for j in range(MAX_FEATURES + 1)) + ",y\n"
    row = ",".join("0" for _ in range(MAX_FEATURES + 1))
    with pytest.raises(DatasetError, match=f"at most {MAX_FEATURES}"):
        dataset_from_csv(
            content=(header + row + ",a\n" + row + ",b\n").encode(),
            target="y",
            task="classification",
            name="d",
        )


def test_snapshots_default_to_log_and_lists_are_sorted_without_duplicates() -> None:
    assert RunSpec.model_validate(spec()).training.snapshots == "log"
    parsed = RunSpec.model_validate(spec(training={"epochs": 10, "snapshots": [5, 1, 5, 10]}))
    assert parsed.training.snapshots == [1, 5, 10]


@pytest.mark.parametrize(
    "snapshots",
    [[0], [11], list(range(1, MAX_SNAPSHOT_EPOCHS + 2)), "all", [True], ["3"], [2.0]],
)
def test_bad_snapshot_lists_are_refused(snapshots: Any) -> None:
    epochs = 10 if not isinstance(snapshots, list) or len(snapshots) < 100 else 1000
    assert refused_field(spec(training={"epochs": epochs, "snapshots": snapshots})).startswith(
        "training"
    )


def test_threads_default_to_one_and_must_be_positive() -> None:
    assert RunSpec.model_validate(spec()).training.threads == 1
    assert refused_field(spec(training={"threads": 0})) == "training.threads"


def test_spec_error_takes_the_message_first_like_dataset_error() -> None:
    error = SpecError("too many units", field="model.layers.0.units")
    assert (error.message, error.field) == ("too many units", "model.layers.0.units")
    assert str(error) == "model.layers.0.units: too many units"
    data_error = DatasetError("ragged rows", "features[1]")
    assert (data_error.message, data_error.field) == ("ragged rows", "features[1]")
