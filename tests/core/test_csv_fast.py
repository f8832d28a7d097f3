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
    "\ufeffa,label\n1,0\n2,1\n",  # a byte-order mark
    "a,label\r1,0\r2,1\r",  # old Mac line ends
    "a,label\n 1.5 ,0\n+.5,1\n",  # spaces around a number, a bare fraction
    "a,label\n1,caf\u00e9\n2,th\u00e9\n",  # class names beyond ASCII
    "a\x0c,label\n1,0\n2,1\n",  # a line-break character of str.splitlines in the header
    "a,label\n1,0\n2,1",  # no final newline
    "a,b,label\n1,2,0\n,,\n3,4,1\n",  # a line of delimiters only
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


NOT_UTF8 = [b"a,label\n1,0\n2,\xff\n", b"a\xff,label\n1,0\n2,1\n", b"a,label\n1\xff,0\n2,1\n"]


@pytest.mark.parametrize("content", NOT_UTF8)
def test_bytes_that_are_not_utf8_agree(monkeypatch: pytest.MonkeyPatch, content: bytes) -> None:
    """The fast path reads bytes without decoding the file first: a byte that is not
    UTF-8 anywhere still gets the slow path's error naming its offset."""
    kwargs: dict[str, Any] = {"content": content, "target": "label", "task": "classification"}
    with pytest.raises(DatasetError, match="not UTF-8") as fast:
        loaders.dataset_from_csv(name="t", **kwargs)
    with pytest.raises(DatasetError) as slow_error:
        slow(monkeypatch, name="t", **kwargs)
    assert fast.value.message == slow_error.value.message


def test_columns_chunked_differently_are_copied_column_by_column() -> None:
    pa = pytest.importorskip("pyarrow")
    from core.csv_fast import _matrix

    table = pa.table(
        {
            "c0": pa.chunked_array([[1.0, 2.0], [3.0]]),
            "c1": pa.chunked_array([[4.0], [5.0, 6.0]]),
            "c2": pa.chunked_array([[7.0, 8.0], [9.0]]),
        }
    )
    out = _matrix(table, [0, 1])
    assert out is not None and out.flags.c_contiguous
    assert out.tolist() == [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]
    assert _matrix(pa.table({"c0": [1.0, float("inf")]}), [0]) is None


def test_a_large_plain_file_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many blocks of the reader (its chunks), a byte-order mark and CRLF line ends."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30_000, 3))
    rows = [f"{a!r},{b!r},{c!r},{k % 4}" for k, (a, b, c) in enumerate(x.tolist())]
    text = "\ufeffa,b,c,label\r\n" + "\r\n".join(rows) + "\r\n"
    calls = []
    original = loaders.fast_csv
    monkeypatch.setattr(loaders, "fast_csv", lambda *a: calls.append(1) or original(*a))
    fast_result, slow_result = both(monkeypatch, text, "label", "classification")
    assert calls and not isinstance(fast_result, str)
    assert_same(fast_result, slow_result)
    assert fast_result.features.tobytes() == x.tobytes()


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


def parse_outcome(content: Any) -> Any:
    try:
        return loaders.dataset_from_csv(
            content=content, target="label", task="classification", name="t"
        )
    except DatasetError as exc:
        return exc.message


@pytest.mark.parametrize("content", [text.encode() for text in CASES] + NOT_UTF8 + [b""])
def test_a_file_given_by_its_path_parses_as_its_bytes(tmp_path: Any, content: bytes) -> None:
    """An upload's file is parsed where it lies (the offload process does not read it
    into memory first): the same datasets and the same errors as from its bytes."""
    path = tmp_path / "upload.csv"
    path.write_bytes(content)
    assert_same(parse_outcome(path), parse_outcome(content))


def test_a_plain_file_is_parsed_from_its_path_without_reading_it_whole(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Arrow reads the file in blocks; only the slow path reads the whole file. The scan
    for quotes goes block by block too: a quote in a later block still sends the file
    to the slow path."""
    import pathlib

    from core import csv_fast

    monkeypatch.setattr(csv_fast, "_SCAN_BYTES", 16)
    whole_reads = []
    original = pathlib.Path.read_bytes
    monkeypatch.setattr(
        pathlib.Path, "read_bytes", lambda self: whole_reads.append(self) or original(self)
    )
    rows = "".join(f"{k}.5,{k % 3}\n" for k in range(200))
    plain = tmp_path / "plain.csv"
    plain.write_bytes(f"\ufeffa,label\n{rows}".encode())
    ds = parse_outcome(plain)
    assert whole_reads == [] and ds.features[:, 0].tolist() == [k + 0.5 for k in range(200)]
    quoted = tmp_path / "quoted.csv"
    quoted.write_bytes(f'a,label\n{rows}"7",1\n'.encode())
    assert_same(parse_outcome(quoted), parse_outcome(quoted.read_bytes()))
    assert whole_reads[0] == quoted
