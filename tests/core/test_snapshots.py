"""Snapshots: the plan, and THE invariant — the snapshot at epoch e is bit for bit the final
model of the same spec trained with ``epochs: e`` (no early stopping)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from core.checkpoint import Checkpoint
from core.datasets import load_builtin
from core.errors import SpecError
from core.serialize import TrainedModel
from core.snapshots import SnapshotPlan, log_epochs, plan_snapshots
from core.specs import RunSpec
from core.stopping import Stop
from core.training import train

from .conftest import make_spec, pause_at

OPTIMIZERS = [
    {"type": "sgd", "learning_rate": 0.1},
    {"type": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
    {"type": "adagrad", "learning_rate": 0.1, "l1": 0.001},
    {
        "type": "rmsprop",
        "learning_rate": 0.01,
        "schedule": {"type": "step", "step_size": 7, "gamma": 0.5},
    },
    {"type": "adam", "learning_rate": 0.02, "l2": 0.001},
]


def iris_spec(**changes: Any) -> RunSpec:
    data = load_builtin("iris")
    fields: dict[str, Any] = {
        "optimizer": {"type": "adam", "learning_rate": 0.02},
        "training": {"epochs": 12, "batch_size": 16, "seed": 3},
    }
    for key, value in changes.items():
        if key in ("epochs", "batch_size", "early_stopping", "snapshots", "shuffle"):
            fields["training"] = fields["training"] | {key: value}
        else:
            fields[key] = value
    return make_spec(data, **fields)


def with_epochs(spec: RunSpec, epochs: int) -> RunSpec:
    body = spec.model_dump()
    body["training"].update(epochs=epochs, early_stopping=None, snapshots="none")
    return RunSpec.model_validate(body)


def assert_same_model(snapshot: TrainedModel, final: TrainedModel) -> None:
    for (w1, b1), (w2, b2) in zip(snapshot.layers, final.layers, strict=True):
        assert w1.dtype == w2.dtype
        np.testing.assert_array_equal(w1, w2)
        np.testing.assert_array_equal(b1, b2)
    for a, b in ((snapshot.mean, final.mean), (snapshot.std, final.std)):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a, b)


def collect() -> tuple[dict[int, TrainedModel], Any]:
    taken: dict[int, TrainedModel] = {}

    def on_snapshot(epoch: int, model: TrainedModel) -> None:
        assert epoch not in taken, f"epoch {epoch} snapshotted twice"
        taken[epoch] = model

    return taken, on_snapshot


def check_invariant(spec: RunSpec, taken: dict[int, TrainedModel]) -> None:
    data = load_builtin("iris")
    for epoch, model in taken.items():
        assert_same_model(model, train(with_epochs(spec, epoch), data).model)


# ------------------------------------------------------------------------ the plan


def test_log_epochs_are_1_2_3_5_7_times_powers_of_ten() -> None:
    assert log_epochs(1) == [1]
    assert log_epochs(12) == [1, 2, 3, 5, 7, 10]
    assert log_epochs(250) == [1, 2, 3, 5, 7, 10, 20, 30, 50, 70, 100, 200]


def test_log_plan_includes_the_last_epoch_run() -> None:
    plan = plan_snapshots(iris_spec(epochs=100), n_parameters=100, max_bytes=None)
    assert plan.epochs == (1, 2, 3, 5, 7, 10, 20, 30, 50, 70, 100) and plan.include_last


def test_none_and_explicit_lists() -> None:
    assert (
        plan_snapshots(iris_spec(snapshots="none"), n_parameters=10, max_bytes=None)
        == SnapshotPlan()
    )
    plan = plan_snapshots(iris_spec(snapshots=[9, 3, 3]), n_parameters=10, max_bytes=None)
    assert plan == SnapshotPlan(epochs=(3, 9), include_last=False)


def test_log_is_thinned_to_fit_keeping_the_first_and_the_last() -> None:
    spec = iris_spec(epochs=100_000, dtype="float32")  # 26 log epochs below 100,000
    n_parameters = 1000
    budget = 8 * n_parameters * 4  # room for 8 snapshots
    plan = plan_snapshots(spec, n_parameters=n_parameters, max_bytes=budget)
    assert plan.include_last and plan.epochs[0] == 1
    assert plan.max_count * n_parameters * 4 <= budget and plan.max_count == 8
    assert set(plan.epochs) <= set(log_epochs(100_000))
    # spread over the sequence, not bunched at its start
    positions = [log_epochs(100_000).index(e) for e in plan.epochs]
    assert positions[-1] >= 20 and np.diff(positions).min() >= 2


def test_a_tiny_budget_keeps_the_last_only_or_nothing() -> None:
    spec = iris_spec(epochs=100, dtype="float64")
    assert plan_snapshots(spec, n_parameters=10, max_bytes=80) == SnapshotPlan(include_last=True)
    assert plan_snapshots(spec, n_parameters=10, max_bytes=79) == SnapshotPlan()


def test_an_explicit_list_over_the_budget_names_the_setting() -> None:
    spec = iris_spec(epochs=10, snapshots=[1, 2, 3], dtype="float64")
    plan_snapshots(spec, n_parameters=10, max_bytes=240)
    with pytest.raises(SpecError, match="ANNLAB_MAX_SNAPSHOT_BYTES") as info:
        plan_snapshots(spec, n_parameters=10, max_bytes=239)
    assert info.value.field == "training.snapshots"


def test_the_plan_round_trips_through_a_dict() -> None:
    plan = SnapshotPlan(epochs=(1, 5), include_last=True)
    assert SnapshotPlan.from_dict(plan.as_dict()) == plan and 5 in plan and 4 not in plan


# ------------------------------------------------------------------- the invariant


@pytest.mark.parametrize("batch_size", [None, 16])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=lambda o: o["type"] + str(len(o)))
def test_the_snapshot_at_epoch_e_is_the_model_trained_for_e_epochs(
    optimizer: dict[str, Any], dtype: str, batch_size: int | None
) -> None:
    spec = iris_spec(optimizer=optimizer, dtype=dtype, batch_size=batch_size)
    taken, on_snapshot = collect()
    result = train(spec, load_builtin("iris"), on_snapshot=on_snapshot)
    assert sorted(taken) == [1, 2, 3, 5, 7, 10, 12]  # log, plus the last epoch run
    assert_same_model(taken[12], result.model)
    check_invariant(spec, taken)


def test_snapshots_are_taken_before_restore_best_and_the_last_is_the_early_stop() -> None:
    spec = iris_spec(  # a bumpy descent: the best epoch is not the last
        optimizer={"type": "sgd", "learning_rate": 1.0},
        epochs=60,
        early_stopping={"patience": 3, "restore_best": True},
    )
    taken, on_snapshot = collect()
    result = train(spec, load_builtin("iris"), on_snapshot=on_snapshot)
    assert result.stop_reason == "early_stopping" and result.epochs_run < 60
    assert max(taken) == result.epochs_run and result.best_epoch != result.epochs_run
    check_invariant(spec, taken)  # the weights after each epoch, not the restored best


def test_an_explicit_list_is_taken_exactly() -> None:
    spec = iris_spec(snapshots=[4, 11])
    taken, on_snapshot = collect()
    train(spec, load_builtin("iris"), on_snapshot=on_snapshot)
    assert sorted(taken) == [4, 11]
    check_invariant(spec, taken)


def test_a_plan_passed_in_wins_and_without_on_snapshot_nothing_is_taken() -> None:
    spec = iris_spec()
    taken, on_snapshot = collect()
    plan = SnapshotPlan(epochs=(6,), include_last=False)
    train(spec, load_builtin("iris"), snapshots=plan, on_snapshot=on_snapshot)
    assert sorted(taken) == [6]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("pause_batch", [3, 8 * 4 + 5, 8 * 9 + 1])
def test_snapshots_across_a_pause_in_the_middle_of_an_epoch(
    dtype: str, pause_batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.training as training_module

    monkeypatch.setattr(training_module, "POLL_SECONDS", 0.0)  # poll after every batch
    data = load_builtin("iris")
    spec = iris_spec(dtype=dtype)  # 120 training rows: 8 batches per epoch
    straight, on_straight = collect()
    train(spec, data, on_snapshot=on_straight)

    taken, on_snapshot = collect()
    paused = train(spec, data, should_stop=pause_at(pause_batch), on_snapshot=on_snapshot)
    assert paused.stop_reason == "paused" and paused.checkpoint is not None
    assert paused.checkpoint.batch > 0  # inside an epoch
    before = set(taken)
    checkpoint = Checkpoint.from_bytes(paused.checkpoint.to_bytes())
    train(spec, data, resume_from=checkpoint, on_snapshot=on_snapshot)
    assert set(taken) == set(straight) and before < set(taken)
    for epoch, model in straight.items():
        assert_same_model(taken[epoch], model)


def test_the_plan_survives_resume_even_when_the_budget_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import core.training as training_module

    monkeypatch.setattr(training_module, "POLL_SECONDS", 0.0)
    data = load_builtin("iris")
    spec = iris_spec()
    first = SnapshotPlan(epochs=(2, 9), include_last=True)
    taken, on_snapshot = collect()
    paused = train(
        spec, data, should_stop=pause_at(8 * 4 + 2), snapshots=first, on_snapshot=on_snapshot
    )
    checkpoint = Checkpoint.from_bytes(paused.checkpoint.to_bytes())
    assert checkpoint.snapshot_plan == first
    other = SnapshotPlan(epochs=(1, 3, 5), include_last=False)  # e.g. a new byte budget
    train(spec, data, resume_from=checkpoint, snapshots=other, on_snapshot=on_snapshot)
    assert sorted(taken) == [2, 9, 12]


def test_a_stop_right_after_a_resume_snapshots_the_last_finished_epoch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Paused inside epoch 5 (epoch 4 is not a log epoch), resumed, stopped at once: the
    last finished epoch is 4, whose weights only the checkpoint still knows."""
    import core.training as training_module

    monkeypatch.setattr(training_module, "POLL_SECONDS", 0.0)
    data = load_builtin("iris")
    spec = iris_spec()
    taken, on_snapshot = collect()
    paused = train(spec, data, should_stop=pause_at(8 * 4 + 3), on_snapshot=on_snapshot)
    assert sorted(taken) == [1, 2, 3]
    checkpoint = Checkpoint.from_bytes(paused.checkpoint.to_bytes())
    assert checkpoint.epoch_params is not None
    stopped = train(
        spec,
        data,
        resume_from=checkpoint,
        should_stop=lambda: Stop.STOP,
        on_snapshot=on_snapshot,
    )
    assert stopped.stop_reason == "stopped" and stopped.epochs_run == 4
    assert sorted(taken) == [1, 2, 3, 4]
    check_invariant(spec, {4: taken[4]})


