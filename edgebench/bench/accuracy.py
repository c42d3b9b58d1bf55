"""Accuracy of the real engines on the evaluation split: FP32 and INT8, paired.

Every figure comes from running the engine a runtime really loads (the Q/DQ
ONNX on ONNX Runtime, the NNCF IR on OpenVINO), never from simulated
quantization. Images are decoded once per chunk and fed to every engine, so
all engines see identical inputs.

* top-1 / top-5 per engine (labelled data and trained weights only);
* INT8 drop in points with its paired standard error: the SE of the per-image
  difference in correctness, ``sqrt(var(d) / n) * 100``;
* top-1 agreement with the FP32 engine and mean logit cosine.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgebench.backends import RuntimeOptions, runtime_class
from edgebench.data import open_dataset
from edgebench.data.loader import load_samples
from edgebench.data.split import DEFAULT_NUM, DEFAULT_SEED, split_dataset
from edgebench.portable.errors import UsageError
from edgebench.quantize.int8 import preprocess_of

log = logging.getLogger(__name__)
CHUNK = 50
BATCH = 10


@dataclass
class Evaluation:
    logits: dict[str, np.ndarray]
    labels: list[int | None]
    skipped: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def _open(artifacts, runtime: str, precision: str, threads: int | None):
    path = artifacts.engine_path(runtime, precision)
    cls = runtime_class(runtime)
    runtime_obj = cls(path, RuntimeOptions(precision="fp32" if runtime == "torch" else precision,
                                           threads=threads or os.cpu_count(), batches=(BATCH,)))
    runtime_obj.activate()
    return runtime_obj


def run_engines(artifacts, engines: list[tuple[str, str]], samples, threads: int | None = None,
                status: Callable[[str], None] = lambda _m: None) -> Evaluation:
    """Run ``engines`` ((runtime, precision) pairs) on ``samples``; logits keyed "runtime/precision"."""
    spec = preprocess_of(artifacts.manifest)
    opened = {f"{rt}/{p}": _open(artifacts, rt, p, threads) for rt, p in engines}
    outs: dict[str, list[np.ndarray]] = {k: [] for k in opened}
    seconds = {k: 0.0 for k in opened}
    labels: list[int | None] = []
    skipped: list[str] = []
    try:
        for start in range(0, len(samples), CHUNK):
            status(f"evaluating images {start + 1}-{min(start + CHUNK, len(samples))} of {len(samples)}")
            loaded = load_samples(samples[start:start + CHUNK], spec)
            skipped += loaded.skipped
            labels += loaded.labels
            x = loaded.inputs
            if len(x) == 0:
                continue
            for key, rt in opened.items():
                t0 = time.perf_counter()
                for i in range(0, len(x), BATCH):
                    outs[key].append(rt.infer(x[i:i + BATCH]))
                seconds[key] += time.perf_counter() - t0
    finally:
        for rt in opened.values():
            rt.deactivate()
    if skipped:
        log.warning("%d of %d evaluation images unreadable, skipped, e.g. %s", len(skipped), len(samples), skipped[0])
    logits = {k: np.concatenate(v).reshape(len(labels), -1).astype(np.float32) if v else np.zeros((0, 0), np.float32)
              for k, v in outs.items()}
    return Evaluation(logits, labels, skipped, {k: round(v, 2) for k, v in seconds.items()})


def _topk(logits: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    top = np.argpartition(-logits, kth=min(k, logits.shape[1] - 1), axis=1)[:, :k]
    return (top == labels[:, None]).any(axis=1)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(denom > 0, (a * b).sum(1) / np.maximum(denom, 1e-300), 1.0)


def compare(ref: np.ndarray, out: np.ndarray, labels: np.ndarray | None) -> dict:
    """Agreement and cosine of ``out`` vs ``ref``; with labels, the top-1/top-5 drop and its paired SE."""
    n = len(ref)
    cos = _cosine(ref, out)
    found = {"n": n, "top1_agreement": float((ref.argmax(1) == out.argmax(1)).mean()) if n else None,
             "cosine_mean": float(cos.mean()) if n else None, "cosine_min": float(cos.min()) if n else None}
    if labels is not None and n > 1:
        for k in (1, 5):
            d = _topk(ref, labels, k).astype(np.float64) - _topk(out, labels, k).astype(np.float64)
            found[f"drop_top{k}_points"] = float(d.mean() * 100)
            found[f"drop_top{k}_se_points"] = float(np.sqrt(d.var(ddof=1) / n) * 100)
    return found


def summarize(evaluation: Evaluation, trained: bool | None, pairs: list[tuple[str, str]]) -> dict:
    """Per-engine top-1/top-5 and per-pair comparisons (``pairs`` of (reference, other) keys)."""
    labelled = bool(evaluation.labels) and all(label is not None for label in evaluation.labels)
    reason = None
    if not labelled:
        reason = "no labels (unlabelled folder): top-1 not measured"
    elif trained is False:
        reason = "random weights: top-1 is not meaningful; agreement and cosine only"
    labels = np.asarray(evaluation.labels, dtype=np.int64) if labelled and reason is None else None
    engines = {}
    for key, logits in evaluation.logits.items():
        row: dict = {"n": len(logits), "infer_seconds": evaluation.seconds.get(key)}
        if labels is not None and len(logits):
            row["top1"] = float(_topk(logits, labels, 1).mean() * 100)
            row["top5"] = float(_topk(logits, labels, 5).mean() * 100)
        else:
            row["top1"] = row["top5"] = None
            row["top1_reason"] = reason
        engines[key] = row
    comparisons = {f"{b} vs {a}": compare(evaluation.logits[a], evaluation.logits[b], labels)
                   for a, b in pairs if a in evaluation.logits and b in evaluation.logits}
    return {"engines": engines, "comparisons": comparisons, "top1_meaningful": reason is None,
            "top1_reason": reason, "images": len(evaluation.labels), "skipped": len(evaluation.skipped),
            "skipped_examples": evaluation.skipped[:5]}


def evaluation_split(artifacts, data: Path, num: int | None = None, seed: int | None = None):
    """The evaluation images: the complement of the calibration set the INT8 engines were built from."""
    dataset = open_dataset(data)
    calib = artifacts.manifest.get("int8", {}).get("calibration", {})
    same_folder = calib.get("folder") == str(Path(data).resolve())
    num = num if num is not None else (calib.get("requested") if same_folder else None) or DEFAULT_NUM
    seed = seed if seed is not None else (calib.get("seed") if same_folder else None)
    seed = DEFAULT_SEED if seed is None else seed
    split = split_dataset(dataset, num, seed)
    if not split.evaluation:
        raise UsageError(f"no images left for evaluation in {data} after taking {num} for calibration")
    return dataset, split


def evaluate_model(artifacts, runtime: str, precision: str, data: Path, threads: int | None = None,
                   num: int | None = None, seed: int | None = None, limit: int | None = None,
                   status: Callable[[str], None] = lambda _m: None) -> dict:
    """PyTorch FP32, ``runtime`` FP32 and (for int8) ``runtime`` INT8 on the evaluation split."""
    dataset, split = evaluation_split(artifacts, data, num, seed)
    samples = split.evaluation[:limit] if limit else split.evaluation
    # a user's ONNX file has no PyTorch model: its FP32 engine is the reference
    with_torch = runtime != "torch" and artifacts.manifest.get("weights", {}).get("source") != "onnx-file"
    engines = [("torch", "fp32")] if with_torch else []
    engines.append((runtime, "fp32"))
    pairs = [("torch/fp32", f"{runtime}/fp32")] if with_torch else []
    if precision == "int8" and runtime != "torch":
        engines.append((runtime, "int8"))
        pairs += [(f"{runtime}/fp32", f"{runtime}/int8")] + ([("torch/fp32", f"{runtime}/int8")] if with_torch else [])
    elif precision != "fp32":
        engines.append((runtime, precision))
        pairs.append((f"{runtime}/fp32", f"{runtime}/{precision}"))
    if not dataset.labelled:
        log.warning("%s has no labels: accuracy is skipped, agreement and cosine only", data)
    ev = run_engines(artifacts, engines, samples, threads, status)
    summary = summarize(ev, artifacts.manifest.get("weights", {}).get("trained"), pairs)
    summary["split"] = split.info
    summary["split_warnings"] = split.warnings
    summary["dataset_warnings"] = dataset.warnings
    if limit:
        summary["limit"] = limit
    return summary


def headline(summary: dict, runtime: str, precision: str) -> dict:
    """The figures a table shows: FP32/INT8 top-1, drop ± SE, agreement, cosine."""
    eng, cmp_ = summary["engines"], summary["comparisons"]
    pair = cmp_.get(f"{runtime}/{precision} vs {runtime}/fp32", {})
    return {"torch_fp32_top1": eng.get("torch/fp32", {}).get("top1"),
            "fp32_top1": eng.get(f"{runtime}/fp32", {}).get("top1"),
            "top1": eng.get(f"{runtime}/{precision}", {}).get("top1"),
            "drop_points": pair.get("drop_top1_points"), "drop_se_points": pair.get("drop_top1_se_points"),
            "agreement": pair.get("top1_agreement"), "cosine_mean": pair.get("cosine_mean")}
