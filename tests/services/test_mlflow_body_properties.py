"""More properties of the MLflow /invocations parser (issue 15, item 9): booleans are
never numbers in any format, and any CSV text is a matrix or a clean 400."""

from __future__ import annotations

import csv
import io

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.services.mlflow_body import InvocationError, parse_invocation

NAMES = ["a", "b", "c"]
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
numbers = finite | st.integers(-(2**53), 2**53)


def _documents(rows: list[list[object]]) -> list[object]:
    return [
        {"inputs": rows},
        {"instances": rows},
        {"dataframe_split": {"columns": NAMES, "data": rows}},
        {"dataframe_split": {"data": rows}},
        {"dataframe_records": [dict(zip(NAMES, row, strict=True)) for row in rows]},
        {"inputs": {name: [row[i] for row in rows] for i, name in enumerate(NAMES)}},
    ]


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.lists(numbers, min_size=3, max_size=3), min_size=1, max_size=5),
    where=st.tuples(st.integers(0, 4), st.integers(0, 2)),
    flag=st.booleans(),
    kind=st.integers(0, 5),
)
def test_a_boolean_is_never_a_number(
    rows: list[list[object]], where: tuple[int, int], flag: bool, kind: int
) -> None:
    i, j = where[0] % len(rows), where[1]
    rows[i][j] = flag
    document = _documents(rows)[kind]
    with pytest.raises(InvocationError) as caught:
        parse_invocation(orjson.dumps(document), "application/json", NAMES)
    assert caught.value.status == 400


cells = st.one_of(
    numbers.map(repr),
    st.text(max_size=6),
    st.sampled_from(["nan", "inf", "-Infinity", "1e999", "", " 2 ", '"3"', "0x10"]),
    st.integers(131_000, 140_000).map(lambda n: "1" * n),  # past csv's field limit
)


@settings(max_examples=120, deadline=None)
@given(
    header=st.permutations(NAMES) | st.lists(st.text(max_size=3), max_size=4),
    rows=st.lists(st.lists(cells, min_size=0, max_size=4), min_size=0, max_size=4),
)
def test_any_csv_is_a_finite_matrix_in_the_models_order_or_a_clean_400(
    header: list[str], rows: list[list[str]]
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    body = buffer.getvalue().encode()
    try:
        matrix = parse_invocation(body, "text/csv", NAMES).inputs
    except InvocationError as error:
        assert error.status == 400 and error.message
        return
    assert matrix.dtype == np.float64 and matrix.shape[1] == len(NAMES)
    assert np.isfinite(matrix).all()
    order = [list(header).index(name) for name in NAMES]
    expected = [[float(row[k]) for k in order] for row in rows if row]
    assert matrix.tolist() == expected
