"""Accuracy-aware fallback for ONNX Runtime INT8: keep the most sensitive layers in float.

1. Rank the quantizable nodes by how much error each adds: the relative error of
   its output (INT8 model vs FP32) minus that of its input, on a few images.
2. Exclude the top 1, 2, 4, 8, ... nodes (``nodes_to_exclude``), re-quantizing from
   the cached calibration ranges, until top-1 on the validation images (the
   labelled calibration images: the evaluation split stays untouched) is within
   the budget, or the step / time bound is reached.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgebench.quantize import ort_quant

PROBE_IMAGES = 16
MAX_STEPS = 6
TIME_BUDGET_S = 300.0


def _session(model_or_path):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    data = model_or_path.SerializeToString() if hasattr(model_or_path, "SerializeToString") else str(model_or_path)
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def _with_outputs(path: Path, names: list[str]):
    """The model at ``path`` with ``names`` as extra outputs, where it computes them (the quantizer
    may have fused a node away, e.g. a ReLU into its conv's QuantizeLinear)."""
    import onnx
    model = onnx.load(str(path))
    have = {o.name for o in model.graph.output}
    computed = {o for n in model.graph.node for o in n.output}
    for name in names:
        if name not in have and name in computed:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return model


def top1(path: Path, images: np.ndarray, labels: np.ndarray, batch: int = 16) -> float:
    sess = _session(path)
    name = sess.get_inputs()[0].name
    preds = np.concatenate([sess.run(None, {name: images[i:i + batch]})[0].argmax(1)
                            for i in range(0, len(images), batch)])
    return float((preds == labels).mean() * 100.0)


def rank_nodes(fp32: Path, int8: Path, images: np.ndarray, skip: set[str]) -> list[tuple[str, float]]:
    """Quantizable nodes, most error-adding first: (name, added relative error)."""
    import onnx
    graph = onnx.load(str(fp32), load_external_data=False).graph
    nodes = [n for n in graph.node if n.op_type in ort_quant.QUANTIZABLE and n.name not in skip]
    tensors = sorted({t for n in nodes for t in (n.input[0], n.output[0])})
    x = images[:PROBE_IMAGES]
    ref_s, q_s = _session(_with_outputs(fp32, tensors)), _session(_with_outputs(int8, tensors))
    found = {}
    for sess, key in ((ref_s, "ref"), (q_s, "q")):
        names = [o.name for o in sess.get_outputs()]
        outs = sess.run(None, {sess.get_inputs()[0].name: x})
        found[key] = dict(zip(names, outs))

    def rel(t: str) -> float:
        a, b = found["ref"].get(t), found["q"].get(t)
        if a is None or b is None or a.shape != b.shape:
            return 0.0
        return float(np.linalg.norm(b - a) / max(np.linalg.norm(a), 1e-12))

    scores = [(n.name, rel(n.output[0]) - rel(n.input[0])) for n in nodes]
    return sorted(scores, key=lambda s: -s[1])


def restore_sensitive(prepared: Path, out: Path, images: np.ndarray, val: tuple[np.ndarray, np.ndarray],
                      method: str, cache: Path, fragile: dict[str, str], max_drop: float,
                      status: Callable[[str], None] = lambda _m: None, recipe: ort_quant.OrtRecipe = ort_quant.U8S8
                      ) -> dict:
    """Exclude the most sensitive nodes from ``out`` until the top-1 drop is within ``max_drop`` points."""
    start = time.perf_counter()
    val_images, val_labels = val
    ref = top1(prepared, val_images, val_labels)
    acc = top1(out, val_images, val_labels)
    steps = [{"excluded": 0, "top1": acc, "drop": round(ref - acc, 3)}]
    ranking = rank_nodes(prepared, out, images, set(fragile))
    excluded: list[str] = []
    k = 1
    while ref - acc > max_drop and len(steps) <= MAX_STEPS and k <= len(ranking) \
            and time.perf_counter() - start < TIME_BUDGET_S:
        excluded = [name for name, _ in ranking[:k]]
        status(f"ONNX Runtime: {len(excluded)} most sensitive layers in float")
        ort_quant.quantize(prepared, out, None, method, "cpu", cache, list(fragile) + excluded, recipe)
        acc = top1(out, val_images, val_labels)
        steps.append({"excluded": k, "top1": acc, "drop": round(ref - acc, 3)})
        k *= 2
    return {"method": "per-layer sensitivity (added relative output error), greedy exclusion",
            "validation": "labelled calibration images", "validation_images": len(val_labels),
            "fp32_top1": ref, "int8_top1": acc, "max_drop_points": max_drop, "met": ref - acc <= max_drop,
            "restored_to_float": excluded, "ranking_top10": [(n, round(s, 5)) for n, s in ranking[:10]],
            "steps": steps, "seconds": round(time.perf_counter() - start, 2)}
