"""Large training sets take other paths through the same arithmetic: the network's
inputs built in chunks, and each mini-batch's rows gathered instead of a shuffled copy
of the whole epoch. Both must give the small-set path's bits exactly."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import core.data as data_module
import core.preparation as preparation_module
import core.training as training_module
from core.checkpoint import Checkpoint
from core.data import Dataset, network_inputs, standardization
from core.datasets import load_builtin
from core.errors import DatasetError
from core.training import TrainResult, train

from .conftest import make_spec, pause_at


def iris_run(dtype: str, **training: Any) -> Any:
    data = load_builtin("iris")
    spec = make_spec(
        data,
        dtype=dtype,
        optimizer={"type": "adam", "learning_rate": 0.02},
        training={
            "epochs": 6,
            "batch_size": 16,
            "seed": 5,
            "validation_split": 0.2,
            "standardize": True,
            **training,
        },
    )
    return spec, data


def assert_same_result(a: TrainResult, b: TrainResult) -> None:
    for (w1, b1), (w2, b2) in zip(a.model.layers, b.model.layers, strict=True):
        assert w1.tobytes() == w2.tobytes() and b1.tobytes() == b2.tobytes()
    assert a.history == b.history  # dataclasses: every metric, exactly


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gathered_mini_batches_give_the_epoch_copys_bits(
    dtype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, data = iris_run(dtype)
    copied = train(spec, data)
    monkeypatch.setattr(preparation_module, "EPOCH_COPY_MAX_BYTES", 0)
    monkeypatch.setattr(data_module, "INPUT_CHUNK", 7)  # many chunks, a short last one
    gathered = train(spec, data)
    assert_same_result(gathered, copied)


def test_the_large_set_path_is_taken_over_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    spec, data = iris_run("float32")
    taken: list[bool] = []
    original = training_module._Run._batch_source

    def spy(self: Any, order: Any) -> Any:
        taken.append(self.batch_features is not None)
        return original(self, order)

    monkeypatch.setattr(training_module._Run, "_batch_source", spy)
    train(spec, data)
    monkeypatch.setattr(preparation_module, "EPOCH_COPY_MAX_BYTES", 0)
    train(spec, data)
    assert taken == [False] * 6 + [True] * 6


def test_a_large_class_set_keeps_labels_not_a_one_hot_matrix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The one-hot targets of 10 classes take 40 bytes a row, more than 8 float32
    features; a large set keeps the labels and looks its targets up per mini-batch."""
    from core.preparation import PreparedRun

    spec, data = iris_run("float32")
    small = PreparedRun(spec, data, None, None, snapshotting=False)
    assert small.train_part.targets is not None and small.epoch_targets is not None
    monkeypatch.setattr(preparation_module, "EPOCH_COPY_MAX_BYTES", 0)
    large = PreparedRun(spec, data, None, None, snapshotting=False)
    assert large.train_part.targets is None and large.epoch_features is None
    assert large.val_part is not None and large.val_part.targets is None
    for part, known in ((large.train_part, small.train_part), (large.val_part, small.val_part)):
        assert known is not None and known.targets is not None
        assert part.targets_of(0, 50).tobytes() == known.targets[:50].tobytes()


def test_a_pause_inside_an_epoch_resumes_to_the_same_bits_when_gathering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(training_module, "POLL_SECONDS", 0.0)  # poll after every batch
    monkeypatch.setattr(preparation_module, "EPOCH_COPY_MAX_BYTES", 0)
    spec, data = iris_run("float32")
    straight = train(spec, data)
    paused = train(spec, data, should_stop=pause_at(8 * 2 + 3))
    assert paused.checkpoint is not None and paused.checkpoint.batch > 0
    checkpoint = Checkpoint.from_bytes(paused.checkpoint.to_bytes())
    assert_same_result(train(spec, data, resume_from=checkpoint), straight)


