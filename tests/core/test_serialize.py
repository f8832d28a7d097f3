"""TrainedModel: .npz and JSON weights documents, prediction, refusal of pickled files."""

from __future__ import annotations

import io
import json
import pickle

import numpy as np
import pytest

from core.datasets import load_builtin
from core.errors import CheckpointError, UnsafeFileError
from core.serialize import TrainedModel
from core.training import Checkpoint, train

from .conftest import make_spec


@pytest.fixture(scope="module", params=["float32", "float64"])
def iris_model(request) -> TrainedModel:
    data = load_builtin("iris")
    spec = make_spec(data, dtype=request.param, training={"epochs": 20, "batch_size": 16})
    return train(spec, data).model


def test_npz_round_trip_keeps_every_bit(iris_model):
    loaded = TrainedModel.from_npz_bytes(iris_model.to_npz_bytes())
    assert loaded.spec == iris_model.spec
    assert loaded.task == "classification" and loaded.class_names == iris_model.class_names
    for (w, b), (w2, b2) in zip(iris_model.layers, loaded.layers, strict=True):
        assert w2.dtype == w.dtype == np.dtype(iris_model.spec.dtype)
        np.testing.assert_array_equal(w, w2)
        np.testing.assert_array_equal(b, b2)
    np.testing.assert_array_equal(loaded.mean, iris_model.mean)
    features = load_builtin("iris").features
    np.testing.assert_array_equal(loaded.predict(features)[0], iris_model.predict(features)[0])


def test_npz_loads_with_allow_pickle_false(iris_model):
    with np.load(io.BytesIO(iris_model.to_npz_bytes()), allow_pickle=False) as archive:
        assert json.loads(str(archive["spec"][()]))["dtype"] == iris_model.spec.dtype
        assert archive["layers.0.weights"].shape == (4, 8)


def test_weights_document_round_trip(iris_model):
    document = iris_model.to_weights_document()
    json.dumps(document)  # plain JSON
    assert document["dtype"] == iris_model.spec.dtype
    assert set(document["standardize"]) == {"mean", "std"}
    first = document["layers"][0]
    assert (first["units"], first["activation"]) == (8, "relu")
    assert len(first["weights"]) == 4 and len(first["weights"][0]) == 8  # n_in × units
    assert first["weights"][2][5] == float(iris_model.layers[0][0][2, 5])  # input 2 → unit 5
    again = TrainedModel.from_weights_document(
        json.loads(json.dumps(document)),
        spec=iris_model.spec,
        task="classification",
        class_names=iris_model.class_names,
    )
    assert again.to_weights_document() == document
    features = load_builtin("iris").features
    np.testing.assert_array_equal(again.predict(features)[0], iris_model.predict(features)[0])


def test_predict_applies_standardisation_then_forward(iris_model):
    features = load_builtin("iris").features[:7]
    outputs, predictions = iris_model.predict(features)
    x = ((features - iris_model.mean) / iris_model.std).astype(iris_model.spec.dtype)
    (w1, b1), (w2, b2) = iris_model.layers
    logits = np.maximum(x @ w1 + b1, 0) @ w2 + b2
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    rtol = 1e-5 if iris_model.spec.dtype == "float32" else 1e-12
    np.testing.assert_allclose(outputs, expected, rtol=rtol)
    assert predictions == [iris_model.class_names[k] for k in expected.argmax(axis=1)]


def test_regression_predictions_are_values():
    data = load_builtin("sine")
    spec = make_spec(
        data,
        model={
            "layers": [{"units": 8, "activation": "tanh"}, {"units": 1, "activation": "linear"}]
        },
        training={"epochs": 2},
    )
    model = train(spec, data).model
    outputs, predictions = model.predict(np.array([[0.5], [1.0]]))
    assert outputs.shape == (2, 1)
    assert predictions == [float(outputs[0, 0]), float(outputs[1, 0])]
    assert model.to_weights_document()["layers"][-1]["activation"] == "linear"


def test_pickled_npy_object_array_is_refused():
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UnsafeFileError):
        TrainedModel.from_npz_bytes(buffer.getvalue())
    with pytest.raises(UnsafeFileError):
        Checkpoint.from_bytes(buffer.getvalue())


