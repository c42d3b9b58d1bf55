"""OpenVINO engines: the IR converted from the ONNX (FP32, or FP16-compressed weights)."""

from __future__ import annotations

from pathlib import Path


def openvino_ir(onnx_path: Path, xml_path: Path, precision: str) -> dict:
    """``ov.convert_model`` + ``ov.save_model``; weights stay FP32 unless FP16 is asked for."""
    import openvino as ov
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    compress = precision == "fp16"
    ov.save_model(ov.convert_model(str(onnx_path)), str(xml_path), compress_to_fp16=compress)
    return {"tool": "ov.convert_model + ov.save_model", "compress_to_fp16": compress,
            "files": [xml_path, xml_path.with_suffix(".bin")]}
