"""Where the time goes: every profiled layer of every runtime in one of a few operator classes.

Each backend's table (``Runtime.op_classes``) maps its profiler's names into the classes: ONNX Runtime's
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

from edgebench.backends import runtime_class
from edgebench.portable.errors import UsageError
from edgebench.portable.layer_profile import ACT, ATTN, DENSE, DW, LINEAR, MOVE, OTHER, QDQ, SE
from edgebench.portable.layer_profile import OP_CLASS_NAMES as CLASSES


def op_table(runtime: str) -> dict[str, str]:
    """``runtime``'s own op name -> class table (``Runtime.op_classes``, in its backend package); ORT's for a name
    the registry does not know (a record of a runtime that is not installed here still reads by op type)."""
    try:
        return runtime_class(runtime).op_classes
    except UsageError:
        return runtime_class("ort").op_classes


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
    found = op_table(runtime).get(op, OTHER)
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
    found = op_table("trt").get(op, OTHER)
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
