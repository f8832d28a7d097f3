"""The ``.npz`` writer (``core.serialize.save_npz``): a ZIP written without ``zipfile``,
so every reader must take it as it takes ``np.savez``'s, and snapshots of one run
encode what they share once."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from core import serialize
from core.datasets import load_builtin
from core.serialize import TrainedModel, load_npz, save_npz, stored_zip
from core.training import train

from .conftest import make_spec

ARRAYS = {
    "weights": np.arange(12, dtype=np.float32).reshape(3, 4),
    "big": np.linspace(-1.0, 1.0, 70_000),  # > 64 KiB: sizes and offsets past 16 bits
    "empty": np.zeros((0, 3)),
    "text": np.array("é ✓ naïve", dtype=np.str_),
    "names": np.array(["a", "bé"], dtype=np.str_),
    "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    "ints": np.array([1, -2, 3], dtype=np.int64),
}


def _same_as_numpy(data: bytes) -> None:
    reference = io.BytesIO()
    np.savez(reference, **ARRAYS)
    reference.seek(0)
    with np.load(io.BytesIO(data), allow_pickle=False) as ours, np.load(reference) as theirs:
        assert ours.files == theirs.files
        for name in theirs.files:
            assert ours[name].dtype == theirs[name].dtype, name
            np.testing.assert_array_equal(ours[name], theirs[name])


def test_an_npz_reads_back_with_numpy_and_zipfile_checks_every_crc() -> None:
    data = save_npz(ARRAYS)
    _same_as_numpy(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None  # every member's CRC-32 and size
        assert [info.compress_type for info in archive.infolist()] == [zipfile.ZIP_STORED] * 7
    assert set(load_npz(data)) == set(ARRAYS)


def test_the_same_arrays_give_the_same_bytes() -> None:
    assert save_npz(ARRAYS) == save_npz(dict(ARRAYS))  # no clock in the archive


def test_a_non_ascii_member_name_is_flagged_utf8() -> None:
    data = stored_zip([("poids é.npy", b"x")])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["poids é.npy"]
        assert archive.read("poids é.npy") == b"x"


def test_past_the_limit_zipfile_writes_the_archive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serialize, "STORED_ZIP_LIMIT", 100)
    used: list[int] = []
    real = serialize.stored_zip
    monkeypatch.setattr(serialize, "stored_zip", lambda members: used.append(1) or real(members))
    data = save_npz(ARRAYS)
    assert not used  # the archive went to zipfile (ZIP64 when it needs it)
    _same_as_numpy(data)


@pytest.fixture(scope="module")
def snapshots() -> list[TrainedModel]:
    data = load_builtin("iris")
    spec = make_spec(data, training={"epochs": 6, "batch_size": 16, "snapshots": [2, 4, 6]})
    taken: list[TrainedModel] = []
    train(spec, data, on_snapshot=lambda _epoch, model: taken.append(model))
    return taken


def test_a_runs_snapshots_share_their_encoded_members_and_keep_their_own_weights(
    snapshots: list[TrainedModel],
) -> None:
    first, *rest = snapshots
    files = [model.to_npz_bytes() for model in snapshots]
    assert all(model._fixed_members is first._fixed_members for model in rest)
    assert len(first._fixed_members) == 8  # format spec task 2×names dataset mean std
    for model, data in zip(snapshots, files, strict=True):
        loaded = TrainedModel.from_npz_bytes(data)
        assert loaded.spec == model.spec and loaded.feature_names == model.feature_names
        np.testing.assert_array_equal(loaded.mean, model.mean)
        for (w, b), (w2, b2) in zip(model.layers, loaded.layers, strict=True):
            np.testing.assert_array_equal(w, w2)
            np.testing.assert_array_equal(b, b2)
    assert len(set(files)) == 3, "each snapshot has its own weights"


def test_a_model_of_its_own_encodes_its_own_members(snapshots: list[TrainedModel]) -> None:
    copy = TrainedModel.from_npz_bytes(snapshots[0].to_npz_bytes())
    assert copy._fixed_members is not snapshots[0]._fixed_members
    assert copy.to_npz_bytes() == snapshots[0].to_npz_bytes()


@pytest.mark.parametrize(
    "array",
    [
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        np.arange(10.0)[::2],  # not contiguous
        np.array(3.5),
        np.array("texte é", dtype=np.str_),
        np.zeros(2, dtype=[("x", "<f8"), ("n", "<i4")]),  # structured: a list as descr
        np.array([True, False]),
    ],
    ids=["c", "fortran", "strided", "0-d", "text", "structured", "bool"],
)
def test_an_arrays_npy_bytes_are_np_saves(array: np.ndarray) -> None:
    reference = io.BytesIO()
    np.save(reference, array, allow_pickle=False)
    assert serialize.npy_bytes(array) == reference.getvalue()
    assert serialize.npy_bytes(array) == reference.getvalue()  # the cached header too