def test_npz_with_an_object_member_is_refused_without_running_it(iris_model, tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (marker.write_text, ("pwned",))

    arrays = dict(np.load(io.BytesIO(iris_model.to_npz_bytes()), allow_pickle=False))
    arrays["layers.0.weights"] = np.array([Payload()], dtype=object)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with pytest.raises(UnsafeFileError):
        TrainedModel.from_npz_bytes(buffer.getvalue())
    assert not marker.exists()


def test_raw_pickle_is_refused():
    with pytest.raises(UnsafeFileError):
        TrainedModel.from_npz_bytes(pickle.dumps({"a": 1}))


def test_garbage_and_mismatched_files_are_checkpoint_errors(iris_model):
    with pytest.raises(CheckpointError):
        TrainedModel.from_npz_bytes(b"not a zip file at all")
    arrays = dict(np.load(io.BytesIO(iris_model.to_npz_bytes()), allow_pickle=False))
    arrays["layers.1.weights"] = np.zeros((2, 2), dtype=arrays["layers.1.weights"].dtype)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with pytest.raises(CheckpointError):
        TrainedModel.from_npz_bytes(buffer.getvalue())


def test_concurrent_predictions_on_one_model_never_mix_outputs(iris_model):
    """The forward pass reuses workspace buffers: a shared model must not race."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(0)
    # Equal sizes share one workspace: the case where a race would show.
    batches = [rng.normal(size=(2048, 4)) * 2 + 4 for _ in range(32)]
    expected = [
        TrainedModel.from_npz_bytes(iris_model.to_npz_bytes()).predict(b)[0] for b in batches
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(5):
            got = list(pool.map(lambda batch: iris_model.predict(batch)[0], batches))
            for want, have in zip(expected, got, strict=True):
                np.testing.assert_array_equal(have, want)


def test_documents_carry_task_class_feature_and_dataset_names(iris_model):
    iris = load_builtin("iris")
    document = iris_model.to_weights_document()
    assert document["task"] == "classification"
    assert document["class_names"] == list(iris.class_names)
    assert document["feature_names"] == list(iris.feature_names)
    assert document["dataset_name"] == "iris"
    with np.load(io.BytesIO(iris_model.to_npz_bytes()), allow_pickle=False) as archive:
        assert str(archive["format"][()]) == "annlab.model/2"
        for member, expected in (
            ("class_names", iris.class_names),
            ("feature_names", iris.feature_names),
        ):
            array = archive[member]
            assert array.dtype.kind == "U" and array.ndim == 1  # strings, not JSON text
            assert array.tolist() == list(expected)
        assert str(archive["dataset_name"][()]) == "iris"
    loaded = TrainedModel.from_npz_bytes(iris_model.to_npz_bytes())
    assert (loaded.feature_names, loaded.dataset_name) == (list(iris.feature_names), "iris")


def test_a_regression_model_has_no_class_names_member():
    data = load_builtin("sine")
    spec = make_spec(
        data,
        model={"layers": [{"units": 1, "activation": "linear"}]},
        training={"epochs": 1},
    )
    model = train(spec, data).model
    with np.load(io.BytesIO(model.to_npz_bytes()), allow_pickle=False) as archive:
        assert "class_names" not in archive.files
    assert TrainedModel.from_npz_bytes(model.to_npz_bytes()).class_names is None


def test_old_model_files_are_still_read(iris_model):
    from core.serialize import save_npz, text_array

    with np.load(io.BytesIO(iris_model.to_npz_bytes()), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    for member in ("feature_names", "dataset_name"):
        del arrays[member]
    arrays["format"] = text_array("annlab.model/1")
    arrays["class_names"] = text_array(json.dumps(iris_model.class_names))
    old = TrainedModel.from_npz_bytes(save_npz(arrays))
    assert old.class_names == iris_model.class_names
    assert old.feature_names is None and old.dataset_name is None
    features = load_builtin("iris").features
    np.testing.assert_array_equal(old.predict(features)[0], iris_model.predict(features)[0])
