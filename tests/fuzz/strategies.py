"""Hypothesis strategies for run specs: arbitrary JSON, and valid specs with mutations.

Random JSON alone rarely gets past the first required field, so most examples
start from a valid spec and change one to three things in it: a value replaced by
an arbitrary or a borderline one, a key dropped, an unknown key added.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

FINITE = st.floats(allow_nan=False, allow_infinity=False)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)

json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=16,
)

#: Values at or just past the documented edges, and names of the right family.
borderline = st.sampled_from(
    [
        0,
        1,
        -1,
        2,
        3,
        1000,
        10**6,
        2**63 - 1,
        2**63,
        2**64,
        -(2**63),
        0.0,
        -0.0,
        0.5,
        0.9,
        0.9000001,
        1.0,
        1e-320,
        1e308,
        -1e308,
        float("nan"),
        float("inf"),
        float("-inf"),
        True,
        False,
        None,
        "",
        " ",
        "0",
        "1e3",
        "linear",
        "step",
        "sigmoid",
        "tanh",
        "arctan",
        "relu",
        "leaky_relu",
        "softmax",
        "swish",
        "sgd",
        "adagrad",
        "rmsprop",
        "adam",
        "lbfgs",
        "auto",
        "he",
        "glorot",
        "normal",
        "zeros",
        "mse",
        "mae",
        "binary_cross_entropy",
        "cross_entropy",
        "float32",
        "float64",
        "float16",
        "constant",
        "inverse_time",
        "step",
        "exponential",
        "iris",
        "xor",
        "blobs",
        "moons",
        "circles",
        "spiral",
        "sine",
        "nope",
        [],
        {},
        [[]],
        [[1.0]],
        {"type": "normal"},
        {"type": "normal", "std": 0},
        {"type": "step"},
        {"type": "constant", "gamma": 1},
        [{"units": 3, "activation": "softmax"}],
        [{"units": 1, "activation": "sigmoid"}],
        [{"units": 2, "activation": "softmax"}, {"units": 3, "activation": "softmax"}],
    ]
)

BASE_SPECS: list[dict[str, Any]] = [
    {
        "name": "adam on iris",
        "dataset": "iris",
        "model": {
            "layers": [{"units": 16, "activation": "relu"}, {"units": 3, "activation": "softmax"}],
            "init": "auto",
        },
        "loss": "cross_entropy",
        "optimizer": {"type": "adam", "learning_rate": 0.01},
        "training": {
            "epochs": 200,
            "batch_size": 16,
            "shuffle": True,
            "seed": 0,
            "validation_split": 0.2,
            "standardize": True,
            "early_stopping": {"patience": 20, "min_delta": 0.0, "restore_best": True},
        },
        "dtype": "float64",
        "initial_weights": None,
    },
    {
        "dataset": "xor",
        "model": {
            "layers": [{"units": 2, "activation": "sigmoid"}, {"units": 1, "activation": "sigmoid"}]
        },
        "optimizer": {
            "type": "sgd",
            "learning_rate": 0.5,
            "momentum": 0.9,
            "nesterov": True,
            "schedule": {"type": "step", "step_size": 10, "gamma": 0.5},
        },
        "training": {"epochs": 5, "batch_size": None, "validation_split": 0.0},
    },
    {
        "dataset": "sine",
        "model": {
            "layers": [{"units": 8, "activation": "tanh"}, {"units": 1, "activation": "linear"}],
            "init": {"type": "normal", "std": 0.1},
        },
        "loss": "mse",
        "optimizer": {
            "type": "rmsprop",
            "l2": 0.001,
            "schedule": {"type": "exponential", "gamma": 0.999},
        },
        "training": {"epochs": 3},
    },
    {
        "dataset": "blobs",
        "model": {"layers": [{"units": 1, "activation": "step"}]},
        "loss": "mse",
        "optimizer": {
            "type": "adagrad",
            "learning_rate": 0.1,
            "schedule": {"type": "inverse_time", "decay": 0.01},
        },
        "initial_weights": {
            "layers": [
                {"units": 1, "activation": "step", "weights": [[0.1], [-0.2]], "biases": [0.0]}
            ]
        },
        "dtype": "float32",
    },
]


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON value (dict keys and list indices)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_paths(child, (*prefix, index)))
    return found


def _parent(document: Any, path: tuple) -> Any:
    for part in path[:-1]:
        document = document[part]
    return document


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid spec with one to three random changes."""
    spec = copy.deepcopy(draw(st.sampled_from(BASE_SPECS)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [path for path in _paths(spec) if path]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(spec, path)
        action = draw(st.sampled_from(["replace", "borderline", "delete", "unknown key"]))
        if action == "replace":
            parent[path[-1]] = draw(json_values)
        elif action == "borderline":
            parent[path[-1]] = copy.deepcopy(draw(borderline))
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(json_scalars)
    return spec


any_spec_like = st.one_of(
    mutated_specs(),
    mutated_specs(),
    mutated_specs(),
    st.dictionaries(
        st.sampled_from(
            [
                "name",
                "dataset",
                "model",
                "loss",
                "optimizer",
                "training",
                "dtype",
                "initial_weights",
            ]
        )
        | st.text(max_size=8),
        json_values,
        max_size=8,
    ),
    json_values,
)
