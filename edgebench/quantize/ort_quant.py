"""ONNX Runtime static quantization: Q/DQ ONNX models from one calibration set.

Two targets come out of one calibration pass (ranges are cached and reused):

* ``cpu``: the recipe chosen for this CPU's INT8 class (:mod:`.recipes`): U8S8
  (activations QUInt8, weights QInt8 per channel) where VNNI/AMX or ARM dot
  products do not saturate, another recipe where ``VPMADDUBSW`` does.
* ``trt``: S8S8 with symmetric activations and weights, what TensorRT's
  explicit-quantization (Q/DQ) path expects.

``quant_pre_process`` (shape inference + ORT graph optimisation) runs first.

Shape arithmetic is never quantized. Exporters compute some values from
``Shape`` at run time: TF "same" padding (timm's ``tf_*`` models), attention
scales, reshape sizes. ORT would otherwise quantize those float scalars like
activations; an asymmetric U8 grid turns a pad of 1 into 0.996, which truncates
to 0 and shifts every feature map by one pixel (tf_efficientnet_lite0: 2.1 pt
top-1 lost, agreement with FP32 0.913 instead of 0.976).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from edgebench.portable.errors import UsageError
from edgebench.quantize.recipes import U8S8, OrtRecipe

log = logging.getLogger(__name__)

METHODS = ("minmax", "entropy", "percentile")
#: What ``--method auto`` is for ORT: min/max, the method the CPU-class recipe table was measured with.
DEFAULT_METHOD = "minmax"
QUANTIZABLE = ("Conv", "MatMul", "Gemm", "ConvTranspose")
TARGETS = ("cpu", "trt")
# The Q/DQ layout TensorRT's ONNX parser takes: biases stay float (its DequantizeLinear has no INT32
# input), weights stay FP32 behind a QuantizeLinear/DequantizeLinear pair (TensorRT quantizes them
# with that scale, TensorRT 8.5 to 11), and every consumer gets its own pair, so TensorRT can fuse
# each into its layer.
TRT_LAYOUT = {"QuantizeBias": False, "AddQDQPairToWeight": True, "DedicatedQDQPair": True}
# TensorRT's Q/DQ placement: only the inputs of the weighted ops. With every op type (ORT's default) the
# pools, Flatten, HardSigmoid/Mul gates and Adds got Q/DQ too, and the graph output came out of a
# DequantizeLinear (mobilenet_v3_large, squeezenet1_1: 8-bit logits); TensorRT fuses the rest itself.
TRT_OP_TYPES = list(QUANTIZABLE)
CALIB_BATCH = 8


class ImageReader:
    """A CalibrationDataReader over preprocessed NCHW images, in small batches."""

    def __init__(self, input_name: str, images: np.ndarray, batch: int = CALIB_BATCH) -> None:
        self.input_name, self.images, self.batch = input_name, images, batch
        self._pos = 0

    def get_next(self) -> dict | None:
        if self._pos >= len(self.images):
            return None
        chunk = self.images[self._pos:self._pos + self.batch]
        self._pos += self.batch
        return {self.input_name: np.ascontiguousarray(chunk, dtype=np.float32)}

    def rewind(self) -> None:
        self._pos = 0

    def __len__(self) -> int:
        return len(self.images)


def calibrate_method(name: str):
    """ORT's calibrator for ``name``. Note: ``quantize_static`` cannot set the entropy calibrator's bins;
    its defaults (128 histogram bins, 128 quantized) leave nothing to clip, so ``entropy`` gives the
    min/max ranges (measured: identical engines for squeezenet1_1 and tf_efficientnet_lite0). Computing
    the ranges with TensorRT's 2048/128 bins clipped far too much for U8 activations here
    (squeezenet1_1: +9.6 pt top-1 drop vs +1.1 for min/max, 700 images), so it is not done."""
    from onnxruntime.quantization import CalibrationMethod
    try:
        return {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                "percentile": CalibrationMethod.Percentile}[name]
    except KeyError:
        raise UsageError(f"--method must be one of {', '.join(METHODS)}, not {name!r}") from None


def pre_process(fp32_onnx: Path, out: Path) -> Path:
    """``quant_pre_process``: symbolic shape inference and ORT optimisation before quantizing."""
    from onnxruntime.quantization.shape_inference import quant_pre_process
    out.parent.mkdir(parents=True, exist_ok=True)
    source, target = str(Path(fp32_onnx).resolve()), str(out.resolve())
    # a failed symbolic inference dumps sym_shape_infer_temp.onnx (+ external data) into the working
    # directory: let it land in a temporary one
    with tempfile.TemporaryDirectory(prefix="edgebench-prep.") as scratch:
        cwd = os.getcwd()
        os.chdir(scratch)
        try:
            quant_pre_process(source, target, skip_symbolic_shape=False)
        except Exception as exc:  # noqa: BLE001 - symbolic inference fails on some exports; ONNX inference suffices
            log.info("quant_pre_process with symbolic shapes failed (%s); retrying without", exc)
            quant_pre_process(source, target, skip_symbolic_shape=True)
        finally:
            os.chdir(cwd)
    return out


def fragile_nodes(onnx_path: Path) -> dict[str, str]:
    """Quantizable nodes left in float, found from the graph structure: node name -> reason.

    * squeeze-and-excitation convs (between a global pool and the sigmoid gate):
      tiny compute, and their gate scales whole feature maps;
    * a fully connected classifier (Gemm/MatMul feeding the output): cheap, and its
      logits set the ranking. A conv classifier (SqueezeNet) stays quantized: it is
      a large share of the compute.
    """
    import onnx
    model = onnx.load(str(onnx_path), load_external_data=False)
    nodes = list(model.graph.node)
    producer = {out: n for n in nodes for out in n.output}
    consumers: dict[str, list] = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    found: dict[str, str] = {}
    for gate in nodes:
        if gate.op_type not in ("Sigmoid", "HardSigmoid"):
            continue
        if not any(c.op_type == "Mul" for c in consumers.get(gate.output[0], [])):
            continue
        path, node = [], gate
        for _ in range(8):  # walk back to the global pool that starts the SE branch
            node = producer.get(node.input[0]) if node.input else None
            if node is None:
                break
            if node.op_type in ("GlobalAveragePool", "ReduceMean"):
                for p in path:
                    found[p.name] = "squeeze-excitation conv"
                break
            if node.op_type in QUANTIZABLE:
                path.append(node)
    outputs = {o.name for o in model.graph.output}
    for n in nodes:
        if n.op_type in ("Gemm", "MatMul"):
            tail = [n]
            seen = 0
            while tail and seen < 4:
                if any(o in outputs for o in tail[0].output):
                    found[n.name] = "fully connected classifier (last layer)"
                    break
                nxt = consumers.get(tail[0].output[0], [])
                tail = nxt[:1] if len(nxt) == 1 and nxt[0].op_type in ("Add", "Reshape", "Flatten", "Identity") else []
                seen += 1
    return found


def shape_nodes(onnx_path: Path) -> list[str]:
    """Nodes computing from tensor shapes only (``Shape`` and everything fed by shapes and constants)."""
    import onnx
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    constant = {i.name for i in graph.initializer}
    derived: set[str] = set()
    found = []
    for node in graph.node:  # ONNX graphs are topologically sorted
        inputs = [i for i in node.input if i]
        if node.op_type == "Constant":
            constant.update(node.output)
        elif node.op_type == "Shape" or (any(i in derived for i in inputs)
                                         and all(i in derived or i in constant for i in inputs)):
            derived.update(node.output)
            found.append(node.name)
    return found


def quantizable_nodes(onnx_path: Path) -> list[str]:
    import onnx
    model = onnx.load(str(onnx_path), load_external_data=False)
    return [n.name for n in model.graph.node if n.op_type in QUANTIZABLE]


def quantize(prepared: Path, out: Path, images: np.ndarray | None, method: str, target: str,
             cache: Path, nodes_to_exclude: list[str] | tuple[str, ...] = (), recipe: OrtRecipe = U8S8) -> dict:
    """Quantize ``prepared`` (a pre-processed FP32 ONNX) to a Q/DQ model for ``target``; ``recipe``:
    the ``cpu`` target's types and ``reduce_range`` (``trt`` is always symmetric S8S8).

    Calibration ranges come from ``cache`` when it exists, else from ``images`` (and are cached).
    """
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    if target not in TARGETS:
        raise UsageError(f"quantization target must be one of {', '.join(TARGETS)}")
    input_name = onnx.load(str(prepared), load_external_data=False).graph.input[0].name
    # histogram calibrators stack per-batch arrays: equal batches (1) are required there
    reader = ImageReader(input_name, images, CALIB_BATCH if method == "minmax" else 1) if images is not None else None
    symmetric = target == "trt"
    activation_type, weight_type = ("QInt8", "QInt8") if symmetric else (recipe.activation_type, recipe.weight_type)
    reduce_range = recipe.reduce_range and not symmetric
    extra = {"ActivationSymmetric": symmetric, "WeightSymmetric": True, **(TRT_LAYOUT if target == "trt" else {})}
    shape_math = shape_nodes(prepared)
    if method == "percentile":
        extra["CalibPercentile"] = 99.999
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    quantize_static(
        str(prepared), str(out), reader,
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType[activation_type],
        weight_type=QuantType[weight_type],
        reduce_range=reduce_range,
        calibrate_method=calibrate_method(method),
        op_types_to_quantize=TRT_OP_TYPES if target == "trt" else None,
        nodes_to_exclude=[*nodes_to_exclude, *shape_math],
        extra_options=extra,
        calibration_cache_path=str(cache),
    )
    return {
        "tool": "onnxruntime.quantization.quantize_static", "format": "QDQ", "per_channel": True,
        "activation_type": activation_type, "weight_type": weight_type, "reduce_range": reduce_range,
        "activation_symmetric": symmetric, "weight_symmetric": True, "method": method, "target": target,
        **({"layout": TRT_LAYOUT, "op_types_to_quantize": TRT_OP_TYPES} if target == "trt" else {}),
        "nodes_to_exclude": list(nodes_to_exclude), "shape_nodes_not_quantized": len(shape_math), "pre_process": "quant_pre_process",
        "seconds": round(time.perf_counter() - start, 2),
    }
