"""The CSV fast path (``core.csv_fast``) gives the slow path's dataset, bit for bit, or
steps aside so that the slow path raises its error naming the line and column."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import loaders
from core.errors import DatasetError


def slow(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> Any:
    with monkeypatch.context() as m:
        m.setattr(loaders, "fast_csv", lambda *a, **k: None)
        return loaders.dataset_from_csv(**kwargs)


def both(monkeypatch: pytest.MonkeyPatch, text: str, target: str, task: str) -> tuple[Any, Any]:
    """(fast, slow): each a Dataset or the DatasetError message."""
    kwargs = {"content": text.encode(), "target": target, "task": task, "name": "t"}
    out = []
    for parse in (lambda: loaders.dataset_from_csv(**kwargs), lambda: slow(monkeypatch, **kwargs)):
        try:
            out.append(parse())
        except DatasetError as exc:
            out.append(exc.message)
    return out[0], out[1]


def assert_same(fast: Any, slow_result: Any) -> None:
    if isinstance(slow_result, str):
        assert fast == slow_result
        return
    assert fast.feature_names == slow_result.feature_names
    assert fast.class_names == slow_result.class_names
    assert fast.features.dtype == slow_result.features.dtype
    assert fast.features.tobytes() == slow_result.features.tobytes()
    assert fast.targets.dtype == slow_result.targets.dtype
    np.testing.assert_array_equal(fast.targets, slow_result.targets)


def test_a_plain_file_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = loaders.fast_csv

    def spy(*args: Any) -> Any:
        result = original(*args)
        calls.append(result is not None)
        return result

    monkeypatch.setattr(loaders, "fast_csv", spy)
    text = "a,b,label\n1.5,2,x\n-3e2,.5,y\n4,5, x\n"
    ds = loaders.dataset_from_csv(
        content=text.encode(), target="label", task="classification", name="t"
    )
    assert calls == [True]
    assert ds.class_names == ["x", "y"] and ds.targets.tolist() == [0, 1, 0]
    assert ds.features.tolist() == [[1.5, 2.0], [-300.0, 0.5], [4.0, 5.0]]


CASES = [
    "a,b,label\n1,2,3\n4,5,6\n",  # integer labels
    "a;b;label\n1;2;cat\n4;5;dog\n",
    "a\tlabel\n1\t0\n2\t1\n\n3\t0\n",  # a blank line
    "a,label\r\n1,0\r\n2,1\r\n",
    "a,label\n1,0\n2,1,3\n",  # ragged (long)
    "a,b,label\n1,2,0\n2,1\n",  # ragged (short)
    "a,label\n1,0\n,1\n",  # an empty cell
    "a,label\n1,0\nnan,1\n",
    "a,label\n1,0\ninf,1\n",
    "a,label\n1,0\n1e999,1\n",
    "a,label\n1_0,0\n2,1\n",
    'a,label\n"1",0\n2,1\n',  # quoted
    "a,label\n1,0\n   \n2,1\n",  # a whitespace-only line
    "a,label\n1,01\n2,1\n",
    "a,label\n1,1.0\n2,1\n",  # '1.0' is a class name, not the integer 1
    "a,label\n1,0\n2,\n",  # an empty class name
    "a,label\n1,0\n2,0\n",  # one class
    "a,label\n1,0\n",  # one row
    "a,a,label\n1,2,0\n3,4,1\n",  # a duplicate column name
    "\na,label\n1,0\n2,1\n",  # a blank first line
]


@pytest.mark.parametrize("text", CASES)
def test_cases_agree(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    for task in ("classification", "regression"):
        assert_same(*both(monkeypatch, text, "label", task))


CELL = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),
    st.integers(-5, 5).map(str),
    st.sampled_from(["", " 1", "2 ", "+.5", "5.", "1e3", "x", "nan", "-0", "0x1", "1e400"]),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.lists(CELL, min_size=3, max_size=3), min_size=0, max_size=6),
    labels=st.lists(
        st.sampled_from(
            ["0", "1", "2", "a", "b", " a", "1.0", "+1", "01", "-0", " 2", "1e0", "9" * 19, ""]
        ),
        min_size=6,
        max_size=6,
    ),
    task=st.sampled_from(["classification", "regression"]),
)
def test_any_small_file_agrees(
    monkeypatch: pytest.MonkeyPatch, rows: list[list[str]], labels: list[str], task: str
) -> None:
    lines = ["a,b,c,label"] + [",".join([*r, labels[i]]) for i, r in enumerate(rows)]
    assert_same(*both(monkeypatch, "\n".join(lines) + "\n", "label", task))


def test_npz_views_are_the_copies_bits_read_only() -> None:
    import io

    ds = loaders.dataset_from_csv(
        content=b"a,b,label\n1.5,2,0\n3,4.25,1\n5,6,0\n",
        target="label",
        task="classification",
        name="t",
    )
    blob = loaders.dataset_to_npz_bytes(ds)
    kwargs: dict[str, Any] = {
        "name": "t",
        "task": "classification",
        "class_names": ds.class_names,
        "feature_names": ds.feature_names,
    }
    copied = loaders.dataset_from_npz_bytes(blob, **kwargs)
    viewed = loaders.dataset_from_npz_bytes(blob, copy=False, **kwargs)
    assert_same(viewed, copied)
    assert copied.features.flags.writeable and not viewed.features.flags.writeable
    assert np.shares_memory(viewed.features, np.frombuffer(blob, np.uint8))
    buffer = io.BytesIO()  # compressed members are decoded (copied) as before
    np.savez_compressed(buffer, features=ds.features, targets=ds.targets)
    packed = loaders.dataset_from_npz_bytes(buffer.getvalue(), copy=False, **kwargs)
    assert_same(packed, copied)
