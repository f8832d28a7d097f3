"""The training loop: learning, determinism, RNG order, split, metrics, early stopping,
checkpoints, cancellation and divergence."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.data import Dataset
from core.datasets import load_builtin
from core.errors import CheckpointError
from core.losses import get_loss
from core.network import Network, encode_targets
from core.specs import validation_size
from core.stopping import Stop, StopReason
from core.training import Checkpoint, EpochMetrics, split_indices, train

from .conftest import blobs, make_spec


def weights_of(result) -> list[np.ndarray]:
    return [array for pair in result.model.layers for array in pair]


def assert_same_bits(first, second) -> None:
    for a, b in zip(weights_of(first), weights_of(second), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


# -------------------------------------------------------------------- learning


def test_xor_2_4_1_reaches_full_accuracy():
    data = load_builtin("xor")
    spec = make_spec(
        data,
        model={
            "layers": [{"units": 4, "activation": "tanh"}, {"units": 1, "activation": "sigmoid"}]
        },
        optimizer={"type": "adam", "learning_rate": 0.1},
        training={"epochs": 300, "batch_size": None, "validation_split": 0.0},
    )
    result = train(spec, data)
    assert result.history[-1].train_accuracy == 1.0
    _, predictions = result.model.predict(data.features)
    assert predictions == [data.class_names[label] for label in data.targets]


def test_one_step_unit_learns_separable_blobs_with_the_perceptron_rule():
    data = load_builtin("blobs")
    spec = make_spec(
        data,
        model={"layers": [{"units": 1, "activation": "step"}]},
        optimizer={"type": "sgd", "learning_rate": 0.1},
        training={"epochs": 10, "batch_size": 1},
    )
    assert spec.loss == "mse"
    result = train(spec, data)
    assert result.history[-1].train_accuracy == 1.0
    assert result.history[-1].val_accuracy == 1.0


@pytest.mark.parametrize(
    ("optimizer", "learning_rate"),
    [("sgd", 0.1), ("adagrad", 0.1), ("rmsprop", 0.01), ("adam", 0.01)],
)
def test_iris_reaches_90_percent_validation_accuracy(optimizer, learning_rate):
    data = load_builtin("iris")
    spec = make_spec(
        data,
        model={
            "layers": [{"units": 16, "activation": "relu"}, {"units": 3, "activation": "softmax"}]
        },
        optimizer={"type": optimizer, "learning_rate": learning_rate},
        training={"epochs": 100, "batch_size": 16},
    )
    result = train(spec, data)
    assert result.stop_reason == "completed"
    assert result.history[-1].val_accuracy >= 0.9


def test_spiral_reaches_90_percent_training_accuracy_with_two_hidden_layers():
    data = load_builtin("spiral")
    spec = make_spec(
        data,
        model={
            "layers": [
                {"units": 64, "activation": "relu"},
                {"units": 64, "activation": "relu"},
                {"units": 3, "activation": "softmax"},
            ]
        },
        optimizer={"type": "adam", "learning_rate": 0.01},
        training={"epochs": 200, "batch_size": 32},
    )
    result = train(spec, data)
    assert result.history[-1].train_accuracy >= 0.9


def test_sine_regression_reaches_validation_mse_below_0_02():
    data = load_builtin("sine")
    spec = make_spec(
        data,
        model={
            "layers": [{"units": 32, "activation": "tanh"}, {"units": 1, "activation": "linear"}]
        },
        optimizer={"type": "adam", "learning_rate": 0.01},
        training={"epochs": 200, "batch_size": 32},
    )
    result = train(spec, data)
    last = result.history[-1]
    assert last.train_accuracy is None and last.val_accuracy is None
    assert 2 * last.val_loss < 0.02  # val_loss is the mean of ½ (t − y)²


# ----------------------------------------------------------------- determinism


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_spec_and_seed_give_the_same_bits_another_seed_other_weights(dtype):
    data = load_builtin("iris")
    spec = make_spec(data, dtype=dtype, training={"epochs": 5, "batch_size": 16, "seed": 3})
    first, second = train(spec, data), train(spec, data)
    assert_same_bits(first, second)
    assert first.model.layers[0][0].dtype == np.dtype(dtype)
    assert [m.as_dict() for m in first.history] == [m.as_dict() for m in second.history]
    other = train(
        spec.model_copy(update={"training": spec.training.model_copy(update={"seed": 4})}), data
    )
    assert not np.array_equal(first.model.layers[0][0], other.model.layers[0][0])


def test_random_numbers_are_drawn_weights_then_split_then_epoch_permutations():
    data = load_builtin("iris")
    spec = make_spec(
        data,
        model={
            "layers": [{"units": 5, "activation": "tanh"}, {"units": 3, "activation": "softmax"}]
        },
        optimizer={"type": "sgd", "learning_rate": 0.05},
        training={"epochs": 2, "batch_size": 10, "seed": 11, "validation_split": 0.3},
    )
    result = train(spec, data)

    rng = np.random.default_rng(11)
    # glorot (auto for tanh/softmax) draws W of each layer; biases draw nothing
    first_w = rng.uniform(-math.sqrt(6 / 9), math.sqrt(6 / 9), size=(4, 5))
    rng.uniform(-math.sqrt(6 / 8), math.sqrt(6 / 8), size=(5, 3))
    network = Network.from_spec(spec, n_inputs=4)
    network.initialize(spec.model.init, np.random.default_rng(11))
    np.testing.assert_array_equal(network.layers[0].weights, first_w)
    train_index, val_index = split_indices(data, 0.3, rng)

    model = result.model
    np.testing.assert_array_equal(model.mean, data.features[train_index].mean(axis=0))
    loss = get_loss(spec.loss)

    def loss_on(index):
        outputs, _ = model.predict(data.features[index])
        targets = encode_targets(
            data.targets[index],
            task="classification",
            units=3,
            activation="softmax",
            dtype="float64",
        )
        return loss.value(outputs, targets)

    assert result.history[-1].val_loss == pytest.approx(loss_on(val_index), rel=1e-12)
    assert result.history[-1].train_loss == pytest.approx(loss_on(train_index), rel=1e-12)


def test_initial_weights_skip_the_init_draws():
    data = load_builtin("iris")
    layers = [
        {"weights": np.full((4, 5), 0.1).tolist(), "biases": [0.0] * 5},
        {"weights": np.full((5, 3), -0.1).tolist(), "biases": [0.0, 0.1, 0.2]},
    ]
    spec = make_spec(
        data,
        model={
            "layers": [{"units": 5, "activation": "tanh"}, {"units": 3, "activation": "softmax"}]
        },
        optimizer={"type": "sgd", "learning_rate": 1e-9},
        training={"epochs": 1, "batch_size": None, "seed": 5, "validation_split": 0.2},
        initial_weights={"layers": layers},
    )
    result = train(spec, data)
    np.testing.assert_allclose(result.model.layers[0][0], 0.1, atol=1e-6)
    _, val_index = split_indices(data, 0.2, np.random.default_rng(5))  # the first draw
    outputs, _ = result.model.predict(data.features[val_index])
    targets = np.eye(3)[data.targets[val_index]]
    assert result.history[0].val_loss == pytest.approx(
        get_loss("cross_entropy").value(outputs, targets), rel=1e-12
    )


# ----------------------------------------------------------------------- split


def test_stratified_split_takes_round_split_n_per_class_and_matches_validation_size():
    data = load_builtin("iris")
    train_index, val_index = split_indices(data, 0.2, np.random.default_rng(0))
    assert len(val_index) == validation_size(150, 0.2) == 30
    assert np.bincount(data.targets[val_index]).tolist() == [10, 10, 10]
    assert sorted([*train_index, *val_index]) == list(range(150))


def test_stratified_split_gives_leftover_rows_to_the_largest_fractions_then_lowest_class():
    labels = np.array([0] * 5 + [1] * 5 + [2] * 5)
    data = Dataset("d", "classification", np.zeros((15, 1)), labels, ["a", "b", "c"])
    _, val_index = split_indices(data, 0.5, np.random.default_rng(0))
    assert len(val_index) == validation_size(15, 0.5) == 8  # round(7.5)
    assert np.bincount(labels[val_index]).tolist() == [3, 3, 2]  # ⌊2.5⌋ each + 2 leftovers
    labels = np.array([0] * 3 + [1] * 8)  # 0.3·3 = 0.9, 0.3·8 = 2.4 → 0 + 2, leftover to class 0
    data = Dataset("d", "classification", np.zeros((11, 1)), labels, ["a", "b"])
    _, val_index = split_indices(data, 0.3, np.random.default_rng(0))
    assert np.bincount(labels[val_index], minlength=2).tolist() == [1, 2]


def test_regression_split_is_one_permutation():
    data = load_builtin("sine")
    _, val_index = split_indices(data, 0.25, np.random.default_rng(7))
    np.testing.assert_array_equal(
        val_index, np.sort(np.random.default_rng(7).permutation(400)[:100])
    )


def test_standardisation_uses_training_rows_and_a_zero_deviation_counts_as_one():
    features = np.column_stack([np.arange(10.0), np.full(10, 3.0)])
    data = Dataset("d", "regression", features, np.arange(10.0)[:, None], None, ["a", "b"])
    spec = make_spec(
        data,
        model={"layers": [{"units": 1, "activation": "linear"}]},
        training={"epochs": 1, "validation_split": 0.0},
    )
    model = train(spec, data).model
    np.testing.assert_array_equal(model.mean, [4.5, 3.0])
    np.testing.assert_array_equal(model.std, [np.arange(10.0).std(), 1.0])


# --------------------------------------------------------------------- metrics


def test_epoch_metrics_report_steps_the_last_steps_learning_rate_and_penalised_train_loss():
    data = blobs(n=60)
    seen: list[EpochMetrics] = []
    spec = make_spec(
        data,
        optimizer={
            "type": "sgd",
            "learning_rate": 0.1,
            "l2": 0.01,
            "schedule": {"type": "exponential", "gamma": 0.9},
        },
        training={"epochs": 3, "batch_size": 16, "validation_split": 0.0},
    )
    result = train(spec, data, on_epoch=seen.append)
    assert seen == result.history
    assert [m.step for m in seen] == [4, 8, 12]  # 60 rows → batches of 16, 16, 16, 12
    assert [m.learning_rate for m in seen] == [0.1 * 0.9**3, 0.1 * 0.9**7, 0.1 * 0.9**11]
    assert seen[0].as_dict()["epochs"] == 3 and seen[-1].val_loss is None

    outputs, _ = result.model.predict(data.features)
    data_loss = get_loss("cross_entropy").value(outputs, np.eye(3)[data.targets])
    penalty = 0.01 * sum(float(np.sum(w**2)) for w, _ in result.model.layers)
    assert seen[-1].train_loss == pytest.approx(data_loss + penalty, rel=1e-12)


# -------------------------------------------------------------- early stopping


def _early(data, **early_stopping):
    return make_spec(
        data,
        optimizer={"type": "sgd", "learning_rate": 0.05},
        training={"epochs": 30, "batch_size": 16, "early_stopping": early_stopping},
    )


def _with_epochs(spec, epochs, early_stopping=None):
    """The same spec with other epochs and early stopping (validated again)."""
    body = spec.model_dump()
    body["training"].update(epochs=epochs, early_stopping=early_stopping)
    return type(spec).model_validate(body)


def _lowest_val_loss_epoch(result) -> int:
    losses = [m.val_loss for m in result.history]
    return result.history[losses.index(min(losses))].epoch


def test_early_stopping_waits_patience_epochs_then_restores_the_best_weights():
    data = load_builtin("iris")
    # an improvement must beat 1e9: only the first epoch counts for patience
    spec = _early(data, patience=3, min_delta=1e9, restore_best=True)
    result = train(spec, data)
    assert result.stop_reason == "early_stopping"
    assert result.epochs_run == 4 and len(result.history) == 4
    # best_epoch is the lowest val_loss, whatever min_delta says about patience
    assert result.best_epoch == _lowest_val_loss_epoch(result) > 1
    assert_same_bits(result, train(_with_epochs(spec, result.best_epoch), data))


def test_best_epoch_is_the_lowest_val_loss_without_early_stopping():
    data = load_builtin("iris")
    spec = _with_epochs(_early(data), 30, early_stopping=None)
    result = train(spec, data)
    assert result.stop_reason == "completed"
    assert result.best_epoch == _lowest_val_loss_epoch(result)


def test_early_stopping_without_restore_keeps_the_last_weights():
    data = load_builtin("iris")
    spec = _early(data, patience=3, min_delta=1e9, restore_best=False)
    result = train(spec, data)
    assert result.epochs_run == 4
    assert_same_bits(result, train(_with_epochs(spec, 4), data))


def test_restore_best_also_applies_when_the_last_epoch_is_reached():
    data = load_builtin("iris")
    spec = make_spec(
        data,
        optimizer={"type": "sgd", "learning_rate": 1.0},  # a bumpy descent: epoch 5 is best
        training={
            "epochs": 8,
            "batch_size": 16,
            "early_stopping": {"patience": 50, "restore_best": True},
        },
    )
    result = train(spec, data)
    assert result.stop_reason == "completed" and result.best_epoch == _lowest_val_loss_epoch(result)
    assert result.best_epoch < 8
    assert_same_bits(result, train(_with_epochs(spec, result.best_epoch), data))


def test_early_stopping_watches_train_loss_without_validation():
    data = load_builtin("iris")
    spec = make_spec(
        data,
        optimizer={"type": "sgd", "learning_rate": 0.05},
        training={
            "epochs": 30,
            "validation_split": 0.0,
            "early_stopping": {"patience": 2, "min_delta": 1e9},
        },
    )
    result = train(spec, data)
    assert result.stop_reason == "early_stopping" and result.epochs_run == 3


# ----------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_resume_from_a_checkpoint_gives_the_same_bits_as_straight_through(dtype):
    data = load_builtin("iris")
    spec = make_spec(
        data,
        dtype=dtype,
        optimizer={
            "type": "adam",
            "learning_rate": 0.02,
            "l2": 0.001,
            "schedule": {"type": "inverse_time", "decay": 0.01},
        },
        training={
            "epochs": 25,
            "batch_size": 16,
            "shuffle": True,
            "seed": 9,
            "early_stopping": {"patience": 4, "restore_best": True},
        },
    )
    checkpoints: list[Checkpoint] = []
    straight = train(spec, data, on_checkpoint=checkpoints.append)
    assert len(checkpoints) >= 6
    saved = Checkpoint.from_bytes(checkpoints[5].to_bytes())
    assert saved.epoch == 6
    resumed = train(spec, data, resume_from=saved)
    assert_same_bits(straight, resumed)
    assert resumed.history == straight.history
    assert (resumed.stop_reason, resumed.epochs_run, resumed.best_epoch) == (
        straight.stop_reason,
        straight.epochs_run,
        straight.best_epoch,
    )


def test_checkpoint_of_another_spec_is_refused():
    data = load_builtin("iris")
    spec = make_spec(data, training={"epochs": 3})
    checkpoints: list[Checkpoint] = []
    train(spec, data, on_checkpoint=checkpoints.append)
    with pytest.raises(CheckpointError):
        train(_with_epochs(spec, 4), data, resume_from=checkpoints[0])


def test_checkpoint_seconds_spaces_checkpoints():
    data = load_builtin("iris")
    checkpoints: list[Checkpoint] = []
    train(
        make_spec(data, training={"epochs": 20}),
        data,
        on_checkpoint=checkpoints.append,
        checkpoint_seconds=3600,
    )
    assert checkpoints == []


# -------------------------------------------------------- cancel and diverge


def test_should_stop_cancels_in_the_middle_of_the_first_epoch():
    data = load_builtin("spiral")
    spec = make_spec(data, training={"epochs": 5, "batch_size": 8})
    calls = []
    result = train(spec, data, should_stop=lambda: calls.append(1) or Stop.CANCEL)
    assert result.stop_reason == "cancelled"
    assert result.epochs_run == 0 and result.history == [] and len(calls) == 1


def test_should_stop_is_polled_every_poll_seconds_of_work(monkeypatch):
    """Polled after the first batch, then once POLL_SECONDS of (fake) time passed."""
    import core.training as training_module

    clock = {"t": 0.0}

    def fake_monotonic() -> float:  # every call is 10 ms later
        clock["t"] += 0.01
        return clock["t"]

    monkeypatch.setattr(training_module.time, "monotonic", fake_monotonic)
    data = load_builtin("spiral")
    spec = make_spec(data, training={"epochs": 100_000, "batch_size": 8})
    polls: list[float] = []

    def should_stop() -> Stop | None:
        polls.append(clock["t"])
        return Stop.CANCEL if len(polls) == 20 else None

    result = train(spec, data, should_stop=should_stop)
    assert result.stop_reason == "cancelled" and len(polls) == 20
    gaps = np.diff(polls)
    assert gaps.min() >= training_module.POLL_SECONDS and gaps.max() <= 0.1


def test_a_huge_learning_rate_diverges_and_names_the_epoch():
    data = load_builtin("sine")
    spec = make_spec(
        data,
        model={
            "layers": [{"units": 16, "activation": "relu"}, {"units": 1, "activation": "linear"}]
        },
        optimizer={"type": "sgd", "learning_rate": 1e6},
        training={"epochs": 50},
    )
    seen: list[EpochMetrics] = []
    result = train(spec, data, on_epoch=seen.append)
    assert result.stop_reason == "diverged"
    assert result.error == f"loss became NaN/infinite at epoch {result.epochs_run}"
    assert len(seen) == len(result.history) == result.epochs_run - 1
    assert all(math.isfinite(m.train_loss) for m in seen)


# ------------------------------------------------- mid-epoch checkpoints, pause


def _adam_spec(data: Dataset, dtype: str, **training):
    return make_spec(
        data,
        dtype=dtype,
        optimizer={
            "type": "adam",
            "learning_rate": 0.02,
            "l2": 0.001,
            "schedule": {"type": "inverse_time", "decay": 0.01},
        },
        training={
            "epochs": 12,
            "batch_size": 16,  # 120 training rows: 8 batches per epoch, the last one shorter
            "shuffle": True,
            "seed": 4,
            "early_stopping": {"patience": 2, "min_delta": 0.05, "restore_best": True},
        }
        | training,
    )


def _pause_after(n_polls: int):
    """A ``should_stop`` that says PAUSE at its ``n_polls``-th call (polled after every batch
    of a run that takes less than POLL_SECONDS per batch only once; so count calls instead)."""
    calls = {"n": 0}

    def should_stop() -> Stop | None:
        calls["n"] += 1
        return Stop.PAUSE if calls["n"] >= n_polls else None

    return should_stop


def _same_run(straight, resumed) -> None:
    assert_same_bits(straight, resumed)
    assert resumed.history == straight.history
    assert (resumed.stop_reason, resumed.epochs_run, resumed.best_epoch) == (
        straight.stop_reason,
        straight.epochs_run,
        straight.best_epoch,
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shuffle", [True, False])
def test_resume_from_a_pause_anywhere_in_an_epoch_gives_the_same_bits(dtype, shuffle, monkeypatch):
    import core.training as training_module

    monkeypatch.setattr(training_module, "POLL_SECONDS", 0.0)  # poll after every batch
    data = load_builtin("iris")
    spec = _adam_spec(data, dtype, shuffle=shuffle)
    straight = train(spec, data)
    assert straight.stop_reason == "early_stopping"  # the early-stopping state crosses pauses
    # batch 1 of epoch 1, the middle and the last batch of an epoch, a later epoch
    for pause_at in (1, 4, 8, 9, 8 * 5 + 3):
        paused = train(spec, data, should_stop=_pause_after(pause_at))
        assert paused.stop_reason == "paused" and paused.checkpoint is not None
        checkpoint = Checkpoint.from_bytes(paused.checkpoint.to_bytes())
        assert checkpoint.epoch * 8 + checkpoint.batch == pause_at
        assert checkpoint.step == pause_at
        assert (checkpoint.order is not None) == (shuffle and checkpoint.batch > 0)
        resumed = train(spec, data, resume_from=checkpoint)
        _same_run(straight, resumed)


def test_several_pauses_in_a_row_still_give_the_same_bits(monkeypatch):
    import core.training as training_module

    monkeypatch.setattr(training_module, "POLL_SECONDS", 0.0)
    data = load_builtin("iris")
    spec = _adam_spec(data, "float32")
    straight = train(spec, data)
    checkpoint = None
    for pause_at in (3, 5, 11, 2):
        result = train(spec, data, should_stop=_pause_after(pause_at), resume_from=checkpoint)
        assert result.stop_reason == "paused"
        checkpoint = Checkpoint.from_bytes(result.checkpoint.to_bytes())
    _same_run(straight, train(spec, data, resume_from=checkpoint))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_timed_checkpoints_are_taken_inside_a_long_epoch_and_resume_bit_for_bit(dtype, monkeypatch):
    import core.training as training_module

    data = load_builtin("iris")
    spec = _adam_spec(data, dtype, batch_size=1, epochs=4, early_stopping=None)
    straight = train(spec, data)
    checkpoints: list[Checkpoint] = []
    clock = {"t": 0.0}

    def fake_monotonic() -> float:  # every call is 1 ms later: deterministic spacing
        clock["t"] += 0.001
        return clock["t"]

    monkeypatch.setattr(training_module.time, "monotonic", fake_monotonic)
    train(spec, data, on_checkpoint=checkpoints.append, checkpoint_seconds=0.05)
    monkeypatch.undo()
    inside = [c for c in checkpoints if c.batch > 0]
    assert len(inside) >= 8, [(c.epoch, c.batch) for c in checkpoints]
    assert {c.epoch for c in inside} == {0, 1, 2, 3}, "every epoch (even the first) has some"
    for checkpoint in inside[:: max(1, len(inside) // 6)]:
        saved = Checkpoint.from_bytes(checkpoint.to_bytes())
        assert 0 < saved.batch < 120 and saved.order is not None
        _same_run(straight, train(spec, data, resume_from=saved))


def test_an_epoch_boundary_checkpoint_of_format_1_is_still_read():
    from core.serialize import load_npz, save_npz, text_array

    data = load_builtin("iris")
    spec = _adam_spec(data, "float64", epochs=4)
    checkpoints: list[Checkpoint] = []
    straight = train(spec, data, on_checkpoint=checkpoints.append)
    arrays = load_npz(checkpoints[1].to_bytes())
    arrays["format"] = text_array("annlab.checkpoint/1")
    old = Checkpoint.from_bytes(save_npz(arrays))
    assert (old.epoch, old.batch, old.order) == (2, 0, None)
    _same_run(straight, train(spec, data, resume_from=old))


def test_a_checkpoint_position_that_does_not_fit_is_refused(monkeypatch):
    import core.training as training_module

    monkeypatch.setattr(training_module, "POLL_SECONDS", 0.0)
    data = load_builtin("iris")
    spec = _adam_spec(data, "float64")
    checkpoint = train(spec, data, should_stop=_pause_after(3)).checkpoint
    checkpoint.batch = 99
    with pytest.raises(CheckpointError):
        train(spec, data, resume_from=checkpoint)


def test_pause_returns_at_the_poll_with_the_exact_state(monkeypatch):
    import core.training as training_module

    monkeypatch.setattr(training_module, "POLL_SECONDS", 0.0)  # poll after every batch
    data = load_builtin("spiral")
    spec = make_spec(data, training={"epochs": 100, "batch_size": 8})
    calls = {"n": 0}

    def should_stop() -> Stop | None:
        calls["n"] += 1
        return Stop.PAUSE if calls["n"] == 100 else None

    result = train(spec, data, should_stop=should_stop)
    assert result.stop_reason == "paused" and calls["n"] == 100
    checkpoint = result.checkpoint
    assert checkpoint is not None and checkpoint.step == 100  # not one batch more
    assert checkpoint.step == result.history[-1].step + checkpoint.batch
    # the checkpoint's weights are the returned model's
    network_params = np.concatenate([a.ravel() for pair in result.model.layers for a in pair])
    np.testing.assert_array_equal(network_params, checkpoint.params)


def test_should_stop_answers_other_than_a_stop_are_refused():
    data = load_builtin("iris")
    with pytest.raises(TypeError, match="Stop"):
        train(make_spec(data, training={"epochs": 3}), data, should_stop=lambda: "pause")


@pytest.mark.parametrize(
    ("signal", "reason"), [(Stop.STOP, "stopped"), (Stop.INTERRUPT, "interrupted")]
)
def test_stop_and_interrupt_end_at_a_batch_boundary_keeping_the_model(signal, reason, monkeypatch):
    import core.training as training_module

    monkeypatch.setattr(training_module, "POLL_SECONDS", 0.0)
    data = load_builtin("iris")
    spec = _adam_spec(data, "float64", epochs=50, early_stopping=None)
    calls = {"n": 0}

    def should_stop() -> Stop | None:
        calls["n"] += 1
        return signal if calls["n"] == 8 * 3 + 5 else None  # batch 5 of epoch 4

    result = train(spec, data, should_stop=should_stop)
    assert result.stop_reason == reason and result.checkpoint is None
    assert result.epochs_run == 3 and len(result.history) == 3
    # the kept model is the state after exactly 29 steps: a pause there has the same weights
    paused = train(spec, data, should_stop=_pause_after(8 * 3 + 5))
    network_params = np.concatenate([a.ravel() for pair in result.model.layers for a in pair])
    np.testing.assert_array_equal(network_params, paused.checkpoint.params)


def test_stop_with_restore_best_keeps_the_best_epochs_weights(monkeypatch):
    import core.training as training_module

    monkeypatch.setattr(training_module, "POLL_SECONDS", 0.0)
    data = load_builtin("iris")
    spec = _adam_spec(
        data,
        "float64",
        epochs=50,
        early_stopping={"patience": 100, "min_delta": 0.0, "restore_best": True},
    )
    calls = {"n": 0}

    def should_stop() -> Stop | None:
        calls["n"] += 1
        return Stop.STOP if calls["n"] == 8 * 3 + 5 else None

    result = train(spec, data, should_stop=should_stop)
    assert result.stop_reason == "stopped" and result.best_epoch is not None
    assert_same_bits(result, train(_with_epochs(spec, result.best_epoch), data))


def test_cancel_keeps_no_checkpoint_and_reports_cancelled():
    data = load_builtin("iris")
    result = train(make_spec(data, training={"epochs": 3}), data, should_stop=lambda: Stop.CANCEL)
    assert result.stop_reason == "cancelled" and result.checkpoint is None
    assert isinstance(result.stop_reason, StopReason)
