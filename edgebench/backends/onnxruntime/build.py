"""ONNX Runtime engines: the ORT-optimised ONNX (FP32) and an FP16 ONNX."""

from __future__ import annotations

from pathlib import Path

ORT_OFFLINE_LEVEL = "ORT_ENABLE_EXTENDED"  # ENABLE_ALL adds layout changes tied to the build machine


def ort_optimized(onnx_path: Path, out_path: Path) -> dict:
    """Save ORT's offline graph optimisation of the model (portable level)."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, ORT_OFFLINE_LEVEL)
    so.optimized_model_filepath = str(out_path)
    ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    return {"tool": "onnxruntime optimized_model_filepath", "graph_optimization_level": ORT_OFFLINE_LEVEL,
            "files": [out_path]}
