"""Built-in datasets: the shapes of API.md's table, fixed bits, and what each promises."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources

import numpy as np
import pytest

from core.data import Dataset
from core.datasets import BUILTIN_DATASETS, _load, load_builtin
from core.loaders import dataset_from_csv

# id → (task, n_samples, n_features, n_outputs, n_classes), as in API.md's table.
API_TABLE = {
    "iris": ("classification", 150, 4, 3, 3),
    "xor": ("classification", 4, 2, 2, 2),
    "blobs": ("classification", 200, 2, 2, 2),
    "moons": ("classification", 400, 2, 2, 2),
    "circles": ("classification", 400, 2, 2, 2),
    "spiral": ("classification", 600, 2, 3, 3),
    "sine": ("regression", 400, 1, 1, None),
}


def test_every_builtin_of_the_api_table_is_listed():
    assert set(BUILTIN_DATASETS) == set(API_TABLE)


@pytest.mark.parametrize("name", sorted(API_TABLE))
def test_builtin_shape_matches_the_api_table_and_its_info(name):
    task, n_samples, n_features, n_outputs, n_classes = API_TABLE[name]
    ds = load_builtin(name)
    info = BUILTIN_DATASETS[name]
    assert isinstance(ds, Dataset)
    assert ds.name == name
    assert (ds.task, ds.n_samples, ds.n_features, ds.n_outputs, ds.n_classes) == (
        task,
        n_samples,
        n_features,
        n_outputs,
        n_classes,
    )
    assert ds.shape() == info.shape()
    assert ds.feature_names == list(info.feature_names)
    assert ds.class_names == (list(info.class_names) if info.class_names else None)
    assert info.description
    assert ds.features.dtype == np.float64 and np.isfinite(ds.features).all()
    if task == "classification":
        assert ds.targets.dtype == np.int64 and ds.targets.shape == (n_samples,)
        counts = np.bincount(ds.targets, minlength=n_classes)
        assert (counts == n_samples // n_classes).all()
    else:
        assert ds.targets.dtype == np.float64 and ds.targets.shape == (n_samples, 1)


@pytest.mark.parametrize("name", sorted(API_TABLE))
def test_builtin_is_deterministic(name):
    cached = load_builtin(name)
    fresh = _load.__wrapped__(name)  # generated again, bypassing the cache
    assert fresh.features.tobytes() == cached.features.tobytes()
    assert fresh.targets.tobytes() == cached.targets.tobytes()
    assert load_builtin(name) is cached


def test_cached_builtin_arrays_are_read_only():
    ds = load_builtin("xor")
    with pytest.raises(ValueError):
        ds.features[0, 0] = 5.0


def test_unknown_builtin_is_a_key_error():
    with pytest.raises(KeyError):
        load_builtin("mnist")


def test_iris_column_means_and_class_counts():
    ds = load_builtin("iris")
    assert ds.feature_names == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert ds.class_names == ["setosa", "versicolor", "virginica"]
    assert np.round(ds.features.mean(axis=0), 3).tolist() == [5.843, 3.057, 3.758, 1.199]
    assert np.bincount(ds.targets).tolist() == [50, 50, 50]


def test_iris_is_fishers_version_with_per_species_means():
    """Rows 35 and 38 as in Fisher (1936) and R's ``iris``, not UCI's two typos."""
    ds = load_builtin("iris")
    assert ds.features[34].tolist() == [4.9, 3.1, 1.5, 0.2]
    assert ds.features[37].tolist() == [4.9, 3.6, 1.4, 0.1]
    means = [ds.features[ds.targets == k].mean(axis=0).round(3).tolist() for k in range(3)]
    assert means == [
        [5.006, 3.428, 1.462, 0.246],
        [5.936, 2.770, 4.260, 1.326],
        [6.588, 2.974, 5.552, 2.026],
    ]
    assert np.round(ds.features.std(axis=0, ddof=1), 7).tolist() == [
        0.8280661,
        0.4358663,
        1.7652982,
        0.7622377,
    ]


def test_xor_is_the_truth_table():
    ds = load_builtin("xor")
    assert ds.features.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert ds.targets.tolist() == [0, 1, 1, 0]


def test_blobs_are_linearly_separable_with_a_clear_margin():
    ds = load_builtin("blobs")
    features, targets = ds.features, ds.targets
    direction = features[targets == 1].mean(axis=0) - features[targets == 0].mean(axis=0)
    projection = features @ (direction / np.linalg.norm(direction))
    gap = projection[targets == 1].min() - projection[targets == 0].max()
    assert gap > 1.0


def test_blobs_perceptron_converges():
    """The perceptron rule finds a separating line in a few epochs (it would cycle if not)."""
    ds = load_builtin("blobs")
    inputs = np.column_stack([ds.features, np.ones(ds.n_samples)])
    signs = 2 * ds.targets - 1
    weights = np.zeros(3)
    for _ in range(20):
        mistakes = 0
        for x, s in zip(inputs, signs, strict=True):
            if s * (x @ weights) <= 0:
                weights += s * x
                mistakes += 1
        if mistakes == 0:
            break
    assert (np.sign(inputs @ weights) == signs).all()


def test_circles_disc_lies_inside_the_ring():
    ds = load_builtin("circles")
    radius = np.hypot(ds.features[:, 0], ds.features[:, 1])
    assert radius[ds.targets == 0].max() <= 0.5
    assert radius[ds.targets == 1].min() >= 0.8


def test_moons_are_two_interleaved_noisy_half_circles():
    """Upper arc centred on (0, 0), lower arc on (1, 0.5); mean height ±2/π about it."""
    ds = load_builtin("moons")
    upper, lower = ds.features[ds.targets == 0], ds.features[ds.targets == 1]
    assert upper.mean(axis=0) == pytest.approx([0.0, 2 / np.pi], abs=0.03)
    assert lower.mean(axis=0) == pytest.approx([1.0, 0.5 - 2 / np.pi], abs=0.03)
    distance = np.hypot(upper[:, 0], upper[:, 1])
    assert abs(distance.mean() - 1.0) < 0.02 and 0.05 < distance.std() < 0.15


def test_spiral_arms_reach_radius_one():
    ds = load_builtin("spiral")
    radius = np.hypot(ds.features[:, 0], ds.features[:, 1])
    assert radius.max() == pytest.approx(1.0)
    assert radius.min() == 0.0


def test_sine_is_sin_plus_small_noise_on_minus_pi_to_pi():
    ds = load_builtin("sine")
    x, y = ds.features[:, 0], ds.targets[:, 0]
    assert x.min() >= -np.pi and x.max() <= np.pi
    residual = y - np.sin(x)
    assert abs(residual.mean()) < 0.01
    assert 0.04 < residual.std() < 0.06


def _train_last_epoch(name: str, layers: list[dict]):
    from core.specs import RunSpec, check_against_dataset
    from core.training import train

    ds = load_builtin(name)
    spec = RunSpec.model_validate(
        {
            "dataset": name,
            "model": {"layers": layers},
            "optimizer": {"type": "adam", "learning_rate": 0.01},
            "training": {"epochs": 300, "batch_size": 32, "validation_split": 0.2},
            "dtype": "float64",
        }
    )
    return train(check_against_dataset(spec, ds.shape()), ds).history[-1]


@pytest.mark.slow
def test_spiral_is_learnable_by_a_two_hidden_layer_net():
    last = _train_last_epoch(
        "spiral",
        [
            {"units": 64, "activation": "relu"},
            {"units": 64, "activation": "relu"},
            {"units": 3, "activation": "softmax"},
        ],
    )
    assert last.train_accuracy >= 0.9


@pytest.mark.slow
def test_sine_is_learnable_to_a_small_validation_mse():
    last = _train_last_epoch(
        "sine",
        [
            {"units": 32, "activation": "tanh"},
            {"units": 32, "activation": "tanh"},
            {"units": 1, "activation": "linear"},
        ],
    )
    assert last.val_loss < 0.02


def test_iris_is_read_without_arrow_and_with_arrows_bits() -> None:
    """A worker's first iris run paid pyarrow's (and pandas') import: 0.3 s for 150
    rows. The built-in set is read by Python's reader, with the same bits."""
    probe = (
        "import sys; from core.datasets import load_builtin; load_builtin('iris'); "
        "print('pyarrow' in sys.modules, 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    content = resources.files("core.datasets").joinpath("iris.csv").read_bytes()
    arrow = dataset_from_csv(content=content, target="species", task="classification", name="iris")
    builtin = load_builtin("iris")
    assert arrow.features.tobytes() == builtin.features.tobytes()
    assert arrow.targets.tobytes() == builtin.targets.tobytes()
    assert (arrow.class_names, arrow.feature_names) == (builtin.class_names, builtin.feature_names)
