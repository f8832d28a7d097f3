"""A trained model as an ONNX graph, to run it outside annlab (onnxruntime, …).

The graph takes the raw features, ``inputs`` [N, n_features] of the model's dtype,
and answers ``outputs`` [N, n_outputs] — the same numbers as
``TrainedModel.predict``'s outputs. Standardisation is inside the graph, computed
as the engine computes it: in float64, then cast to the model's dtype (so a
float32 graph casts its input up, subtracts and divides, and casts back). Each
dense layer is a ``Gemm`` (z = x·W + b) followed by its activation:

    relu Relu · leaky_relu LeakyRelu(alpha 0.01) · sigmoid Sigmoid · tanh Tanh ·
    arctan Atan · linear (nothing) · softmax Softmax(axis −1) ·
    step Greater(z, 0) then Cast (the engine's step is z > 0, so 0 maps to 0)

Two exceptions in float64, both so that onnxruntime answers within 1e-12 of the
engine. LeakyRelu's ``alpha`` is a float32 attribute (0.01 in float32 is off by
2e-10 relative), so a float64 leaky_relu is Max(z, z·0.01) with a float64
constant — the engine's own formula. And onnxruntime's CPU provider has no
float64 Atan kernel, so a float64 arctan is computed from ops it has: the
argument is brought into [−1, 1] (atan z = sign(z)·π/2 − atan(1/z) for |z| > 1),
a float32 Atan gives a start within 1e-7, and two Newton steps on tan y = u
(y ← y − cos y·(sin y − u cos y), which converges quadratically there) reach
float64 precision.

Opset 17 with IR version 8, which every onnxruntime since 1.13 loads. The task and
the class names travel in the model's metadata (``annlab.task``,
``annlab.class_names`` as JSON).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from core.activations import LEAKY_SLOPE
from core.serialize import TrainedModel

OPSET = 17
IR_VERSION = 8
INPUT_NAME = "inputs"
OUTPUT_NAME = "outputs"

_ELEMENT_TYPES = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}
#: activation → ONNX operator of one input (linear, step and softmax handled apart)
_UNARY = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "arctan": "Atan"}


def _scalar(value: float, name: str) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(value, dtype=np.float64), name)


def _atan_float64(
    nodes: list[onnx.NodeProto],
    initializers: list[onnx.TensorProto],
    z: str,
    out: str,
    prefix: str,
    newton_steps: int = 2,
) -> None:
    """Nodes computing ``out`` = arctan(``z``) in float64 (see the module docstring)."""
    p = f"{prefix}.atan"
    initializers += [_scalar(1.0, f"{p}.one"), _scalar(np.pi / 2, f"{p}.half_pi")]
    nodes += [
        helper.make_node("Abs", [z], [f"{p}.abs"]),
        helper.make_node("Greater", [f"{p}.abs", f"{p}.one"], [f"{p}.far"]),
        helper.make_node("Reciprocal", [z], [f"{p}.inverse"]),
        helper.make_node("Where", [f"{p}.far", f"{p}.inverse", z], [f"{p}.u"]),
        helper.make_node("Cast", [f"{p}.u"], [f"{p}.u32"], to=TensorProto.FLOAT),
        helper.make_node("Atan", [f"{p}.u32"], [f"{p}.start32"]),
        helper.make_node("Cast", [f"{p}.start32"], [f"{p}.y0"], to=TensorProto.DOUBLE),
    ]
    y = f"{p}.y0"
    for step in range(1, newton_steps + 1):
        q = f"{p}.newton{step}"
        nodes += [
            helper.make_node("Sin", [y], [f"{q}.sin"]),
            helper.make_node("Cos", [y], [f"{q}.cos"]),
            helper.make_node("Mul", [f"{p}.u", f"{q}.cos"], [f"{q}.u_cos"]),
            helper.make_node("Sub", [f"{q}.sin", f"{q}.u_cos"], [f"{q}.residual"]),
            helper.make_node("Mul", [f"{q}.cos", f"{q}.residual"], [f"{q}.correction"]),
            helper.make_node("Sub", [y, f"{q}.correction"], [f"{p}.y{step}"]),
        ]
        y = f"{p}.y{step}"
    nodes += [
        helper.make_node("Sign", [z], [f"{p}.sign"]),
        helper.make_node("Mul", [f"{p}.sign", f"{p}.half_pi"], [f"{p}.pole"]),
        helper.make_node("Sub", [f"{p}.pole", y], [f"{p}.reflected"]),
        helper.make_node("Where", [f"{p}.far", f"{p}.reflected", y], [out]),
    ]


def to_onnx(model: TrainedModel) -> bytes:
    """The serialised ONNX model of ``model`` (checked with ``onnx.checker``'s full check)."""
    dtype = model.spec.dtype
    element = _ELEMENT_TYPES[dtype]
    n_outputs = model.layers[-1][1].shape[0]
    nodes: list[onnx.NodeProto] = []
    initializers: list[onnx.TensorProto] = []
    current = INPUT_NAME

    if model.mean is not None and model.std is not None:
        initializers += [
            numpy_helper.from_array(np.asarray(model.mean, dtype=np.float64), "standardize.mean"),
            numpy_helper.from_array(np.asarray(model.std, dtype=np.float64), "standardize.std"),
        ]
        if dtype != "float64":
            nodes.append(
                helper.make_node("Cast", [current], ["standardize.raw"], to=TensorProto.DOUBLE)
            )
            current = "standardize.raw"
        nodes += [
            helper.make_node("Sub", [current, "standardize.mean"], ["standardize.centred"]),
            helper.make_node("Div", ["standardize.centred", "standardize.std"], ["standardize.z"]),
        ]
        current = "standardize.z"
        if dtype != "float64":
            nodes.append(helper.make_node("Cast", [current], ["standardize.out"], to=element))
            current = "standardize.out"

    last = len(model.layers) - 1
    for index, (layer, (weights, biases)) in enumerate(
        zip(model.spec.model.layers, model.layers, strict=True)
    ):
        prefix = f"layers.{index}"
        initializers += [
            numpy_helper.from_array(np.asarray(weights, dtype=dtype), f"{prefix}.weights"),
            numpy_helper.from_array(np.asarray(biases, dtype=dtype), f"{prefix}.biases"),
        ]
        net = f"{prefix}.net"
        out = OUTPUT_NAME if index == last else f"{prefix}.outputs"
        activation = layer.activation
        gemm_out = out if activation == "linear" else net
        nodes.append(
            helper.make_node("Gemm", [current, f"{prefix}.weights", f"{prefix}.biases"], [gemm_out])
        )
        if activation == "arctan" and dtype == "float64":
            _atan_float64(nodes, initializers, net, out, prefix)
        elif activation in _UNARY:
            nodes.append(helper.make_node(_UNARY[activation], [net], [out]))
        elif activation == "leaky_relu" and dtype == "float64":
            initializers.append(_scalar(LEAKY_SLOPE, f"{prefix}.slope"))
            nodes += [
                helper.make_node("Mul", [net, f"{prefix}.slope"], [f"{prefix}.sloped"]),
                helper.make_node("Max", [net, f"{prefix}.sloped"], [out]),
            ]
        elif activation == "leaky_relu":
            nodes.append(helper.make_node("LeakyRelu", [net], [out], alpha=LEAKY_SLOPE))
        elif activation == "softmax":
            nodes.append(helper.make_node("Softmax", [net], [out], axis=-1))
        elif activation == "step":
            initializers.append(
                numpy_helper.from_array(np.zeros((), dtype=dtype), f"{prefix}.zero")
            )
            nodes += [
                helper.make_node("Greater", [net, f"{prefix}.zero"], [f"{prefix}.positive"]),
                helper.make_node("Cast", [f"{prefix}.positive"], [out], to=element),
            ]
        elif activation != "linear":
            raise ValueError(f"no ONNX operator for the activation {activation!r}")
        current = out

    graph = helper.make_graph(
        nodes,
        model.spec.name or "annlab model",
        inputs=[helper.make_tensor_value_info(INPUT_NAME, element, ["N", model.n_features])],
        outputs=[helper.make_tensor_value_info(OUTPUT_NAME, element, ["N", n_outputs])],
        initializer=initializers,
    )
    onnx_model = helper.make_model(
        graph,
        producer_name="annlab",
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        doc_string="Raw features in, the network's outputs out (standardisation included).",
    )
    helper.set_model_props(
        onnx_model,
        {"annlab.task": model.task, "annlab.class_names": json.dumps(model.class_names)},
    )
    onnx.checker.check_model(onnx_model, full_check=True)
    data: bytes = onnx_model.SerializeToString()
    return data
