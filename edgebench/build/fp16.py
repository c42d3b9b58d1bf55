"""The FP16 ONNX (FP32 inputs and outputs) that ORT's FP16 engine and TensorRT 11's strongly typed FP16 plan load."""

from __future__ import annotations

from pathlib import Path


def fp16_onnx(onnx_path: Path, out_path: Path) -> dict:
    """FP16 ONNX with FP32 inputs/outputs (for GPU execution providers)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    model = convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out_path))
    return {"tool": "onnxruntime.transformers.float16 (keep_io_types)", "files": [out_path]}
