"""Each optimizer against ENGINE.md's formulas typed out here (float64, bit for bit),
against numbers worked by hand, and (when torch is installed) against torch.optim."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import TypeAdapter

from core.optimizers import (
    SGD,
    Adam,
    add_penalty_gradient,
    make_optimizer,
)
from core.schedules import learning_rate
from core.specs import OptimizerSpec

_SPEC = TypeAdapter(OptimizerSpec)

START = np.array([1.0, -0.5, 2.0, 0.0])


def gradient(params: np.ndarray) -> np.ndarray:
    """A gradient that depends on where the optimizer is (a stretched bowl + a tilt)."""
    return params * np.array([2.0, -3.0, 0.5, 1.0]) + np.array([0.3, -0.1, 0.2, -0.7])


def reference(kind: str, options: dict, lr: float, steps: int = 3) -> np.ndarray:
    """ENGINE.md, literally; ε_t constant."""
    p = START.copy()
    v = np.zeros_like(p)
    m = np.zeros_like(p)
    r = np.full_like(p, options.get("initial_accumulator", 0.0))
    for t in range(steps):
        g = gradient(p)
        if kind == "sgd":
            mu = options.get("momentum", 0.0)
            v = mu * v + g
            p = p - lr * (g + mu * v) if options.get("nesterov") else p - lr * v
        elif kind == "adagrad":
            r = r + g**2
            p = p - lr * g / (np.sqrt(r) + options["epsilon"])
        elif kind == "rmsprop":
            rho = options["rho"]
            r = rho * r + (1 - rho) * g**2
            p = p - lr * g / (np.sqrt(r) + options["epsilon"])
        elif kind == "adam":
            b1, b2 = options["beta1"], options["beta2"]
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g**2
            m_hat = m / (1 - b1 ** (t + 1))
            v_hat = v / (1 - b2 ** (t + 1))
            p = p - lr * m_hat / (np.sqrt(v_hat) + options["epsilon"])
    return p


def run(spec_body: dict, steps: int = 3) -> np.ndarray:
    spec = _SPEC.validate_python(spec_body)
    optimizer = make_optimizer(spec, size=START.size, dtype="float64")
    params = START.copy()
    for _ in range(steps):
        grads = gradient(params)
        add_penalty_gradient(params, grads, spec.l1, spec.l2)
        optimizer.step(params, grads, learning_rate(spec.schedule, spec.learning_rate, optimizer.t))
    assert optimizer.t == steps
    return params


CASES = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("sgd", {"momentum": 0.0, "nesterov": True}),
    ("adagrad", {"epsilon": 1e-7, "initial_accumulator": 0.0}),
    ("adagrad", {"epsilon": 1e-3, "initial_accumulator": 0.1}),
    ("rmsprop", {"rho": 0.9, "epsilon": 1e-7}),
    ("rmsprop", {"rho": 0.5, "epsilon": 1e-2}),
    ("adam", {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7}),
    ("adam", {"beta1": 0.5, "beta2": 0.7, "epsilon": 1e-3}),
]


@pytest.mark.parametrize(("kind", "options"), CASES)
def test_three_steps_equal_the_engine_md_formulas_bit_for_bit(kind, options):
    expected = reference(kind, options, lr=0.05)
    ours = run({"type": kind, "learning_rate": 0.05, **options})
    if kind == "adam":
        # adam folds the bias corrections into scalars (torch.optim's arrangement):
        # the same formula, different rounding — equal to a few ulp, not bit for bit
        np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=0)
    else:
        np.testing.assert_array_equal(ours, expected)


def test_adam_float32_equals_the_literal_formula_to_a_few_ulp():
    rng = np.random.default_rng(3)
    start = rng.standard_normal(70_000).astype(np.float32)  # more than one block
    grads = [rng.standard_normal(start.size).astype(np.float32) for _ in range(3)]
    b1, b2, eps, lr = 0.9, 0.999, 1e-7, 0.05
    optimizer = Adam(size=start.size, dtype="float32", beta1=b1, beta2=b2, epsilon=eps)
    ours, p = start.copy(), start.copy()
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads):
        optimizer.step(ours, g, lr)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        p = p - lr * (m / (1 - b1 ** (t + 1))) / (np.sqrt(v / (1 - b2 ** (t + 1))) + eps)
    assert ours.dtype == np.float32 and p.dtype == np.float32
    # a few ulp of the parameters (|p| ~ 1; near 0 the subtraction cancels, hence atol)
    eps32 = float(np.finfo(np.float32).eps)
    np.testing.assert_allclose(ours, p, rtol=4 * eps32, atol=eps32)


def test_sgd_first_step_by_hand():
    # v = g = 2·1 + 0.3 = 2.3 ; p = 1 − 0.1 · 2.3
    assert run({"type": "sgd", "learning_rate": 0.1, "momentum": 0.9}, steps=1)[0] == 1 - 0.1 * 2.3


def test_sgd_momentum_second_step_by_hand():
    params = np.array([0.0])
    optimizer = SGD(size=1, dtype="float64", momentum=0.5)
    optimizer.step(params, np.array([1.0]), 0.1)  # v = 1, p = −0.1
    optimizer.step(params, np.array([2.0]), 0.1)  # v = 0.5 + 2 = 2.5, p = −0.1 − 0.25
    assert params[0] == pytest.approx(-0.35, abs=1e-15)
    nesterov = SGD(size=1, dtype="float64", momentum=0.5, nesterov=True)
    params = np.array([0.0])
    nesterov.step(params, np.array([1.0]), 0.1)  # v = 1, p = −0.1 (1 + 0.5)
    assert params[0] == pytest.approx(-0.15, abs=1e-15)


def test_adam_first_step_moves_by_the_learning_rate_by_hand():
    # m̂ = g, v̂ = g² after one step: p = 1 − 0.1 · 0.5 / (0.5 + 1e−7)
    params = np.array([1.0])
    Adam(size=1, dtype="float64").step(params, np.array([0.5]), 0.1)
    assert params[0] == pytest.approx(1 - 0.1 * 0.5 / (0.5 + 1e-7), abs=1e-15)


def test_adagrad_uses_the_initial_accumulator_by_hand():
    params = np.array([1.0])
    spec = _SPEC.validate_python({"type": "adagrad", "initial_accumulator": 3.0, "epsilon": 1e-7})
    make_optimizer(spec, size=1, dtype="float64").step(params, np.array([1.0]), 0.1)
    assert params[0] == pytest.approx(1 - 0.1 / (2.0 + 1e-7), abs=1e-15)  # √(3 + 1) = 2


def test_rmsprop_starts_from_zero_by_hand():
    params = np.array([1.0])
    spec = _SPEC.validate_python({"type": "rmsprop", "rho": 0.75, "epsilon": 1e-7})
    make_optimizer(spec, size=1, dtype="float64").step(params, np.array([2.0]), 0.1)
    assert params[0] == pytest.approx(1 - 0.1 * 2 / (1.0 + 1e-7), abs=1e-15)  # √(0.25·4) = 1


@pytest.mark.parametrize(
    "schedule",
    [
        {"type": "inverse_time", "decay": 0.5},
        {"type": "step", "step_size": 2, "gamma": 0.5},
        {"type": "exponential", "gamma": 0.9},
    ],
)
def test_schedule_scales_step_t_of_sgd_by_epsilon_t(schedule):
    rates = [
        learning_rate(_SPEC.validate_python({"type": "sgd", "schedule": schedule}).schedule, 0.1, t)
        for t in range(3)
    ]
    p = START.copy()
    for rate in rates:
        p = p - rate * gradient(p)
    np.testing.assert_array_equal(
        run({"type": "sgd", "learning_rate": 0.1, "schedule": schedule}), p
    )


def test_l1_l2_add_to_the_gradient_before_the_update():
    p = START.copy()
    for _ in range(3):
        g = gradient(p) + 0.01 * np.sign(p) + 2 * 0.02 * p
        p = p - 0.1 * g
    np.testing.assert_array_equal(
        run({"type": "sgd", "learning_rate": 0.1, "l1": 0.01, "l2": 0.02}), p
    )


@pytest.mark.parametrize(("kind", "options"), CASES)
def test_state_dict_round_trip_continues_with_the_same_bits(kind, options):
    spec = _SPEC.validate_python({"type": kind, **options})
    first = make_optimizer(spec, size=START.size, dtype="float64")
    params = START.copy()
    for _ in range(2):
        first.step(params, gradient(params), 0.05)
    second = make_optimizer(spec, size=START.size, dtype="float64")
    second.load_state_dict(first.state_dict())
    assert second.t == 2
    other = params.copy()
    first.step(params, gradient(params), 0.05)
    second.step(other, gradient(other), 0.05)
    np.testing.assert_array_equal(params, other)


def test_constructors_take_explicit_keywords_only():
    with pytest.raises(TypeError):
        SGD(size=2, dtype="float64", momentun=0.9)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Adam(2, "float64")  # type: ignore[misc]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_updates_keep_the_buffer_dtype(dtype):
    spec = _SPEC.validate_python({"type": "adam"})
    optimizer = make_optimizer(spec, size=3, dtype=dtype)
    params = np.ones(3, dtype=dtype)
    optimizer.step(params, np.full(3, 0.5, dtype=dtype), 0.1)
    assert params.dtype == np.dtype(dtype)
    assert all(
        value.dtype == np.dtype(dtype)
        for key, value in optimizer.state_dict().items()
        if key != "t"
    )


# ----------------------------------------------------------------- torch.optim

TORCH_CASES = [
    ("sgd", {"momentum": 0.9}, {"type": "exponential", "gamma": 0.9}),
    ("sgd", {"momentum": 0.8, "nesterov": True}, {"type": "step", "step_size": 2, "gamma": 0.5}),
    (
        "adagrad",
        {"epsilon": 1e-7, "initial_accumulator": 0.1},
        {"type": "inverse_time", "decay": 0.3},
    ),
    ("rmsprop", {"rho": 0.9, "epsilon": 1e-7}, {"type": "constant"}),
    (
        "adam",
        {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7},
        {"type": "exponential", "gamma": 0.95},
    ),
]


@pytest.mark.parametrize(("kind", "options", "schedule"), TORCH_CASES)
def test_matches_torch_optim_with_lambda_lr(kind, options, schedule):
    torch = pytest.importorskip("torch")
    lr, l2, steps = 0.05, 0.01, 6
    spec = _SPEC.validate_python(
        {"type": kind, "learning_rate": lr, "l2": l2, "schedule": schedule, **options}
    )
    ours = run(spec.model_dump(), steps=steps)

    param = torch.nn.Parameter(torch.tensor(START, dtype=torch.float64))
    common = {"lr": lr, "weight_decay": 2 * l2}
    if kind == "sgd":
        optimizer = torch.optim.SGD(
            [param], momentum=options["momentum"], nesterov=options.get("nesterov", False), **common
        )
    elif kind == "adagrad":
        optimizer = torch.optim.Adagrad(
            [param],
            eps=options["epsilon"],
            initial_accumulator_value=options["initial_accumulator"],
            **common,
        )
    elif kind == "rmsprop":
        optimizer = torch.optim.RMSprop(
            [param], alpha=options["rho"], eps=options["epsilon"], **common
        )
    else:
        optimizer = torch.optim.Adam(
            [param], betas=(options["beta1"], options["beta2"]), eps=options["epsilon"], **common
        )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda t: learning_rate(spec.schedule, 1.0, t)
    )
    for _ in range(steps):
        optimizer.zero_grad()
        param.grad = torch.tensor(gradient(param.detach().numpy()), dtype=torch.float64)
        optimizer.step()
        scheduler.step()
    np.testing.assert_allclose(ours, param.detach().numpy(), rtol=1e-12, atol=1e-14)
