"""NNCF post-training quantization of the OpenVINO FP32 IR.

``nncf.quantize`` on the OpenVINO model (read from the FP32 IR) with an
``nncf.Dataset`` over the same preprocessed calibration images as ONNX Runtime;
``ModelType.TRANSFORMER`` and the MIXED preset for transformer-like models; fast
bias correction on. Layers known to be fragile are found in the graph and left
in float (see :func:`fragile_ops`), and recorded. ``overflow_fix`` (7-bit weights
against ``VPMADDUBSW`` saturation) comes from the CPU's recipe (:mod:`.recipes`).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from edgebench.portable.library_logs import import_routed

WEIGHTED = ("Convolution", "GroupConvolution", "MatMul")
_PASS_THROUGH = ("Convert", "Reshape", "Squeeze", "Unsqueeze", "Add", "Relu", "Swish", "HSwish", "Clamp",
                 "Multiply", "Sigmoid", "HSigmoid", "PRelu", "Concat", "ShapeOf", "Gather")


def fragile_ops(model) -> dict[str, str]:
    """Operations left in float, found from the OpenVINO graph: friendly name -> reason.

    * squeeze-and-excitation convolutions (between ReduceMean and the sigmoid gate);
    * a fully connected classifier (MatMul feeding the result): cheap and decisive.
    """
    found: dict[str, str] = {}
    for op in model.get_ordered_ops():
        if op.get_type_name() not in ("Sigmoid", "HSigmoid"):
            continue
        path, node = [], op
        for _ in range(8):
            node = node.input_value(0).get_node() if node.get_input_size() else None
            if node is None:
                break
            kind = node.get_type_name()
            if kind == "ReduceMean":
                for p in path:
                    found[p.get_friendly_name()] = "squeeze-excitation conv"
                break
            if kind in WEIGHTED:
                path.append(node)
    for result in model.get_results():
        node = result.input_value(0).get_node()
        for _ in range(4):
            kind = node.get_type_name()
            if kind == "MatMul":
                found[node.get_friendly_name()] = "fully connected classifier (last layer)"
                break
            if kind not in ("Add", "Reshape", "Convert", "Squeeze"):
                break
            node = node.input_value(0).get_node()
    return found


def _settings(transformer_like: bool, ignored: dict[str, str]) -> dict:
    nncf = import_routed("nncf")  # its INFO lines follow -v
    kwargs: dict = {"fast_bias_correction": True, "ignored_scope": nncf.IgnoredScope(names=list(ignored), validate=False)}
    if transformer_like:
        kwargs.update(model_type=nncf.ModelType.TRANSFORMER, preset=nncf.QuantizationPreset.MIXED)
    else:
        kwargs.update(preset=nncf.QuantizationPreset.PERFORMANCE)
    return kwargs


def _advanced(overflow_fix: str):
    """NNCF's advanced parameters with ``overflow_fix`` ("enable", "first-layer" or "disable")."""
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
    fix = {"enable": OverflowFix.ENABLE, "first-layer": OverflowFix.FIRST_LAYER, "disable": OverflowFix.DISABLE}
    return AdvancedQuantizationParameters(overflow_fix=fix[overflow_fix])


@contextlib.contextmanager
def _output_to_stderr() -> Iterator[None]:
    """NNCF's progress bars go to stderr, so that stdout stays machine-readable (--json); its log lines
    follow the project's logging (:func:`~edgebench.portable.library_logs.import_routed`)."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def quantize_ir(fp32_xml: Path, out_xml: Path, images: np.ndarray, transformer_like: bool,
                batch: int = 1, overflow_fix: str = "first-layer") -> dict:
    """``nncf.quantize`` the FP32 IR over ``images``; save the INT8 IR to ``out_xml``."""
    nncf = import_routed("nncf")  # its INFO lines follow -v
    import openvino as ov
    model = ov.Core().read_model(str(fp32_xml))
    ignored = fragile_ops(model)
    dataset = nncf.Dataset([images[i:i + batch] for i in range(0, len(images), batch)])
    start = time.perf_counter()
    with _output_to_stderr():
        quantized = nncf.quantize(model, dataset, subset_size=len(images),
                                  advanced_parameters=_advanced(overflow_fix), **_settings(transformer_like, ignored))
    seconds = time.perf_counter() - start
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out_xml), compress_to_fp16=False)
    return {"tool": "nncf.quantize", "nncf": nncf.__version__, "subset_size": len(images), "overflow_fix": overflow_fix,
            "preset": "MIXED" if transformer_like else "PERFORMANCE",
            "model_type": "TRANSFORMER" if transformer_like else None, "fast_bias_correction": True,
            "ignored_scope": ignored, "seconds": round(seconds, 2), "files": [out_xml, out_xml.with_suffix(".bin")]}


def quantize_ir_with_accuracy_control(fp32_xml: Path, out_xml: Path, images: np.ndarray, val_images: np.ndarray,
                                      val_labels: np.ndarray, max_drop_points: float, transformer_like: bool,
                                      max_iterations: int = 8, overflow_fix: str = "first-layer") -> dict:
    """``nncf.quantize_with_accuracy_control``: layers go back to float until top-1 drops at most
    ``max_drop_points`` on the validation images (the labelled calibration images)."""
    nncf = import_routed("nncf")  # its INFO lines follow -v
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    model = ov.Core().read_model(str(fp32_xml))
    ignored = fragile_ops(model)

    def validate(compiled, data: Iterable) -> tuple[float, list[float]]:
        hits = []
        for x, y in data:
            pred = compiled(x)[0].argmax(1)
            hits += [float(p == t) for p, t in zip(pred, y)]
        return float(np.mean(hits)), hits

    calib = nncf.Dataset([images[i:i + 1] for i in range(len(images))])
    val = nncf.Dataset([(val_images[i:i + 1], val_labels[i:i + 1]) for i in range(len(val_images))])
    start = time.perf_counter()
    with _output_to_stderr():
        quantized = nncf.quantize_with_accuracy_control(
            model, calib, val, validation_fn=validate, max_drop=max_drop_points / 100.0,
            drop_type=nncf.DropType.ABSOLUTE, subset_size=len(images),
            advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(max_num_iterations=max_iterations),
            advanced_quantization_parameters=_advanced(overflow_fix), **_settings(transformer_like, ignored))
    seconds = time.perf_counter() - start
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out_xml), compress_to_fp16=False)
    restored = float_layers(quantized, exclude=set(ignored))
    return {"tool": "nncf.quantize_with_accuracy_control", "nncf": nncf.__version__, "subset_size": len(images),
            "overflow_fix": overflow_fix,
            "validation_images": len(val_images), "max_drop_points": max_drop_points,
            "max_num_iterations": max_iterations, "ignored_scope": ignored, "restored_to_float": restored,
            "seconds": round(seconds, 2), "files": [out_xml, out_xml.with_suffix(".bin")]}


def float_layers(model, exclude: set[str] = frozenset()) -> list[str]:
    """Weighted layers whose activations have no FakeQuantize in front (they run in float)."""
    left = []
    for op in model.get_ordered_ops():
        if op.get_type_name() not in WEIGHTED or op.get_friendly_name() in exclude:
            continue
        src = op.input_value(0).get_node()
        while src.get_type_name() in ("Pad", "Convert", "Reshape") and src.get_input_size():
            src = src.input_value(0).get_node()
        if src.get_type_name() not in ("FakeQuantize", "FakeConvert"):
            left.append(op.get_friendly_name())
    return left


Validator = Callable[[object, Iterable], float]
