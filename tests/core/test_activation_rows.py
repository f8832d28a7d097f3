"""ReLU and sigmoid clamp against a broadcast row of zeros, not a scalar (NumPy's
scalar loop for maximum/minimum is not vectorised): the same bits as the scalar form,
signed zeros, NaN and infinities included."""

from __future__ import annotations

import numpy as np
import pytest

from core.activations import Scratch, constant_row, get_activation

SPECIAL = [-0.0, 0.0, np.nan, -np.nan, np.inf, -np.inf, 1e-45, -1e-45, 3.5, -3.5]


def matrix(dtype: type) -> np.ndarray:
    values = np.random.default_rng(0).normal(size=(37, 13)).astype(dtype)
    values.flat[: len(SPECIAL)] = SPECIAL
    return values


def bits(values: np.ndarray) -> np.ndarray:
    return values.view(np.uint32 if values.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_is_maximum_with_zero_bit_for_bit(dtype: type) -> None:
    z = matrix(dtype)
    expected = np.maximum(z, 0)
    y = get_activation("relu").forward(z.copy(), np.empty_like(z), Scratch.like(z))
    assert np.array_equal(bits(y), bits(expected))
    assert not np.signbit(y[np.isfinite(y)]).any(), "no -0 out of relu"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_unchanged_bit_for_bit(dtype: type) -> None:
    z = matrix(dtype)
    with np.errstate(all="ignore"):
        expected = np.exp(np.minimum(z, 0)) / (1 + np.exp(-np.abs(z)))
        y = get_activation("sigmoid").forward(z, np.empty_like(z), Scratch.like(z))
    assert np.array_equal(bits(y), bits(expected.astype(dtype)))


def test_constant_rows_are_shared_and_read_only() -> None:
    row = constant_row(0.0, np.dtype(np.float32), 13)
    assert row is constant_row(0.0, np.dtype(np.float32), 13)
    assert row.dtype == np.float32 and row.shape == (13,) and not row.flags.writeable
    with pytest.raises(ValueError):
        row[0] = 1
