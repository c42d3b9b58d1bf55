"""Content keys: what decides whether a built model is current. Every key is made here."""

from __future__ import annotations

from edgebench.portable.hashing import sha256_json

EXPORT_FORMAT = 1  # bump when the export recipe changes, to invalidate old artifacts
INT8_FORMAT = 3  # bump when the quantization recipe changes


def onnx_key(spec: dict, weights: str | None, preprocess: dict, opset: int, torch_version: str) -> str:
    """The exported ONNX: the model spec, the weights' hash, their preprocessing, opset and torch."""
    return sha256_json({"spec": spec, "weights": weights, "preprocess": preprocess, "opset": opset,
                        "format": EXPORT_FORMAT, "torch": torch_version})


def engine_key(onnx_sha256: str, runtime: str, version: str | None, precision: str, options: object = None,
               devices: list[str] | None = None, sources: dict[str, str] | None = None, build_format: int = 0) -> str:
    """One engine: the ONNX, runtime and version, precision; for a backend with build options (a TensorRT
    plan), also those options (``options.key(precision)``), its devices and the models it is built from
    (``sources``: their content keys, e.g. the Q/DQ ONNX of an INT8 plan), and the backend's ``build_format``."""
    fields: dict = {"onnx": onnx_sha256, "runtime": runtime, "version": version, "precision": precision,
                    "format": EXPORT_FORMAT}
    if options is not None:
        fields["build"] = {**options.key(precision), "devices": devices or []}
    if sources:
        fields["sources"] = sources
    if build_format:
        fields["backend_format"] = build_format
    return sha256_json(fields)


def int8_key(base: dict, runtime: str, versions: dict[str, str | None]) -> str:
    """One INT8 model: the calibration (``base``: ONNX, calibration set, method, seed, ...) and the tools."""
    return sha256_json({**base, "format": INT8_FORMAT, "runtime": runtime, **versions})
