"""Spec validation never fails in an unplanned way.

Whatever JSON-like value arrives, `RunSpec.model_validate` followed by
`check_against_dataset` gives a normalised spec, a pydantic `ValidationError`
(422 with the field) or a `SpecError` (422 naming the field), never another
exception (which the service would turn into a 500).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from core.errors import SpecError
from core.specs import DataShape, RunSpec, check_against_dataset, count_parameters

from .strategies import any_spec_like

pytestmark = pytest.mark.timeout(120)

FUZZ = settings(
    max_examples=400,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

BUILTIN_SHAPES = [
    DataShape(task="classification", n_features=4, n_outputs=3, n_classes=3, n_samples=150),  # iris
    DataShape(task="classification", n_features=2, n_outputs=2, n_classes=2, n_samples=4),  # xor
    DataShape(
        task="classification", n_features=2, n_outputs=2, n_classes=2, n_samples=200
    ),  # blobs
    DataShape(
        task="classification", n_features=2, n_outputs=3, n_classes=3, n_samples=600
    ),  # spiral
    DataShape(task="regression", n_features=1, n_outputs=1, n_samples=400),  # sine
]

data_shapes = st.sampled_from(BUILTIN_SHAPES) | st.builds(
    DataShape,
    task=st.sampled_from(["classification", "regression"]),
    n_features=st.integers(min_value=1, max_value=12),
    n_outputs=st.integers(min_value=1, max_value=4),
    n_classes=st.none() | st.integers(min_value=0, max_value=6),
    n_samples=st.none() | st.integers(min_value=1, max_value=2000),
)


def validate(document: object, shape: DataShape) -> RunSpec | Exception:
    try:
        spec = RunSpec.model_validate(document)
        return check_against_dataset(spec, shape)
    except (ValidationError, SpecError) as expected:
        return expected


@FUZZ
@given(document=any_spec_like, shape=data_shapes)
def test_validation_ends_in_a_spec_or_a_typed_error(document: object, shape: DataShape) -> None:
    outcome = validate(document, shape)
    if isinstance(outcome, SpecError):
        assert outcome.message, "a SpecError says what is wrong"
    elif isinstance(outcome, ValidationError):
        assert outcome.errors(), "a ValidationError lists its errors"
    else:
        assert isinstance(outcome, RunSpec)


@FUZZ
@given(document=any_spec_like, shape=data_shapes)
def test_a_normalised_spec_is_complete_and_stable(document: object, shape: DataShape) -> None:
    outcome = validate(document, shape)
    if not isinstance(outcome, RunSpec):
        return
    assert outcome.loss is not None and outcome.name, "loss and name are filled in"
    # normalising twice changes nothing, and the JSON form validates to the same spec
    assert check_against_dataset(outcome, shape) == outcome
    again = RunSpec.model_validate_json(outcome.model_dump_json())
    assert again == outcome
    assert count_parameters(outcome.model, shape.n_features) >= 1
    for value in (outcome.optimizer.learning_rate, outcome.training.validation_split):
        assert math.isfinite(value)
