"""core.grid: expanding a grid over a base spec, run names, summaries over seeds."""

from __future__ import annotations

import copy
import math
import statistics
from itertools import product
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.grid import (
    Best,
    GridError,
    Stats,
    expand_grid,
    grid_size,
    pick_best,
    run_name,
    summarize_over_seeds,
)
from core.specs import RunSpec

BASE: dict[str, Any] = {
    "dataset": "moons",
    "model": {
        "layers": [{"units": 8, "activation": "relu"}, {"units": 2, "activation": "softmax"}]
    },
    "optimizer": {"type": "sgd", "learning_rate": 0.1},
    "training": {"epochs": 5, "seed": 0},
}

#: paths that exist in BASE, each with a strategy of values
PATHS: dict[str, st.SearchStrategy[Any]] = {
    "training.seed": st.integers(0, 1000),
    "training.batch_size": st.one_of(st.none(), st.integers(1, 64)),
    "optimizer.learning_rate": st.floats(1e-4, 1.0),
    "model.layers.0.units": st.integers(1, 32),
    "model.layers.1.activation": st.sampled_from(["softmax", "sigmoid"]),
    "dtype": st.sampled_from(["float32", "float64"]),
}


@st.composite
def grids(draw: st.DrawFn) -> dict[str, list[Any]]:
    keys = draw(st.lists(st.sampled_from(sorted(PATHS)), min_size=1, max_size=4, unique=True))
    return {key: draw(st.lists(PATHS[key], min_size=1, max_size=3)) for key in keys}


def _get(spec: dict[str, Any], path: str) -> Any:
    node: Any = spec
    for segment in path.split("."):
        node = node[int(segment)] if isinstance(node, list) else node[segment]
    return node


@settings(max_examples=60, deadline=None)
@given(grids())
def test_the_product_in_order_last_key_fastest(grid: dict[str, list[Any]]) -> None:
    base = copy.deepcopy(BASE)
    before = copy.deepcopy(grid)
    points = expand_grid(base, grid)
    assert len(points) == grid_size(grid) == math.prod(len(v) for v in grid.values())
    expected = list(product(*grid.values()))
    for point, combination in zip(points, expected, strict=True):
        assert list(point.params) == list(grid)  # key order
        assert tuple(point.params.values()) == combination
        for path, value in point.params.items():
            assert _get(point.spec, path) == value
        # everything else is the base's
        assert point.spec["dataset"] == "moons"
        RunSpec.model_validate(point.spec)
    assert base == BASE and grid == before  # nothing mutated


def test_nothing_is_shared_between_points_or_with_the_inputs() -> None:
    grid = {
        "optimizer": [{"type": "adam", "schedule": {"type": "constant"}}],
        "training.seed": [0, 1],
    }
    points = expand_grid(BASE, grid)
    points[0].spec["optimizer"]["schedule"]["type"] = "changed"
    points[0].params["optimizer"]["type"] = "changed"
    points[0].spec["model"]["layers"][0]["units"] = 99
    assert points[1].spec["optimizer"]["schedule"]["type"] == "constant"
    assert grid["optimizer"][0] == {"type": "adam", "schedule": {"type": "constant"}}
    assert BASE["model"]["layers"][0]["units"] == 8


def test_a_later_key_overrides_inside_every_earlier_value() -> None:
    grid = {
        "optimizer": [{"type": "sgd", "momentum": 0.9}, {"type": "adam", "learning_rate": 0.5}],
        "optimizer.learning_rate": [0.01, 0.001],
    }
    points = expand_grid(BASE, grid)
    assert [p.spec["optimizer"] for p in points] == [
        {"type": "sgd", "momentum": 0.9, "learning_rate": 0.01},
        {"type": "sgd", "momentum": 0.9, "learning_rate": 0.001},
        {"type": "adam", "learning_rate": 0.01},
        {"type": "adam", "learning_rate": 0.001},
    ]
    # the other order: the whole optimizer replaces the learning rate set before it
    reverse = expand_grid(
        BASE, {"optimizer.learning_rate": [0.01], "optimizer": [{"type": "adam"}]}
    )
    assert reverse[0].spec["optimizer"] == {"type": "adam"}


