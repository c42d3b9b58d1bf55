"""Tiny ONNX models built with ``onnx.helper``: a 10-class classifier on 3x32x32 images that a test can
measure in a second, and the ways a user's own file can be wrong (too new an opset or IR version, two
inputs, NHWC or uint8 input, an image-to-image output)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZE = 32
CLASSES = 10


def _weights(head: bool) -> list[onnx.TensorProto]:
    rng = np.random.default_rng(0)
    conv = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "conv_w")]
    return conv + ([numpy_helper.from_array(rng.standard_normal((CLASSES, 4)).astype(np.float32), "fc_w"),
                    numpy_helper.from_array(np.zeros(CLASSES, np.float32), "fc_b")] if head else [])


def classifier(path: Path, *, opset: int = 17, ir_version: int = 8, layout: str = "NCHW",
               dtype: int = TensorProto.FLOAT, inputs: int = 1, image_to_image: bool = False,
               size: int = SIZE) -> Path:
    """Conv -> ReLU -> global average pool -> Flatten -> Gemm (10 logits) on ``size`` px, with one way of
    being wrong."""
    shape = ["batch", 3, size, size] if layout == "NCHW" else ["batch", size, size, 3]
    nodes, first = [], "input"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2]))
        first = "nchw"
    if dtype != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", [first], ["as_float"], to=TensorProto.FLOAT))
        first = "as_float"
    if inputs == 2:
        nodes.append(helper.make_node("Add", [first, "second"], ["sum"]))
        first = "sum"
    nodes.append(helper.make_node("Conv", [first, "conv_w"], ["conv"], pads=[1, 1, 1, 1]))
    nodes.append(helper.make_node("Relu", ["conv"], ["relu"]))
    if image_to_image:
        output = helper.make_tensor_value_info("relu", TensorProto.FLOAT, ["batch", 4, size, size])
    else:
        nodes += [helper.make_node("GlobalAveragePool", ["relu"], ["pool"]),
                  helper.make_node("Flatten", ["pool"], ["flat"]),
                  helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1)]
        output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", CLASSES])
    graph_inputs = [helper.make_tensor_value_info("input", dtype, shape)]
    if inputs == 2:
        graph_inputs.append(helper.make_tensor_value_info("second", TensorProto.FLOAT, ["batch", 3, size, size]))
    graph = helper.make_graph(nodes, "tiny", graph_inputs, [output], _weights(not image_to_image))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    onnx.save(model, str(path))
    return Path(path)
