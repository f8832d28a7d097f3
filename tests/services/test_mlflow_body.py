"""Properties of the MLflow /invocations body parser (hypothesis)."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.services.mlflow_body import InvocationError, parse_invocation

NAMES = ["a", "b", "c"]
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
matrices = st.lists(st.lists(finite, min_size=3, max_size=3), min_size=1, max_size=6)
json_values = st.recursive(
    st.none() | st.booleans() | finite | st.integers(-(2**60), 2**60) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
keys = st.sampled_from(
    ["dataframe_split", "dataframe_records", "instances", "inputs", "params", "x"]
)


def parse(document: object) -> np.ndarray:
    return parse_invocation(orjson.dumps(document), "application/json", NAMES).inputs


@settings(max_examples=150, deadline=None)
@given(rows=matrices, order=st.permutations(NAMES))
def test_every_format_gives_the_same_matrix(rows: list[list[float]], order: list[str]) -> None:
    expected = np.array(rows, dtype=np.float64)
    index = [NAMES.index(name) for name in order]
    shuffled = [[row[i] for i in index] for row in rows]
    documents = [
        {"inputs": rows},
        {"instances": rows, "params": {"x": 1}},
        {"inputs": {name: [row[i] for row in rows] for i, name in enumerate(NAMES)}},
        {"dataframe_split": {"columns": order, "data": shuffled, "index": list(range(len(rows)))}},
        {"dataframe_records": [dict(zip(order, row, strict=True)) for row in shuffled]},
    ]
    for document in documents:
        got = parse(document)
        assert got.dtype == np.float64 and got.tobytes() == expected.tobytes(), document
    csv = ",".join(order) + "\n" + "\n".join(",".join(repr(v) for v in row) for row in shuffled)
    from_csv = parse_invocation(csv.encode(), "text/csv; charset=utf-8", NAMES).inputs
    assert from_csv.tobytes() == expected.tobytes()


@settings(max_examples=300, deadline=None)
@given(document=st.dictionaries(keys, json_values, max_size=3) | json_values)
def test_anything_else_is_a_clean_400(document: object) -> None:
    try:
        matrix = parse(document)
    except InvocationError as error:
        assert error.status == 400 and error.message
    else:
        assert matrix.ndim == 2 and matrix.shape[1] == 3 and np.isfinite(matrix).all()


@settings(max_examples=100, deadline=None)
@given(body=st.binary(max_size=64), content_type=st.sampled_from(["application/json", "text/csv"]))
def test_any_bytes_are_a_clean_400(body: bytes, content_type: str) -> None:
    try:
        parse_invocation(body, content_type, NAMES)
    except InvocationError as error:
        assert error.status == 400


def test_two_format_keys_and_a_list_are_400_another_type_415() -> None:
    for document in ([[1, 2, 3]], {"inputs": [[1, 2, 3]], "instances": [[1, 2, 3]]}):
        with pytest.raises(InvocationError) as caught:
            parse(document)
        assert caught.value.status == 400
    with pytest.raises(InvocationError) as caught:
        parse_invocation(json.dumps({"inputs": [[1, 2, 3]]}).encode(), "text/plain", NAMES)
    assert caught.value.status == 415
    assert parse_invocation(
        b'{"inputs": [[1, 2, 3]], "params": {"output": "probabilities"}}', "application/json", NAMES
    ).probabilities