@pytest.mark.parametrize(
    "model",
    [
        [{"units": 1, "activation": "tanh"}],  # one unit, levels ±1 (2 classes)
        [{"units": 6, "activation": "relu"}, {"units": 2, "activation": "softmax"}],
    ],
)
def test_two_class_and_regression_sets_gather_the_same_bits(
    model: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    features = np.random.default_rng(2).normal(size=(90, 3))
    two = Dataset(
        "two", "classification", features, (features[:, 0] > 0).astype(np.int64), ["n", "p"], []
    )
    values = Dataset("reg", "regression", features, features[:, :2] * 2.0, None, [])
    for data, layers, loss in (
        (two, model, None),
        (values, [{"units": 2, "activation": "linear"}], "mse"),
    ):
        fields: dict[str, Any] = {"model": {"layers": layers}, "dtype": "float32"}
        fields["training"] = {"epochs": 4, "batch_size": 8, "seed": 1, "validation_split": 0.25}
        if loss:
            fields["loss"] = loss
        spec = make_spec(data, **fields)
        with monkeypatch.context() as m:
            copied = train(spec, data)
            m.setattr(preparation_module, "EPOCH_COPY_MAX_BYTES", 0)
            assert_same_result(train(spec, data), copied)


def test_without_shuffling_the_rows_are_read_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    spec, data = iris_run("float64", shuffle=False)
    plain = train(spec, data)
    monkeypatch.setattr(preparation_module, "EPOCH_COPY_MAX_BYTES", 0)
    assert_same_result(train(spec, data), plain)


def test_chunked_inputs_are_the_whole_arrays_arithmetic(monkeypatch: pytest.MonkeyPatch) -> None:
    data = load_builtin("iris")
    mean, std = standardization(data.features)
    rows = np.random.default_rng(0).permutation(len(data.features))[:100]
    for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
        whole = np.ascontiguousarray((data.features - mean) / std, dtype=dtype)
        plain = np.ascontiguousarray(data.features, dtype=dtype)
        monkeypatch.setattr(data_module, "INPUT_CHUNK", 9)
        assert network_inputs(data, mean, std, dtype, rows=rows).tobytes() == whole[rows].tobytes()
        assert network_inputs(data, None, None, dtype).tobytes() == plain.tobytes()


def test_a_value_out_of_range_is_named_by_its_row_in_the_dataset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    features = np.ones((20, 2))
    features[13, 1] = 1e300
    data = Dataset("big", "regression", features, np.zeros((20, 1)), None, ["a", "b"])
    monkeypatch.setattr(data_module, "INPUT_CHUNK", 4)
    rows = np.array([3, 13, 5])
    with pytest.raises(DatasetError, match=r"features\[13\]\[1\] = 1e\+300 is out of range"):
        network_inputs(data, None, None, np.dtype(np.float32), rows=rows)


@pytest.mark.parametrize("n_columns", [1, 2, 3, 8, 64])
def test_chunked_moments_are_numpys_bit_for_bit(
    n_columns: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mean and std of a large training set are summed chunk by chunk (no gathered
    copy); NumPy's own reduction of the gathered rows is the reference, on any shape."""
    rng = np.random.default_rng(n_columns)
    scales = rng.uniform(0.1, 1e3, size=n_columns)
    features = rng.normal(size=(3_007, n_columns)) * scales + rng.normal(size=n_columns) * 10
    rows = rng.permutation(3_007)[:2_999]
    reference = features[rows]
    monkeypatch.setattr(data_module, "INPUT_CHUNK", 64)
    for chunk_rows in (rows, rows[:65], rows[:64]):
        mean, std = standardization(features, chunk_rows)
        expected = features[chunk_rows]
        assert mean.tobytes() == expected.mean(axis=0).tobytes()
        assert std.tobytes() == expected.std(axis=0).tobytes()
    assert standardization(features, rows)[0].tobytes() == reference.mean(axis=0).tobytes()


def test_chunked_moments_keep_the_overflow_rescue(monkeypatch: pytest.MonkeyPatch) -> None:
    features = np.random.default_rng(0).normal(size=(300, 3))
    features[:, 1] *= 1e300
    rows = np.arange(299, -1, -1)
    monkeypatch.setattr(data_module, "INPUT_CHUNK", 16)
    mean, std = standardization(features, rows)
    assert np.isfinite(mean).all() and np.isfinite(std).all()
    whole_mean, whole_std = standardization(features[rows])
    assert mean.tobytes() == whole_mean.tobytes() and std.tobytes() == whole_std.tobytes()


def test_float64_rows_as_they_are_are_checked_not_copied() -> None:
    """The submission check reads every row of an upload: for a float64 run without
    standardisation the stored array is already the network's input."""
    data = load_builtin("iris")
    assert network_inputs(data, None, None, np.dtype(np.float64)) is data.features
    features = data.features.copy()
    features[7, 2] = np.inf
    bad = Dataset("bad", "classification", features, data.targets, data.class_names, [])
    with pytest.raises(DatasetError, match=r"features\[7\]\[2\] = inf"):
        network_inputs(bad, None, None, np.dtype(np.float64))
