"""Per-layer times, measured outside the timed loop (``run --profile``).

Each runtime reports its own profiler's numbers (ONNX Runtime session profiling,
OpenVINO ``PERF_COUNT``, TensorRT ``trt.IProfiler``) in one table: a row per
layer with the operation it ran as (``QLinearConv`` vs ``Conv``, OpenVINO's
``jit_avx512_amx_I8``), its mean time per run and its share. :func:`by_op`
folds the rows by operation: where the time goes, and which layers ran INT8.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

RUNS = 10

#: The operator classes a profile's time is told in ("where the time goes"): every runtime's op names map into
#: these (each backend's ``Runtime.op_classes``), and the report's structural rules refine conv, matmul and SE.
OP_CLASS_NAMES = ("dense conv", "depthwise conv", "linear (FC/MLP)", "attention matmul", "softmax", "layer norm",
                  "activation (h-swish/SiLU/GELU)", "squeeze-excitation", "quantize/dequantize",
                  "data movement (shuffle/split/concat)", "FC or 1x1 conv (no operator map)", "other")
DENSE, DW, LINEAR, ATTN, SOFTMAX, NORM, ACT, SE, QDQ, MOVE, UNMAPPED, OTHER = OP_CLASS_NAMES


def layer_table(samples: Iterable[tuple], runs: int) -> list[dict]:
    """Rows ``{layer, op, kernel, mean_ms, share}``, slowest first, from ``(layer, op, kernel, ms)``
    samples summed over ``runs`` profiled runs; an optional fifth item (a dict, e.g. ORT's input
    ``shapes``) is added to the layer's row."""
    totals: dict[tuple[str, str, str], float] = defaultdict(float)
    extras: dict[tuple[str, str, str], dict] = {}
    for layer, op, kernel, ms, *extra in samples:
        totals[(layer, op, kernel)] += ms
        if extra and extra[0]:
            extras.setdefault((layer, op, kernel), extra[0])
    rows = [{"layer": layer, "op": op, "kernel": kernel, "mean_ms": ms / max(runs, 1),
             **extras.get((layer, op, kernel), {})} for (layer, op, kernel), ms in totals.items()]
    total = sum(r["mean_ms"] for r in rows) or 1.0
    for r in rows:
        r["share"] = round(r["mean_ms"] / total, 4)
        r["mean_ms"] = round(r["mean_ms"], 5)
    return sorted(rows, key=lambda r: -r["mean_ms"])


def by_op(rows: list[dict]) -> list[dict]:
    """``{op, kernel, layers, mean_ms, share}`` per operation and kernel, slowest first."""
    groups: dict[tuple[str, str], dict] = {}
    for r in rows:
        g = groups.setdefault((r.get("op", ""), r.get("kernel", "")),
                              {"op": r.get("op", ""), "kernel": r.get("kernel", ""), "layers": 0, "mean_ms": 0.0,
                               "share": 0.0})
        g["layers"] += 1
        g["mean_ms"] += r["mean_ms"]
        g["share"] += r["share"]
    return sorted(groups.values(), key=lambda g: -g["mean_ms"])