def test_a_cancelled_or_diverged_run_snapshots_its_last_finite_epoch() -> None:
    data = load_builtin("iris")
    spec = iris_spec(optimizer={"type": "sgd", "learning_rate": 1e6}, epochs=50)
    taken, on_snapshot = collect()
    result = train(spec, data, on_snapshot=on_snapshot)
    assert result.stop_reason == "diverged"
    if result.epochs_run > 1:
        assert max(taken) == result.epochs_run - 1
        check_invariant(spec, {max(taken): taken[max(taken)]})
    else:
        assert taken == {}


def test_snapshot_models_own_their_weights() -> None:
    data = load_builtin("iris")
    taken, on_snapshot = collect()
    train(iris_spec(), data, on_snapshot=on_snapshot)
    first, second = taken[1].layers[0][0], taken[2].layers[0][0]
    assert not np.shares_memory(first, second)
    assert taken[1].predict(data.features[:3])[0].shape == (3, 3)


def test_a_renamed_or_retagged_spec_still_resumes(monkeypatch: pytest.MonkeyPatch) -> None:
    import core.training as training_module

    monkeypatch.setattr(training_module, "POLL_SECONDS", 0.0)
    data = load_builtin("iris")
    spec = iris_spec()
    straight = train(spec, data)
    checkpoint = train(spec, data, should_stop=pause_at(20)).checkpoint
    renamed = spec.model_copy(update={"name": "another name", "tags": {"k": "v"}})
    resumed = train(renamed, data, resume_from=checkpoint)
    assert_same_model(resumed.model, straight.model)


def test_without_on_snapshot_nothing_is_copied_or_stored(monkeypatch: pytest.MonkeyPatch) -> None:
    import core.training as training_module

    monkeypatch.setattr(training_module, "POLL_SECONDS", 0.0)
    paused = train(iris_spec(), load_builtin("iris"), should_stop=pause_at(8 * 4 + 3))
    assert paused.checkpoint is not None and paused.checkpoint.batch > 0
    assert paused.checkpoint.snapshot_plan is None and paused.checkpoint.epoch_params is None


def test_a_resume_with_the_default_plan_keeps_the_checkpoints_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import core.training as training_module

    monkeypatch.setattr(training_module, "POLL_SECONDS", 0.0)
    data = load_builtin("iris")
    spec = iris_spec()
    taken, on_snapshot = collect()
    plan = SnapshotPlan(epochs=(2, 8), include_last=False)
    paused = train(spec, data, should_stop=pause_at(20), snapshots=plan, on_snapshot=on_snapshot)
    train(spec, data, resume_from=paused.checkpoint, on_snapshot=on_snapshot)
    assert sorted(taken) == [2, 8]
