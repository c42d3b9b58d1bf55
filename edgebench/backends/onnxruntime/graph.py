"""Convolution groups of an ONNX graph, keyed the way ONNX Runtime's profiler names its nodes.

ORT's profile does not say whether a ``Conv`` is depthwise: its NCHWc convs are named after the
tensor they write (``.../Relu_output_0_nchwc``: the conv with its fused activation) and its NHWC
``QLinearConv`` reports no weight shape. The graph it loaded does: each conv's ``group`` and its
input channels per group, under the node's name and under each tensor it (or an activation fused
into it) writes.
"""

from __future__ import annotations

import re
from pathlib import Path

CONVS = {"Conv", "ConvInteger", "QLinearConv", "FusedConv", "NhwcFusedConv"}
FUSABLE = {"Relu", "Clip", "LeakyRelu", "HardSigmoid", "Sigmoid", "Tanh", "HardSwish", "QuantizeLinear"}
_SUFFIX = re.compile(r"(_token_\d+|_nchwc|_kernel_time)+$")


def profile_key(layer: str) -> str:
    """A profiled node's name without ORT's optimizer suffixes (``_token_87``, ``_nchwc``)."""
    return _SUFFIX.sub("", layer)


def conv_groups(model_path: Path) -> dict[str, dict]:
    """``{name: {"conv_group": g, "channels_per_group": c}}`` for every conv of the model, by node
    name and by output tensor (followed through the activations ORT fuses into a conv)."""
    import onnx
    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception:  # noqa: BLE001 - a profile without groups is still a profile
        return {}
    graph = model.graph
    shapes = {i.name: list(i.dims) for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def weight_shape(name: str) -> list[int]:
        if name in shapes:
            return shapes[name]
        node = producer.get(name)  # a QDQ graph: the weight comes out of a DequantizeLinear
        return shapes.get(node.input[0], []) if node is not None and node.op_type == "DequantizeLinear" else []

    found: dict[str, dict] = {}
    for node in graph.node:
        if node.op_type not in CONVS:
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        weight = weight_shape(node.input[3] if node.op_type == "QLinearConv" else node.input[1])
        info = {"conv_group": int(group), "channels_per_group": int(weight[1]) if len(weight) > 1 else None}
        names, tensor = [node.name, *node.output], node.output[0]
        while len(consumers.get(tensor, [])) == 1 and consumers[tensor][0].op_type in FUSABLE:
            nxt = consumers[tensor][0]
            names += [nxt.name, *nxt.output]
            tensor = nxt.output[0]
        for name in names:
            found.setdefault(name, info)
    return found
