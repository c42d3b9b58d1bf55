"""Where the time goes: every profiled layer of every runtime in one of a few operator classes.

One table (:data:`OP_CLASSES`) maps each runtime's profiler names into the classes: ONNX Runtime's
node op types (``QLinearConv``, ``QuickGelu``), OpenVINO's executed layer types (``GroupConvolution``,
``Subgraph``, ``MVN``), TensorRT's layer names (fused ``A + B`` names, ``Reformatting CopyNode``,
``{ForeignNode[...]}``). Op types alone are not enough, and the rules below say what else decides:

* depthwise vs dense conv: ORT rows carry the conv's ``conv_group`` (read from the graph it
  loaded); OpenVINO runs depthwise (and grouped) convs as ``GroupConvolution``; TensorRT names only.
* squeeze-excitation: the layers inside an SE block's scope (torchvision ``.../block.2/`` holding
  ``scale_activation``, timm ``.../se/``), or, on ORT, a conv on a 1x1 map or a Mul/Sigmoid whose
  input is one value per channel (``[N, C, 1, 1]``, NHWC ``[N, 1, 1, C]``).
* attention matmuls vs linear layers: an activation x activation matmul (ORT: both inputs 3-D or
  more; OpenVINO: a ``MatMul`` left after weights made the rest ``FullyConnected``; its MHA
  ``Subgraph`` in an ``/attn/`` scope) vs a matmul with a weight (``FullyConnected``, ``Gemm``, qkv/proj/mlp).
  Linear layers are their own class: in the transformers they are most of the time.
* ExecuTorch: XNNPACK names its depthwise kernels ``DWConv``, and runs the 1x1 convolutions as its
  "Fully Connected" operator; those rows carry the graph node's ``source`` (the build's operator map),
  so a pointwise conv is a dense conv and one on a 1x1 map is squeeze-excitation. Without the map (a
  program built before it) they are their own class, "FC or 1x1 conv": by name they are either.
  XNNPACK's element-wise ``Multiply``/``Sigmoid`` have no scope: an SE gate's multiply is an activation here.
"""

from __future__ import annotations

import re
from collections import defaultdict

CLASSES = ("dense conv", "depthwise conv", "linear (FC/MLP)", "attention matmul", "softmax", "layer norm",
           "activation (h-swish/SiLU/GELU)", "squeeze-excitation", "quantize/dequantize",
           "data movement (shuffle/split/concat)", "FC or 1x1 conv (no operator map)", "other")
DENSE, DW, LINEAR, ATTN, SOFTMAX, NORM, ACT, SE, QDQ, MOVE, UNMAPPED, OTHER = CLASSES

