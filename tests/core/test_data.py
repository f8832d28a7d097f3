"""User data loaders: every bad input is a DatasetError that names the problem."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.data import (
    Dataset,
    dataset_from_csv,
    dataset_from_json,
    dataset_from_npz_bytes,
    dataset_to_npz_bytes,
)
from core.errors import DatasetError, UnsafeFileError


def from_json(**overrides):
    arguments = {
        "name": "toy",
        "task": "classification",
        "features": [[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]],
        "targets": ["a", "b", "a"],
    }
    arguments.update(overrides)
    return dataset_from_json(**arguments)


def from_csv(text: str | bytes, target: str = "y", task: str = "classification"):
    content = text.encode() if isinstance(text, str) else text
    return dataset_from_csv(content=content, target=target, task=task, name="upload")


# ------------------------------------------------------------------ JSON happy paths


def test_string_classes_become_sorted_class_names_and_indices():
    ds = from_json(targets=["dog", "cat", "dog"])
    assert ds.class_names == ["cat", "dog"]
    assert ds.targets.tolist() == [1, 0, 1]
    assert ds.targets.dtype == np.int64
    assert ds.features.dtype == np.float64
    assert ds.features.shape == (3, 2)
    assert ds.feature_names == ["x1", "x2"]
    assert ds.n_outputs == 2


def test_integer_classes_are_named_by_their_sorted_values():
    # (each class twice: three classes for three rows would be a likely regression target)
    ds = from_json(features=[[0.0]] * 6, targets=[10, -1, 2, 10, -1, 2])
    assert ds.class_names == ["-1", "2", "10"]
    assert ds.targets.tolist() == [2, 0, 1, 2, 0, 1]


def test_more_than_two_classes_for_fewer_than_twice_as_many_rows_suggests_regression():
    with pytest.raises(DatasetError, match="task=regression"):
        from_json(features=[[0.0]] * 5, targets=[5, 15, 25, 15, 30])
    assert from_json(features=[[0.0]] * 2, targets=["a", "b"]).class_names == ["a", "b"]


def test_integral_floats_count_as_integer_classes():
    ds = from_json(targets=[1.0, 0, 1])
    assert ds.class_names == ["0", "1"]


def test_regression_numbers_give_one_output():
    ds = from_json(task="regression", targets=[0.5, -1, 2e10])
    assert ds.targets.shape == (3, 1)
    assert ds.class_names is None
    assert ds.n_outputs == 1


def test_regression_lists_give_several_outputs():
    ds = from_json(task="regression", targets=[[1, 2], [3, 4], [5, 6]])
    assert ds.targets.tolist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert ds.n_outputs == 2


def test_feature_names_are_kept():
    ds = from_json(feature_names=["width", "height"])
    assert ds.feature_names == ["width", "height"]


def test_huge_finite_magnitudes_are_accepted():
    ds = from_json(features=[[1e300, -1e300], [1e-300, 0], [10**300, 1]])
    assert ds.features[0, 0] == 1e300
    assert ds.features[2, 0] == 1e300


# ------------------------------------------------------------------ JSON errors


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"features": [[1, 2], [3]]}, "ragged"),
        ({"features": [[1, "2"], [3, 4], [5, 6]]}, r"features\[0\]\[1\].*not a number"),
        ({"features": [[1, "nan"], [3, 4], [5, 6]]}, r"features\[0\]\[1\].*not a number"),
        ({"features": [[1, 2], [True, 4], [5, 6]]}, r"features\[1\]\[0\] is a boolean"),
        ({"features": [[1, 2], [3, None], [5, 6]]}, r"features\[1\]\[1\] is null"),
        ({"features": [[1, 2], [3, math.nan], [5, 6]]}, r"features\[1\]\[1\].*non-finite"),
        ({"features": [[1, math.inf], [3, 4], [5, 6]]}, r"features\[0\]\[1\].*non-finite"),
        ({"features": [[1, 2], [-math.inf, 4], [5, 6]]}, r"features\[1\]\[0\].*non-finite"),
        ({"features": [[1, 2], [10**400, 4], [5, 6]]}, r"features\[1\]\[0\].*non-finite"),
        ({"features": [[1, 2], [[3], 4], [5, 6]]}, r"features\[1\]\[0\] is a list"),
        ({"features": [[1, 2]], "targets": ["a"]}, "at least 2 rows"),
        ({"features": [], "targets": []}, "at least 2 rows"),
        ({"features": [[], [], []]}, "zero feature columns"),
        ({"features": {"a": 1}}, "features must be a list"),
        ({"features": [[1, 2], 3, [5, 6]]}, r"features\[1\] must be a list"),
        ({"targets": ["a", "b"]}, "2 targets for 3 rows"),
        ({"targets": "abc"}, "targets must be a list"),
        ({"targets": ["a", "a", "a"]}, "at least 2 classes"),
        ({"targets": [1, 1, 1]}, "at least 2 classes"),
        ({"targets": [0, "b", 1]}, r"targets\[1\].*not a mix"),
        ({"targets": [0.5, 1, 0]}, r"targets\[0\].*strings\) or integers"),
        ({"targets": [True, False, True]}, r"targets\[0\] is a boolean"),
        ({"targets": ["a", "", "b"]}, r"targets\[1\] is an empty class name"),
        ({"targets": [0, 2**70, 1]}, "64 bits"),
        ({"task": "regression", "targets": ["a", "b", "c"]}, r"targets\[0\].*not a number"),
        ({"task": "regression", "targets": [1, math.nan, 2]}, r"targets\[1\].*non-finite"),
        ({"task": "regression", "targets": [1, math.inf, 2]}, r"targets\[1\].*non-finite"),
        ({"task": "regression", "targets": [[1, 2], [3], [4, 5]]}, r"targets\[1\].*ragged"),
        ({"task": "regression", "targets": [[1], 2, [3]]}, r"targets\[1\].*all lists"),
        ({"task": "regression", "targets": [1, [2], 3]}, r"targets\[1\] is a list"),
        ({"task": "regression", "targets": [[], [], []]}, "empty list"),
        ({"task": "regression", "targets": [1, True, 3]}, r"targets\[1\] is a boolean"),
        ({"feature_names": ["a"]}, "1 feature names for 2 feature columns"),
        ({"feature_names": ["a", "a"]}, "duplicate column name 'a'"),
        ({"feature_names": ["a", " "]}, r"feature_names\[1\] is empty"),
        ({"feature_names": ["a", 3]}, r"feature_names\[1\] is 3, not a string"),
        ({"task": "clustering"}, "task must be"),
        ({"name": ""}, "name must be a non-empty string"),
    ],
)
def test_bad_json_data_raises_a_dataset_error_naming_the_problem(overrides, expected):
    with pytest.raises(DatasetError, match=expected):
        from_json(**overrides)


def test_dataset_error_carries_the_field():
    with pytest.raises(DatasetError) as info:
        from_json(features=[[1, 2], [3, math.nan], [5, 6]])
    assert info.value.field == "features[1][1]"


# ------------------------------------------------------- property: never another error

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5)
    | st.sampled_from(["nan", "inf", "-Infinity", "1.5", "0"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=30,
)
finite_numbers = st.integers(-5, 5) | st.floats(-1e300, 1e300)
numbers = finite_numbers | st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def near_valid(draw):
    """Mostly well-formed data, with now and then one wrong row, value or length."""
    n_rows = draw(st.integers(0, 6))
    width = draw(st.integers(0, 3))
    cell = draw(st.sampled_from([finite_numbers, finite_numbers | json_scalars, numbers]))
    features = [draw(st.lists(cell, min_size=width, max_size=width)) for _ in range(n_rows)]
    if features and draw(st.booleans()):
        features[draw(st.integers(0, n_rows - 1))] = draw(json_values)
    label = draw(
        st.sampled_from(
            [
                st.integers(0, 2),
                st.sampled_from(["a", "b", "c"]),
                finite_numbers,
                st.lists(finite_numbers, min_size=2, max_size=2),
                st.integers(0, 2) | st.sampled_from(["a", "b"]) | json_scalars,
            ]
        )
    )
    n_targets = n_rows if draw(st.integers(0, 4)) else draw(st.integers(0, 7))
    targets = draw(st.lists(label, min_size=n_targets, max_size=n_targets))
    return features, targets


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(["toy", "", None, 3]) | json_values,
    task=st.sampled_from(["classification", "regression"]) | json_values,
    data=near_valid() | st.tuples(json_values, json_values),
    feature_names=st.none() | st.lists(st.text(max_size=2), max_size=4) | json_values,
)
def test_any_json_input_gives_a_dataset_or_a_dataset_error(name, task, data, feature_names):
    features, targets = data
    try:
        ds = dataset_from_json(
            name=name, task=task, features=features, targets=targets, feature_names=feature_names
        )
    except DatasetError as error:
        assert str(error)
        return
    assert isinstance(ds, Dataset)
    assert ds.n_samples >= 2 and ds.n_features >= 1
    assert np.isfinite(ds.features).all()
    assert len(ds.feature_names) == ds.n_features
    if ds.task == "classification":
        assert ds.class_names is not None and len(ds.class_names) >= 2
        assert set(ds.targets.tolist()) <= set(range(len(ds.class_names)))
    else:
        assert np.isfinite(ds.targets).all() and ds.targets.shape[0] == ds.n_samples


def test_deeply_nested_input_is_a_dataset_error_not_a_recursion_error():
    nested: list = []
    for _ in range(100_000):
        nested = [nested]
    with pytest.raises(DatasetError):
        from_json(features=[nested, nested])
    with pytest.raises(DatasetError):
        from_json(targets=[nested, nested, nested])


def test_a_large_valid_set_loads_quickly():
    rows = [[float(i), float(-i)] for i in range(50_000)]
    ds = from_json(features=rows, targets=[i % 3 for i in range(50_000)])
    assert ds.features.shape == (50_000, 2)
    assert ds.class_names == ["0", "1", "2"]


# ------------------------------------------------------------------- CSV happy paths


def test_csv_with_class_names():
    ds = from_csv("a,b,y\n1,2,setosa\n3,4.5,virginica\n-1e3,0,setosa\n")
    assert ds.features.tolist() == [[1.0, 2.0], [3.0, 4.5], [-1000.0, 0.0]]
    assert ds.class_names == ["setosa", "virginica"]
    assert ds.targets.tolist() == [0, 1, 0]
    assert ds.feature_names == ["a", "b"]
    assert ds.name == "upload"


def test_csv_with_integer_classes_in_any_column():
    ds = from_csv("label,x\n2,0.5\n10,1.5\n2,2.5\n", target="label")
    assert ds.class_names == ["2", "10"]
    assert ds.targets.tolist() == [0, 1, 0]
    assert ds.feature_names == ["x"]


def test_csv_regression():
    ds = from_csv("x, y \n0, 0.5\n1, -1.5\n\n", task="regression")
    assert ds.targets.tolist() == [[0.5], [-1.5]]
    assert ds.n_outputs == 1


def test_csv_multi_output_regression_names_several_target_columns():
    ds = from_csv("y1,x,y2\n1,10,2\n3,20,4\n", target="y1, y2", task="regression")
    assert ds.targets.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert ds.feature_names == ["x"]


def test_csv_with_byte_order_mark_crlf_and_quotes():
    ds = from_csv(b'\xef\xbb\xbf"a",y\r\n"1.5",cat\r\n2,"dog"\r\n')
    assert ds.feature_names == ["a"]
    assert ds.class_names == ["cat", "dog"]


# ----------------------------------------------------------------------- CSV errors


@pytest.mark.parametrize(
    ("text", "target", "task", "expected"),
    [
        ("a,y\n1,0\n2\n3,1\n", "y", "classification", "line 3 has 1 fields.*ragged"),
        ("a,y\n1,0\nabc,1\n", "y", "classification", "line 3, column 'a'.*not a number"),
        ("a,y\n1,0\nnan,1\n", "y", "classification", "line 3, column 'a'.*non-finite"),
        ("a,y\n1,0\n-inf,1\n", "y", "classification", "line 3, column 'a'.*non-finite"),
        ("a,y\n1,0\nInfinity,1\n", "y", "classification", "non-finite"),
        ("a,y\n1,0\n1e999,1\n", "y", "classification", "line 3.*non-finite"),
        ("a,y\n1,0\n,1\n", "y", "classification", "line 3, column 'a': empty value"),
        ("a,y\n1,0\nTrue,1\n", "y", "classification", "not a number"),
        ("a,y\n1,0\n", "y", "classification", "at least 2 data rows"),
        ("", "y", "classification", "empty"),
        ("y\n0\n1\n", "y", "classification", "zero feature columns"),
        ("a,y\n1,0\n2,0\n", "y", "classification", "at least 2 classes"),
        ("a,y\n1,0\n2,\n", "y", "classification", "line 3, column 'y'.*empty class name"),
        ("a,b\n1,0\n2,1\n", "y", "classification", "target column 'y' is not in the CSV"),
        ("a,,y\n1,2,0\n2,3,1\n", "y", "classification", "column 2 of the header row has no name"),
        ("a,a,y\n1,2,0\n2,3,1\n", "y", "classification", "duplicate column name 'a'"),
        ("a,y\n1,0.5\n2,x\n", "y", "regression", "line 3, column 'y'.*not a number"),
        ("a,y\n1,0.5\n2,nan\n", "y", "regression", "line 3, column 'y'.*non-finite"),
        ("a,y1,y2\n1,0,1\n2,1,0\n", "y1,y3", "regression", "'y3' is not in the CSV"),
        ("a,y1,y2\n1,0,1\n2,1,0\n", "y1,y2", "classification", "'y1,y2' is not in the CSV"),
    ],
)
def test_bad_csv_raises_a_dataset_error_naming_the_problem(text, target, task, expected):
    with pytest.raises(DatasetError, match=expected):
        from_csv(text, target=target, task=task)


def test_csv_that_is_not_utf8_is_refused():
    with pytest.raises(DatasetError, match="not UTF-8"):
        from_csv("a,y\n1,caf\u00e9\n2,b\n".encode("latin-1"))


def test_csv_content_must_be_bytes():
    with pytest.raises(DatasetError, match="must be bytes"):
        dataset_from_csv(content="a,y\n1,0\n2,1\n", target="y", task="classification", name="x")


def test_csv_with_an_oversized_field_is_a_dataset_error():
    with pytest.raises(DatasetError, match="cannot be parsed"):
        from_csv('a,y\n"' + "1" * 200_000 + '",0\n2,1\n')


# ------------------------------------------------------------------------------- npz


def test_npz_round_trip_keeps_every_bit():
    ds = from_json(features=[[0.1, 1e300], [1 / 3, -0.0], [2.0, 5e-324]])
    back = dataset_from_npz_bytes(
        dataset_to_npz_bytes(ds),
        name=ds.name,
        task=ds.task,
        class_names=ds.class_names,
        feature_names=ds.feature_names,
    )
    assert back.features.tobytes() == ds.features.tobytes()
    assert back.targets.tobytes() == ds.targets.tobytes()
    assert back.targets.dtype == np.int64
    assert back.class_names == ds.class_names


def test_npz_round_trip_for_regression():
    ds = from_json(task="regression", targets=[[1, 2], [3, 4], [5, 6]])
    back = dataset_from_npz_bytes(
        dataset_to_npz_bytes(ds),
        name="r",
        task="regression",
        class_names=None,
        feature_names=ds.feature_names,
    )
    assert np.array_equal(back.targets, ds.targets)


class Bomb:
    """Unpickling this would run ``exec``; the loader must never do it."""

    def __reduce__(self):
        return (exec, ("raise SystemExit('pickle executed')",))


def test_npz_with_a_pickled_object_array_is_refused_without_executing_it():
    buffer = io.BytesIO()
    np.savez(buffer, features=np.array([Bomb(), Bomb()], dtype=object), targets=np.zeros(2))
    with pytest.raises(UnsafeFileError):
        dataset_from_npz_bytes(
            buffer.getvalue(),
            name="x",
            task="classification",
            class_names=["a", "b"],
            feature_names=["f"],
        )


@pytest.mark.parametrize(
    "content", [b"", b"not a zip file", b"PK\x03\x04broken", dataset_to_npz_bytes.__doc__.encode()]
)
def test_unreadable_npz_is_a_dataset_error(content):
    with pytest.raises(DatasetError):
        dataset_from_npz_bytes(
            content, name="x", task="regression", class_names=None, feature_names=["f"]
        )


def test_npz_with_class_indices_out_of_range_is_a_dataset_error():
    buffer = io.BytesIO()
    np.savez(buffer, features=np.zeros((2, 1)), targets=np.array([0, 5], dtype=np.int64))
    with pytest.raises(DatasetError, match="class indices"):
        dataset_from_npz_bytes(
            buffer.getvalue(),
            name="x",
            task="classification",
            class_names=["a", "b"],
            feature_names=["f"],
        )