def test_missing_spec_objects_are_created() -> None:
    base = {key: value for key, value in BASE.items() if key != "training"}
    (point,) = expand_grid(
        base, {"training.batch_size": [4], "training.early_stopping.patience": [3]}
    )
    assert point.spec["training"] == {"batch_size": 4, "early_stopping": {"patience": 3}}
    RunSpec.model_validate(point.spec)
    (normal,) = expand_grid(
        {**BASE, "model": {**BASE["model"], "init": {"type": "normal"}}}, {"model.init.std": [0.1]}
    )
    assert normal.spec["model"]["init"] == {"type": "normal", "std": 0.1}


def test_an_earlier_key_can_make_room_for_a_later_one() -> None:
    layers = [{"units": 4, "activation": "tanh"}] * 3
    points = expand_grid(BASE, {"model.layers": [layers], "model.layers.2.units": [2]})
    assert points[0].spec["model"]["layers"][2] == {"units": 2, "activation": "tanh"}


@pytest.mark.parametrize(
    ("grid", "path", "words"),
    [
        ({"model.layers.5.units": [3]}, "model.layers.5.units", "2 entries"),
        ({"training.bogus": [1]}, "training.bogus", "no field 'bogus'"),
        ({"bogus": [1]}, "bogus", "no field 'bogus'"),
        ({"model.layers.x.units": [1]}, "model.layers.x.units", "not an index"),
        ({"dataset.name": [1]}, "dataset.name", "plain value"),
        ({"model.init.std": [0.1]}, "model.init.std", "not set"),
        ({"model.init": ["auto"], "model.init.std": [0.1]}, "model.init.std", "plain value"),
        ({"training.seed": []}, "training.seed", "empty"),
        ({"training.seed": 3}, "training.seed", "must be a list"),
        ({"training..seed": [1]}, "training..seed", "dotted path"),
        (
            {"optimizer": [{"type": "adam"}], "optimizer.momentum": [0.9]},
            "optimizer.momentum",
            "no field",
        ),
    ],
)
def test_paths_that_do_not_exist_are_named(grid: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(GridError, match=words) as caught:
        expand_grid(BASE, grid)
    assert caught.value.path == path == caught.value.field


def test_a_path_missing_in_some_combinations_names_the_combination() -> None:
    grid = {"optimizer": [{"type": "sgd"}, {"type": "adam"}], "optimizer.momentum": [0.9]}
    with pytest.raises(GridError, match=r"no field 'momentum'.*optimizer=adam\(\)") as caught:
        expand_grid(BASE, grid)
    assert caught.value.path == "optimizer.momentum"


def test_a_union_without_a_value_cannot_be_entered() -> None:
    base = {key: value for key, value in BASE.items() if key != "optimizer"}
    with pytest.raises(GridError, match="give it"):
        expand_grid(base, {"optimizer.learning_rate": [0.1]})
    with pytest.raises(GridError, match="type 'nope'"):
        expand_grid({**BASE, "optimizer": {"type": "nope"}}, {"optimizer.learning_rate": [0.1]})


def test_an_empty_grid_is_the_base_alone() -> None:
    (point,) = expand_grid(BASE, {})
    assert point.params == {} and point.spec == BASE


def test_run_names() -> None:
    params = {
        "optimizer": {"type": "sgd", "momentum": 0.9, "learning_rate": 0.1},
        "training.seed": 2,
        "training.batch_size": None,
        "training.shuffle": False,
        "model.layers": [
            {"units": 16, "activation": "relu"},
            {"units": 3, "activation": "softmax"},
        ],
        "optimizer.schedule": {"type": "step", "step_size": 100, "gamma": 0.5},
        "training.early_stopping": {"patience": 5},
        "optimizer.learning_rate": 1e-05,
    }
    assert run_name("optimizers on moons", params, max_length=1000) == (
        "optimizers on moons · optimizer=sgd(lr=0.1, momentum=0.9), training.seed=2, "
        "training.batch_size=null, training.shuffle=false, model.layers=[16 relu, 3 softmax], "
        "optimizer.schedule=step(step_size=100, gamma=0.5), training.early_stopping=(patience=5), "
        "optimizer.learning_rate=1e-05"
    )
    assert run_name("plain", {}) == "plain"
    long = run_name("x" * 190, {"training.seed": 12345})
    assert len(long) == 200 and long.endswith("…")


@given(st.lists(st.floats(0.01, 10.0), min_size=1, max_size=6))
def test_summary_statistics_over_seeds(losses: list[float]) -> None:
    runs = [
        (
            {"optimizer": {"type": "sgd"}, "training.seed": seed},
            {"val_loss": v, "val_accuracy": 0.5},
        )
        for seed, v in enumerate(losses)
    ]
    runs.append(
        (
            {"optimizer": {"type": "adam"}, "training.seed": 0},
            {"val_loss": 1.0, "val_accuracy": None},
        )
    )
    runs.append(({"optimizer": {"type": "adam"}, "training.seed": 1}, None))  # still queued
    sgd, adam = summarize_over_seeds(runs)
    assert sgd.params == {"optimizer": {"type": "sgd"}} and sgd.n == len(losses)
    assert sgd.val_loss is not None
    assert sgd.val_loss.mean == pytest.approx(statistics.fmean(losses))
    assert sgd.val_loss.min == min(losses) and sgd.val_loss.max == max(losses)
    if len(losses) > 1:
        assert sgd.val_loss.std == pytest.approx(statistics.stdev(losses))
    else:
        assert sgd.val_loss.std is None
    assert adam.n == 1 and adam.val_accuracy is None
    assert adam.as_dict()["val_loss"] == {"mean": 1.0, "std": None, "min": 1.0, "max": 1.0}


def test_summary_groups_by_everything_but_the_seed() -> None:
    runs = [
        (
            {"optimizer.learning_rate": lr, "training.seed": seed},
            {"val_loss": lr + seed, "val_accuracy": 1.0},
        )
        for lr in (0.1, 0.01)
        for seed in (0, 1, 2)
    ]
    rows = summarize_over_seeds(runs)
    assert [row.params for row in rows] == [
        {"optimizer.learning_rate": 0.1},
        {"optimizer.learning_rate": 0.01},
    ]
    assert rows[0].val_loss == Stats(mean=1.1, std=1.0, min=0.1, max=2.1)
    assert rows[0].val_accuracy == Stats(mean=1.0, std=0.0, min=1.0, max=1.0)


def test_pick_best_by_val_loss_then_train_loss() -> None:
    runs = [
        ("a", {"val_loss": 0.5, "train_loss": 0.1}),
        ("b", {"val_loss": 0.3, "train_loss": 0.9}),
        ("c", None),
        ("d", {"val_loss": 0.3, "train_loss": 0.2}),
    ]
    assert pick_best(runs) == Best(run_id="b", metric="val_loss", value=0.3)  # first on a tie
    no_validation = [
        (1, {"val_loss": None, "train_loss": 0.4}),
        (2, {"val_loss": None, "train_loss": 0.2}),
    ]
    assert pick_best(no_validation) == Best(run_id=2, metric="train_loss", value=0.2)
    assert pick_best([("x", None)]) is None
    assert pick_best([("x", {"val_loss": float("nan"), "train_loss": 1.0})]) == Best(
        "x", "train_loss", 1.0
    )


OPTIMIZERS = st.fixed_dictionaries(
    {"type": st.sampled_from(["sgd", "adam", "rmsprop", "adagrad"])},
    optional={"learning_rate": st.floats(1e-4, 1.0), "l2": st.floats(0.0, 0.1)},
)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(OPTIMIZERS, min_size=1, max_size=4),
    st.lists(st.floats(1e-4, 1.0), min_size=1, max_size=3),
)
def test_a_learning_rate_key_overrides_every_optimizer(
    optimizers: list[dict[str, Any]], rates: list[float]
) -> None:
    points = expand_grid(BASE, {"optimizer": optimizers, "optimizer.learning_rate": rates})
    assert len(points) == len(optimizers) * len(rates)
    for point in points:
        chosen, rate = point.params["optimizer"], point.params["optimizer.learning_rate"]
        assert point.spec["optimizer"] == {**chosen, "learning_rate": rate}
        assert RunSpec.model_validate(point.spec).optimizer.learning_rate == rate
