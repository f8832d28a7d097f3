"""Properties of the experiment grid expander behind POST /experiments (issue 15,
item 9): whatever the grid (paths that exist or not, values of any JSON type), the
answer is a 202 with exactly the Cartesian product in order, or a 422 that names the
problem and creates nothing; never a 500."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from app.main import create_app
from tests.api.conftest import API, make_settings
from tests.support.specs import iris_spec

PATHS = [
    "optimizer",
    "optimizer.learning_rate",
    "optimizer.momentum",
    "optimizer.beta1",
    "optimizer.schedule",
    "optimizer.schedule.gamma",
    "training.seed",
    "training.batch_size",
    "training.epochs",
    "training.early_stopping.patience",
    "training.snapshots",
    "model.layers.0.units",
    "model.layers.0.activation",
    "model.layers.1.units",
    "model.layers.2.units",
    "model.layers",
    "model.init",
    "loss",
    "dtype",
    "name",
    "tags.k",
    "optimizer.nope",
    "training.seed.x",
    "model.layers.x.units",
    "model..layers",
    "",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 40)
    | st.floats(-1.0, 2.0, allow_nan=False)
    | st.sampled_from(["sgd", "adam", "relu", "tanh", "float32", "mse", "log", "x"])
)
optimizers = st.fixed_dictionaries(
    {"type": st.sampled_from(["sgd", "adam", "rmsprop", "adagrad", "nope"])},
    optional={"learning_rate": st.floats(1e-4, 0.5), "momentum": st.floats(0.0, 0.99)},
)
values = scalars | optimizers | st.lists(scalars, max_size=3)
#: Paths with values that always fit the base spec: the 202 side of the property.
VALID = {
    "optimizer": st.fixed_dictionaries(
        {"type": st.sampled_from(["sgd", "adam", "rmsprop", "adagrad"])},
        optional={"learning_rate": st.floats(1e-4, 0.5)},
    ),
    "optimizer.learning_rate": st.floats(1e-4, 1.0),
    "training.seed": st.integers(0, 2**31),
    "training.batch_size": st.none() | st.integers(1, 64),
    "training.epochs": st.integers(1, 5),
    "model.layers.0.units": st.integers(1, 16),
    "model.layers.0.activation": st.sampled_from(
        ["linear", "step", "sigmoid", "tanh", "arctan", "relu", "leaky_relu"]
    ),
    "dtype": st.sampled_from(["float32", "float64"]),
    "name": st.text(min_size=1, max_size=20),
}
valid_grids = st.lists(st.sampled_from(sorted(VALID)), max_size=3, unique=True).flatmap(
    lambda paths: st.fixed_dictionaries(
        {path: st.lists(VALID[path], min_size=1, max_size=2) for path in paths}
    )
)
any_grids = st.dictionaries(
    st.sampled_from(PATHS), st.lists(values, min_size=1, max_size=3), max_size=3
)
grids = (valid_grids | any_grids).filter(
    lambda grid: len(list(itertools.product(*grid.values()))) <= 8
)


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir: Path = tmp_path_factory.mktemp("grid-properties")
    with TestClient(create_app(make_settings(data_dir, executor="none"))) as client:
        yield client


def _counts(client: TestClient) -> tuple[int, int]:
    runs = client.get(f"{API}/runs", params={"limit": 1}).json()["total"]
    experiments = client.get(f"{API}/experiments").json()
    total = experiments["total"] if isinstance(experiments, dict) else len(experiments)
    return runs, total


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)
@given(grid=grids)
def test_a_grid_is_the_product_in_order_or_a_422_that_creates_nothing(
    idle: TestClient, grid: dict[str, list[Any]]
) -> None:
    before = _counts(idle)
    answer = idle.post(
        f"{API}/experiments", json={"name": "prop", "base": iris_spec(epochs=2), "grid": grid}
    )
    event(f"status {answer.status_code}")
    assert answer.status_code in (202, 422), answer.text[:500]
    if answer.status_code == 422:
        assert answer.json()["detail"], answer.text
        assert _counts(idle) == before, "a refused grid created something"
        return
    runs = answer.json()["runs"]
    combinations = list(itertools.product(*grid.values()))
    assert len(runs) == len(combinations)
    for run, combination in zip(runs, combinations, strict=True):
        assert list(run["params"]) == list(grid)
        assert list(run["params"].values()) == list(combination)
    assert _counts(idle) == (before[0] + len(runs), before[1] + 1)
    # each run is exactly the run POST /runs would make of its spec
    first = idle.get(f"{API}/runs/{runs[0]['id']}").json()
    assert first["experiment_id"] == answer.json()["id"]
