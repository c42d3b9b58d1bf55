"""ONNX -> per-runtime engines: OpenVINO IR and ORT-optimised ONNX (FP32 or FP16)."""

from __future__ import annotations

from pathlib import Path

ORT_OFFLINE_LEVEL = "ORT_ENABLE_EXTENDED"  # ENABLE_ALL adds layout changes tied to the build machine


def openvino_ir(onnx_path: Path, xml_path: Path, precision: str) -> dict:
    """``ov.convert_model`` + ``ov.save_model``; weights stay FP32 unless FP16 is asked for."""
    import openvino as ov
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    compress = precision == "fp16"
    ov.save_model(ov.convert_model(str(onnx_path)), str(xml_path), compress_to_fp16=compress)
    return {"tool": "ov.convert_model + ov.save_model", "compress_to_fp16": compress,
            "files": [xml_path, xml_path.with_suffix(".bin")]}


def ort_optimized(onnx_path: Path, out_path: Path) -> dict:
    """Save ORT's offline graph optimisation of the model (portable level)."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, ORT_OFFLINE_LEVEL)
    so.optimized_model_filepath = str(out_path)
    ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    return {"tool": "onnxruntime optimized_model_filepath", "graph_optimization_level": ORT_OFFLINE_LEVEL,
            "files": [out_path]}


def ort_fp16(onnx_path: Path, out_path: Path) -> dict:
    """FP16 ONNX with FP32 inputs/outputs (for GPU execution providers)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    model = convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out_path))
    return {"tool": "onnxruntime.transformers.float16 (keep_io_types)", "files": [out_path]}
