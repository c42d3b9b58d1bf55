"""What each layer of a TensorRT plan runs as, from its engine inspector (``get_engine_information`` JSON).

A plan built with ``ProfilingVerbosity.DETAILED`` describes each layer with its ``LayerType``, its
tensors' ``Format/Datatype`` ("Row major linear FP32", "Thirty-two wide channel vectorized row major
Int8 format", "Half") and the ``TacticName`` of the kernel chosen. The precision of a layer is that of
its first input (a Reformat into INT8 counts as the precision it reads). A plan built with less detail
lists names only: its layers get no type, precision or kernel.

Standard library only: the Jetson bundle ships this file next to its runner.
"""

from __future__ import annotations

import json

_PRECISIONS = (("int8", "INT8"), ("fp8", "FP8"), ("bf16", "BF16"), ("half", "FP16"), ("fp16", "FP16"),
               ("float", "FP32"), ("fp32", "FP32"), ("int32", "INT32"), ("int64", "INT64"), ("bool", "BOOL"))


def precision_of(fmt: str) -> str:
    lowered = str(fmt).lower()
    return next((name for key, name in _PRECISIONS if key in lowered), "")


def layer_info(engine_information: str) -> dict[str, dict]:
    """``{layer name: {"type", "precision", "kernel"}}`` from the inspector's JSON."""
    try:
        data = json.loads(engine_information)
    except json.JSONDecodeError:  # a diagnostic must not fail a measured record
        return {}
    layers = data.get("Layers", []) if isinstance(data, dict) else data
    out = {}
    for layer in layers:
        if isinstance(layer, str):  # built without DETAILED verbosity: names only
            out[layer] = {"type": "", "precision": "", "kernel": ""}
            continue
        inputs = layer.get("Inputs") or []
        first = inputs[0].get("Format/Datatype", "") if inputs and isinstance(inputs[0], dict) else ""
        out[layer.get("Name", "")] = {"type": layer.get("LayerType", ""), "precision": precision_of(first),
                                      "kernel": layer.get("TacticName", "")}
    return out


def op_and_kernel(info: dict[str, dict], layer: str) -> tuple[str, str]:
    """The (op, kernel) columns of ``run --profile`` for one profiled layer, e.g.
    ("CaskConvolution INT8", "sm80_xmma_fprop_implicit_gemm_interleaved_i8i8_...")."""
    found = info.get(layer) or {}
    return " ".join(p for p in (found.get("type", ""), found.get("precision", "")) if p), found.get("kernel", "")


def precision_counts(info: dict[str, dict]) -> dict[str, int]:
    """How many layers run in each precision ("" when the plan does not say)."""
    counts: dict[str, int] = {}
    for layer in info.values():
        counts[layer["precision"] or "unknown"] = counts.get(layer["precision"] or "unknown", 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))