# (runtime, op type) -> class, before the structural rules below refine conv / matmul / SE.
OP_CLASSES: dict[str, dict[str, str]] = {
    "ort": {
        **dict.fromkeys(("Conv", "FusedConv", "QLinearConv", "ConvInteger", "NhwcFusedConv", "NhwcConv"), DENSE),
        **dict.fromkeys(("MatMul", "FusedMatMul", "QLinearMatMul", "MatMulInteger", "MatMulIntegerToFloat",
                         "DynamicQuantizeMatMul"), LINEAR),
        **dict.fromkeys(("Gemm", "QGemm", "FusedGemm"), LINEAR),
        **dict.fromkeys(("Attention", "MultiHeadAttention", "QAttention"), ATTN),
        **dict.fromkeys(("Softmax", "QLinearSoftmax", "LogSoftmax"), SOFTMAX),
        **dict.fromkeys(("LayerNormalization", "SkipLayerNormalization", "SimplifiedLayerNormalization",
                         "QLinearLayerNormalization"), NORM),
        **dict.fromkeys(("HardSwish", "HardSigmoid", "Sigmoid", "QLinearSigmoid", "QuickGelu", "Gelu", "BiasGelu",
                         "FastGelu", "Erf", "Relu", "Clip", "LeakyRelu", "QLinearLeakyRelu", "Tanh", "Mul",
                         "QLinearMul"), ACT),
        **dict.fromkeys(("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"), QDQ),
        **dict.fromkeys(("Transpose", "Reshape", "Concat", "QLinearConcat", "Split", "Slice", "Gather", "Squeeze",
                         "Unsqueeze", "Flatten", "Expand", "Tile", "ReorderInput", "ReorderOutput", "Shape",
                         "Identity", "DepthToSpace", "SpaceToDepth"), MOVE),
    },
    "openvino": {
        **dict.fromkeys(("Convolution", "ConvolutionBackpropData"), DENSE),
        "GroupConvolution": DW,
        **dict.fromkeys(("FullyConnected", "FullyConnectedQuantizedLegacy", "FullyConnectedQuantized", "Gemm"),
                        LINEAR),
        **dict.fromkeys(("MatMul", "ScaledDotProductAttention", "MHA"), ATTN),
        "Softmax": SOFTMAX,
        **dict.fromkeys(("MVN", "NormalizeL2", "RMS"), NORM),
        **dict.fromkeys(("HSwish", "HardSigmoid", "Swish", "Sigmoid", "Gelu", "Eltwise", "Relu", "Clamp", "Math",
                         "Subgraph"), ACT),
        **dict.fromkeys(("FakeQuantize", "Convert"), QDQ),
        **dict.fromkeys(("ShuffleChannels", "Concat", "Split", "VariadicSplit", "Transpose", "Reshape", "Reorder",
                         "StridedSlice", "Gather", "Broadcast", "DepthToSpace", "SpaceToDepth"), MOVE),
    },
    # ExecuTorch: XNNPACK's operator names (its profiler has no debug handles) and the portable kernels' names.
    "executorch": {
        "Convolution": DENSE,  # DWConv kernels: depthwise, below
        "Fully Connected": UNMAPPED,  # a linear layer or a 1x1 conv: the build's map says which (``source``), below
        "Batch Matrix Multiply": ATTN,
        "Softmax": SOFTMAX,
        **dict.fromkeys(("native_layer_norm.out", "native_group_norm.out"), NORM),
        **dict.fromkeys(("HardSwish", "GELU", "Sigmoid", "Clamp", "Tanh", "SiLU", "ELU", "Leaky ReLU", "Multiply",
                         "gelu.out", "hardswish.out", "sigmoid.out"), ACT),
        "Convert": QDQ,
        **dict.fromkeys(("Transpose", "Copy", "Constant Pad", "Concatenate", "Even Split", "Slice", "Static Reshape",
                         "_to_dim_order_copy.out", "view_copy.out", "expand_copy.out", "select_copy.int_out",
                         "slice_copy.Tensor_out", "cat.out", "permute_copy.out", "clone.out", "split_copy.Tensor_out",
                         "split_with_sizes_copy.out", "unsqueeze_copy.out", "squeeze_copy.dims_out"), MOVE),
    },
    # TensorRT reports layer names only: the op is the last part of the first fused layer's name.
    "trt": {
        **dict.fromkeys(("Conv", "ConvTranspose"), DENSE),
        **dict.fromkeys(("MatMul", "Gemm"), LINEAR),
        "Softmax": SOFTMAX,
        **dict.fromkeys(("LayerNormalization", "LayerNorm", "ReduceMean"), NORM),
        **dict.fromkeys(("HardSwish", "HardSigmoid", "Sigmoid", "Erf", "Gelu", "Relu", "Clip", "Mul", "Div", "Tanh",
                         "PWN"), ACT),
        **dict.fromkeys(("QuantizeLinear", "DequantizeLinear"), QDQ),
        **dict.fromkeys(("Reformatting", "Transpose", "Reshape", "Concat", "Split", "Slice", "Gather", "Shuffle",
                         "Squeeze", "Unsqueeze", "Flatten"), MOVE),
    },
}

_SE_BLOCK = re.compile(r"/(se|se_module|squeeze_excite|SqueezeExcite)/")  # timm: the block is the scope
_SE_PART = re.compile(r"/(scale_activation|conv_reduce|conv_expand)/|(?<!/mlp)/(fc1|fc2)/Conv")  # its parent is
_ATTN_SCOPE = re.compile(r"/(attn|attention|self_attn|mha|msa|emsa)[/_.]", re.IGNORECASE)
_LINEAR_NAME = re.compile(r"/(qkv|q|k|v|proj|query|key|value|fc1|fc2|mlp|head|classifier|out_proj)[/.]",
                          re.IGNORECASE)
_DW_NAME = re.compile(r"(conv_dw|depthwise|dwconv|/dw[/_])", re.IGNORECASE)
_TRT_OP = re.compile(r"([A-Za-z]+)(_\d+)?$")


def se_scopes(layers: list[str]) -> set[str]:
    """The name prefixes of the squeeze-excitation blocks among ``layers`` (``.../block.2/`` around a
    torchvision ``scale_activation``; ``.../se/`` in timm)."""
    scopes = set()
    for name in layers:
        if m := _SE_BLOCK.search(name):
            scopes.add(name[:m.end()])
        elif m := _SE_PART.search(name):
            scopes.add(name[:m.start() + 1])
    return scopes


def _numel(shape: list) -> int:
    n = 1
    for d in shape:
        n *= int(d) if isinstance(d, int) else 1
    return n


