"""core.export_onnx: the ONNX graph answers what ``predict`` answers (onnxruntime)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from core.export_onnx import IR_VERSION, OPSET, to_onnx
from core.serialize import TrainedModel
from core.specs import ACTIVATIONS
from tests.core.models import make_model

HIDDEN = [name for name in ACTIVATIONS if name != "softmax"]
#: float32 within 1e-5 relative, float64 within 1e-12 (API.md)
RTOL = {"float32": 1e-5, "float64": 1e-12}


def _run(data: bytes, inputs: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (outputs,) = session.run(["outputs"], {"inputs": inputs})
    return np.asarray(outputs)


def _assert_same(model: TrainedModel, inputs: np.ndarray) -> None:
    dtype = model.spec.dtype
    raw = inputs.astype(dtype)
    expected, _ = model.predict(raw)
    got = _run(to_onnx(model), raw)
    assert got.dtype == expected.dtype == np.dtype(dtype)
    assert got.shape == expected.shape
    # Relative to each value and to the outputs' scale: an output that cancels to
    # near 0 (a linear unit's Σ w·x) carries the rounding of its larger terms, which
    # no two float32 GEMMs summing in different orders share.
    tolerance = RTOL[dtype]
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance * scale)


ROWS = np.random.default_rng(3).normal([2.0, -1.0, 0.5], [3.0, 0.2, 1.0], size=(64, 3))


@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize(
    ("output", "units", "task"),
    [
        ("softmax", 3, "classification"),
        ("sigmoid", 1, "classification"),
        ("step", 1, "classification"),
        ("linear", 2, "regression"),
        ("arctan", 1, "regression"),
        ("leaky_relu", 2, "regression"),
    ],
)
def test_onnxruntime_answers_what_predict_answers(
    hidden: str, output: str, units: int, task: str, dtype: str, standardize: bool
) -> None:
    model = make_model(
        [(8, hidden), (5, hidden), (units, output)],
        task=task,  # type: ignore[arg-type]
        n_features=3,
        dtype=dtype,
        standardize=standardize,
        data=ROWS if standardize else None,
        scale=2.0,
    )
    _assert_same(model, ROWS)


def test_step_maps_zero_to_zero() -> None:
    """The engine's step is z > 0: a net of exactly 0 gives 0 in the graph too."""
    model = make_model([(1, "step")], task="classification", n_features=1, standardize=False)
    model.layers = [(np.ones((1, 1)), np.zeros(1))]
    inputs = np.array([[-1.0], [0.0], [-0.0], [1e-300], [2.0]])
    assert _run(to_onnx(model), inputs)[:, 0].tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    np.testing.assert_array_equal(_run(to_onnx(model), inputs), model.predict(inputs)[0])


def test_float64_arctan_is_exact_to_rounding_over_every_magnitude() -> None:
    model = make_model([(1, "arctan")], task="regression", n_features=1, standardize=False)
    model.layers = [(np.ones((1, 1)), np.zeros(1))]
    rng = np.random.default_rng(0)
    z = np.concatenate(
        [
            [0.0, 1.0, -1.0, np.nextafter(1.0, 2.0), np.nextafter(1.0, 0.0), 5e-324, 1e300, -1e308],
            rng.normal(0.0, 1.0, 2000),
            rng.normal(0.0, 1.0, 2000) * 10.0 ** rng.uniform(-12, 12, 2000),
        ]
    )
    got = _run(to_onnx(model), z.reshape(-1, 1))[:, 0]
    np.testing.assert_allclose(got, np.arctan(z), rtol=2e-15, atol=0)


def test_the_graph_is_what_the_contract_says() -> None:
    model = make_model(
        [(4, "relu"), (3, "softmax")], task="classification", n_features=3, dtype="float32"
    )
    proto = onnx.load_from_string(to_onnx(model))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.ir_version == IR_VERSION
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", OPSET)]
    assert OPSET >= 17
    (graph_input,) = proto.graph.input
    (graph_output,) = proto.graph.output
    assert graph_input.name == "inputs" and graph_output.name == "outputs"
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert dims == ["N", 3]
    dims = [d.dim_param or d.dim_value for d in graph_output.type.tensor_type.shape.dim]
    assert dims == ["N", 3]
    ops = [node.op_type for node in proto.graph.node]
    assert ops == ["Cast", "Sub", "Div", "Cast", "Gemm", "Relu", "Gemm", "Softmax"]
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["annlab.task"] == "classification"
    assert json.loads(props["annlab.class_names"]) == model.class_names


def test_without_standardisation_the_graph_starts_at_the_first_layer() -> None:
    model = make_model([(2, "linear")], task="regression", n_features=3, standardize=False)
    proto = onnx.load_from_string(to_onnx(model))
    assert [node.op_type for node in proto.graph.node] == ["Gemm"]
    _assert_same(model, ROWS)
