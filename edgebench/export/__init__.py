"""torch -> ONNX -> engines (OpenVINO IR, ORT-optimised ONNX, TensorRT plans), verified."""

from .artifacts import Artifacts
from .onnx_export import check_onnx, export_onnx
from .pipeline import ENGINE_BUILDERS, export_model

__all__ = ["ENGINE_BUILDERS", "Artifacts", "check_onnx", "export_model", "export_onnx"]