def _per_channel(shape: list) -> bool:
    """One value per channel of a 4-D map: ``[N, C, 1, 1]`` or NHWC ``[N, 1, 1, C]``."""
    return len(shape) == 4 and sorted(int(d) for d in shape[1:])[:2] == [1, 1] and max(shape[1:]) > 1


def _tensors(row: dict) -> list[list]:
    """The activation inputs of a row (QLinear ops interleave scales and zero points: a, _, _, b, ...)."""
    shapes = row.get("shapes") or []
    if row.get("op", "").startswith("QLinear") and len(shapes) > 3:
        return [shapes[0], shapes[3]]
    return shapes


def classify(runtime: str, row: dict, scopes: set[str] = frozenset()) -> str:
    """The operator class of one profiled layer row (``{layer, op, kernel, ...}``) of ``runtime``."""
    layer, op = row.get("layer", ""), row.get("op", "")
    if runtime == "trt" or not op:
        return _classify_trt(layer, scopes)
    table = OP_CLASSES.get(runtime, OP_CLASSES["ort"])
    found = table.get(op, OTHER)
    if found == QDQ:
        return QDQ
    if any(layer.startswith(s) for s in scopes):
        return SE
    tensors = _tensors(row)
    if runtime == "ort":
        if found == DENSE:
            x = tensors[0] if tensors else []
            if len(x) == 4 and _numel(x[1:]) == max(x[1:]):  # a conv on a 1x1 map: SE's FC convs
                return SE
            return DW if row.get("conv_group", 1) > 1 and row.get("channels_per_group") == 1 else DENSE
        if op in ("MatMul", "QLinearMatMul", "MatMulInteger", "FusedMatMul"):
            second = tensors[1] if len(tensors) > 1 else []
            return ATTN if len(second) >= 3 else LINEAR  # a weight is 2-D (or not reported)
        if op in ("Mul", "QLinearMul", "Sigmoid", "QLinearSigmoid", "HardSigmoid"):
            if any(_per_channel(t) for t in tensors[:2]) and len(tensors[0]) == 4:
                return SE
            if op in ("Mul", "QLinearMul") and (len(tensors) < 2 or _numel(tensors[0]) != _numel(tensors[1])):
                return OTHER  # a scale by a constant, not an activation
        if op in ("ReduceMean", "GlobalAveragePool", "QLinearGlobalAveragePool"):
            return OTHER
    if runtime == "executorch":
        if op == "Convolution" and "DWConv" in row.get("kernel", ""):
            return DW
        if op == "Fully Connected" and row.get("source"):  # without one: a program built before the operator map
            return LINEAR if row["source"] == "linear" else SE if row["source"].endswith("on a 1x1 map") else DENSE
    if runtime == "openvino":
        if op == "Subgraph":
            if _ATTN_SCOPE.search(layer) and "fq_output" not in layer:
                return ATTN  # OpenVINO's MHA snippet: QK^T, softmax and AV in one kernel
            if "fq_output" in layer:
                return QDQ  # an element-wise chain ending in a FakeQuantize
            last = layer.rsplit("/", 1)[-1]
            return OTHER if last.startswith(("Add", "Sub", "Div")) else ACT
        if op == "Convolution" and _DW_NAME.search(layer):
            return DW
    return found


def _classify_trt(layer: str, scopes: set[str]) -> str:
    first = layer.split(" + ")[0].strip()
    if first.startswith("Reformatting"):
        return MOVE
    if first.startswith(("{ForeignNode", "__myl")):
        return ATTN if _ATTN_SCOPE.search(layer) or "Softmax" in layer else OTHER
    if first.startswith("PWN("):
        return ACT
    if any(first.startswith(s) for s in scopes):
        return SE
    m = _TRT_OP.search(first.rsplit("/", 1)[-1])
    op = m.group(1) if m else first
    found = OP_CLASSES["trt"].get(op, OTHER)
    if found == DENSE and _DW_NAME.search(first):
        return DW
    if found == LINEAR and _ATTN_SCOPE.search(first) and not _LINEAR_NAME.search(first):
        return ATTN
    return found


def class_shares(runtime: str, rows: list[dict]) -> dict[str, float]:
    """Fraction of the profiled time in each class (zeros left out), from one record's layer rows."""
    scopes = se_scopes([r.get("layer", "") for r in rows])
    totals: dict[str, float] = defaultdict(float)
    for r in rows:
        totals[classify(runtime, r, scopes)] += float(r.get("mean_ms") or 0.0)
    whole = sum(totals.values()) or 1.0
    return {c: totals[c] / whole for c in CLASSES if totals.get(c)}
