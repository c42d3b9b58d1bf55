#!/usr/bin/env python3
"""edgebench bundle runner: builds the TensorRT engine on the device and benchmarks it.

Standalone: needs Python 3.8+, numpy, and TensorRT + cuda-python (JetPack ships TensorRT;
cuda-python matching the JetPack CUDA: see cuda_compat.INSTALL); OpenCV only to preprocess the
bundled sample images; ONNX Runtime only for the CPU fallback (``--fallback ort``). It imports
nothing from edgebench except the files shipped next to it (bundle._RUNNER_FILES).

Steps: verify SHA256SUMS, build the plan for this GPU and TensorRT version, measure with
edgebench's protocol (warm-up by count and seconds, then at least N iterations and T
seconds; min/p50/p90/p99/max/mean/std/throughput), write edgebench result records
(JSON lines) to --out. The last stdout line is ``EDGEBENCH_DEPLOY <json summary>``.

Exit codes: 0 measured; 1 a measurement failed; 3 checksum mismatch; 4 TensorRT
unusable and no fallback.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
import traceback
import uuid
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUMMARY_PREFIX = "EDGEBENCH_DEPLOY "
CHECKSUMS = "SHA256SUMS"
SCHEMA = "edgebench.result/1"


# ---------------------------------------------------------------- checksums

def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 20)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def verify_checksums(root: Path) -> dict:
    """Check every file listed in SHA256SUMS (sha256sum format); list problems, never raise."""
    listing = root / CHECKSUMS
    if not listing.is_file():
        return {"verified": False, "files": 0, "problems": [f"{CHECKSUMS} is missing"]}
    problems, count = [], 0
    for line in listing.read_text().splitlines():
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        path = root / name
        count += 1
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256_file(path) != digest:
            problems.append(f"{name}: checksum mismatch")
    return {"verified": not problems, "files": count, "problems": problems}


# ---------------------------------------------------------------- protocol (edgebench.bench.protocol)

def time_loop(fn, warmup_iterations, warmup_seconds, min_iterations, min_seconds, max_seconds):
    import numpy as np
    start = time.perf_counter()
    warm = 0
    while warm < warmup_iterations or time.perf_counter() - start < warmup_seconds:
        fn()
        warm += 1
        if time.perf_counter() - start > max_seconds / 4:
            break
    if hasattr(fn, "warmup_done"):  # TensorRT's CUDA-event times: the timed loop's only
        fn.warmup_done()
    times = []
    begin = now = time.perf_counter()
    while len(times) < min_iterations or now - begin < min_seconds:
        t0 = time.perf_counter()
        fn()
        now = time.perf_counter()
        times.append(now - t0)
        if now - begin > max_seconds:
            break
    cut = len(times) < min_iterations or now - begin < min_seconds
    return np.asarray(times) * 1e3, {"warmup_iterations_run": warm, "iterations": len(times),
                                     "seconds": round(now - begin, 3), "cut_by_max_seconds": cut}


def summarize(times_ms, batch):
    import numpy as np
    p50, p90, p99 = np.percentile(times_ms, [50, 90, 99])
    mean = float(times_ms.mean())
    return {"min": float(times_ms.min()), "p50": float(p50), "p90": float(p90), "p99": float(p99),
            "max": float(times_ms.max()), "mean": mean,
            "std": float(times_ms.std(ddof=1)) if len(times_ms) > 1 else 0.0, "throughput_ips": batch * 1e3 / mean}


def peak_rss_mb():
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


# ---------------------------------------------------------------- inputs

def load_inputs(meta: dict, batch: int):
    """Bundled sample photos preprocessed like edgebench (OpenCV), else seeded random input."""
    import numpy as np
    shape = meta["input_shape"]
    images = sorted((HERE / "images").glob("*")) if (HERE / "images").is_dir() else []
    if images:
        try:
            import cv2
            spec = json.loads((HERE / "preprocess.json").read_text())
            tensors = []
            for path in images:
                bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if bgr is not None:
                    tensors.append(_preprocess(cv2, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), spec))
            if tensors:
                stack = np.stack(tensors)
                reps = -(-batch // len(stack))
                return np.ascontiguousarray(np.concatenate([stack] * reps)[:batch]), "images"
        except ImportError:
            pass
    return np.random.default_rng(0).standard_normal((batch, *shape), dtype=np.float32), "random"


def _preprocess(cv2, rgb, spec):
    import numpy as np
    size, resize = spec["input_size"], spec["resize"]
    h, w = rgb.shape[:2]
    new_h, new_w = (resize, int(resize * w / h)) if h <= w else (int(resize * h / w), resize)
    if (new_h, new_w) != (h, w):
        up = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC, "nearest": cv2.INTER_NEAREST}
        mode = cv2.INTER_AREA if new_h < h and new_w < w and spec["interpolation"] != "nearest" \
            else up[spec["interpolation"]]
        rgb = cv2.resize(rgb, (new_w, new_h), interpolation=mode)
    h, w = rgb.shape[:2]
    if h < size or w < size:
        ph, pw = max(size - h, 0), max(size - w, 0)
        rgb = cv2.copyMakeBorder(rgb, ph // 2, ph - ph // 2, pw // 2, pw - pw // 2, cv2.BORDER_CONSTANT, value=0)
        h, w = rgb.shape[:2]
    top, left = round((h - size) / 2.0), round((w - size) / 2.0)
    img = rgb[top:top + size, left:left + size].astype(np.float32) / 255.0
    img = (img - np.asarray(spec["mean"], dtype=np.float32)) / np.asarray(spec["std"], dtype=np.float32)
    return np.ascontiguousarray(img.transpose(2, 0, 1))


# ---------------------------------------------------------------- TensorRT

def tensorrt_reason():
    """None when TensorRT and cuda-python import and a GPU answers; else the precise reason."""
    sys.path.insert(0, str(HERE))
    try:
        import tensorrt as trt
    except ImportError as exc:
        return f"TensorRT not installed on device: {exc}"
    except Exception as exc:  # noqa: BLE001 - a broken install
        return f"TensorRT failed to import on device: {type(exc).__name__}: {exc}"
    import trt_api
    unsupported = trt_api.jetson_problem(trt.__version__, trt_api.l4t_release())
    if unsupported:
        return unsupported
    try:
        import trt_engine
        trt_engine.import_cudart()
    except ImportError as exc:
        return f"cuda-python not installed on device (TensorRT {trt.__version__} is): {exc}"
    try:
        trt_engine.gpu_info()
    except Exception as exc:  # noqa: BLE001
        import cuda_compat
        hint = cuda_compat.mismatch_hint(_driver_text())
        return f"no usable CUDA GPU on device (TensorRT {trt.__version__}): {exc}" + (f"; {hint}" if hint else "")
    return None


def _driver_text() -> str:
    try:
        return Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        return ""


def measure_trt(meta, args, batches, status):
    import tensorrt as trt
    import tensorrt_config as tc
    import trt_engine
    files = meta["files"]
    cfg = tc.derive_build_config(args.precision, trt.__version__, qdq_available="qdq_onnx" in files,
                                 fp16_onnx_available="fp16_onnx" in files, legacy_calibrator=args.legacy_calibrator,
                                 workspace_mb=args.workspace_mb, hardware_compatibility="none")
    source = HERE / files[{"fp32": "onnx", "fp16": "fp16_onnx", "qdq": "qdq_onnx"}[cfg.onnx_source]]
    profile = tc.profile_shapes(batches, meta["input_shape"])
    plan = HERE / "engine" / f"model.{args.precision}.plan"
    calibration = None
    if cfg.legacy_calibrator:
        images, _ = load_inputs(meta, 32)
        calibration = tc.calibration_batches(images, profile)
    status(f"building the TensorRT {trt.__version__} {args.precision} engine on the device")
    t0 = time.perf_counter()
    manifest = trt_engine.build_plan(source, plan, cfg, profile, timing_cache=HERE / "engine" / tc.TIMING_CACHE_FILE,
                                     calibration_batches=calibration,
                                     calibration_cache=HERE / "engine" / tc.CALIBRATION_CACHE_FILE)
    build_seconds = time.perf_counter() - t0
    rss_import = peak_rss_mb()
    t0 = time.perf_counter()
    engine = trt_engine.TrtEngine(plan)
    load_seconds = time.perf_counter() - t0
    out = []
    try:
        for batch in batches:
            inputs, source_kind = load_inputs(meta, batch)
            engine.prepare(inputs)
            t0 = time.perf_counter()
            engine.run_once(record=False)
            first_ms = (time.perf_counter() - t0) * 1e3
            if args.cuda_graph:
                engine.capture_graph()
            times, loop = time_loop(engine.timed_run(), *protocol_args(args))
            settings = {"device": "cuda:0", "gpu": engine.gpu, "tensorrt_version": trt.__version__,
                        "profile": profile, "build": cfg.to_dict(), "build_seconds": round(build_seconds, 2),
                        "float_layers": cfg.float_layers, "layer_precisions": engine.layer_precisions(),
                        "cuda_graph": bool(args.cuda_graph), "inputs": source_kind,
                        "timing": {**engine.timing_summary(),
                                   "host_latency": "latency_ms: H2D + execute_async_v3 + D2H + sync",
                                   "gpu_compute": "gpu_compute_ms: CUDA events around execute_async_v3, "
                                                  "timed loop only"}}
            if args.profile:
                settings["layer_profile"] = engine.layer_profile(inputs)
            out.append({"runtime": {"name": "trt", "version": trt.__version__, "settings": settings,
                                     "device": engine.gpu["name"]},
                            "effective_precision": args.precision, "batch": batch, "latency_ms": summarize(times, batch),
                            "loop": loop, "first_inference_ms": round(first_ms, 3), "load_seconds": round(load_seconds, 3),
                            "memory_mb": {"after_import": rss_import, "peak": peak_rss_mb()},
                            "device_memory_mb": engine.memory_mb(),
                            "engine": {"path": str(plan), "sha256": manifest["plan_sha256"],
                                    "bytes": manifest["plan_bytes"], "manifest": manifest}})
    finally:
        engine.close()
    return out


# ---------------------------------------------------------------- ONNX Runtime fallback

def measure_ort(meta, args, batches, status):
    import numpy as np  # noqa: F401
    import onnxruntime as ort
    files = meta["files"]
    onnx = HERE / files["qdq_onnx" if args.precision == "int8" and "qdq_onnx" in files else "onnx"]
    status(f"measuring on ONNX Runtime {ort.__version__} (CPU fallback)")
    rss_import = peak_rss_mb()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = args.threads or os.cpu_count() or 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    t0 = time.perf_counter()
    session = ort.InferenceSession(str(onnx), so, providers=["CPUExecutionProvider"])
    load_seconds = time.perf_counter() - t0
    rss_load = peak_rss_mb()
    name, output = session.get_inputs()[0].name, session.get_outputs()[0].name
    out = []
    for batch in batches:
        inputs, source_kind = load_inputs(meta, batch)
        t0 = time.perf_counter()
        session.run([output], {name: inputs})
        first_ms = (time.perf_counter() - t0) * 1e3
        binding = session.io_binding()
        binding.bind_cpu_input(name, inputs)
        binding.bind_output(output)
        times, loop = time_loop(lambda b=binding: session.run_with_iobinding(b), *protocol_args(args))
        settings = {"providers": session.get_providers(), "device": "cpu", "fallback": True,
                    "intra_op_num_threads": so.intra_op_num_threads, "inter_op_num_threads": 1,
                    "graph_optimization_level": "ORT_ENABLE_ALL", "execution_mode": "sequential",
                    "inputs": source_kind}
        effective = {"fp16": "fp32"}.get(args.precision, args.precision)  # the CPU provider runs FP16 requests in FP32
        out.append({"runtime": {"name": "ort", "version": ort.__version__, "settings": settings, "device": "cpu"},
                        "effective_precision": effective, "batch": batch, "latency_ms": summarize(times, batch), "loop": loop,
                        "first_inference_ms": round(first_ms, 3), "load_seconds": round(load_seconds, 3),
                        "memory_mb": {"after_import": rss_import, "after_load": rss_load, "peak": peak_rss_mb()},
                        "device_memory_mb": {}, "engine": {"path": str(onnx), "sha256": sha256_file(onnx),
                                                     "bytes": onnx.stat().st_size}})
    return out


# ---------------------------------------------------------------- records

def protocol_args(args):
    return (args.warmup, args.warmup_seconds, args.iterations, args.min_seconds, args.max_seconds)


def host_info():
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    model = None
    try:
        model = Path("/proc/device-tree/model").read_text().strip("\x00\n ")
    except OSError:
        pass
    return {"hostname": platform.node(), "cpu": cpu, "cpu_count": os.cpu_count(), "cpu_flags": [],
            "os": f"{platform.system()} {platform.release()}", "machine": platform.machine(),
            "python": platform.python_version(), "board": model}


def make_record(meta, args, measured, deploy):
    return {
        "schema": SCHEMA, "id": uuid.uuid4().hex, "kind": "latency",
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": host_info(), "edgebench": meta.get("edgebench", {}),
        "status": "ok", "error": None,
        "model": meta["model"], "weights": meta.get("weights"),
        "precision": args.precision, "threads": args.threads or os.cpu_count(),
        "onnx_bytes": (HERE / meta["files"]["onnx"]).stat().st_size,
        "protocol": {"warmup_iterations": args.warmup, "warmup_seconds": args.warmup_seconds,
                     "min_iterations": args.iterations, "min_seconds": args.min_seconds,
                     "max_seconds": args.max_seconds},
        "stability": {"verdict": "not-probed", "attempts": [],
                      "note": "the bundle runner does not run edgebench's CPU noise probe"},
        "deploy": deploy,
        **measured,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "results.jsonl"), help="JSON-lines results file")
    parser.add_argument("--precision", choices=["fp32", "fp16", "int8"], default=None,
                        help="default: the bundle's precision")
    parser.add_argument("--batch", default="1", help="comma-separated batch sizes")
    parser.add_argument("--fallback", choices=["none", "ort"], default="none",
                        help="measure on ONNX Runtime (CPU) when TensorRT is unusable")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--warmup-seconds", type=float, default=1.0)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--min-seconds", type=float, default=5.0)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--workspace-mb", type=int, default=1024)
    parser.add_argument("--cuda-graph", action="store_true", help="replay execute_async_v3 as a CUDA graph")
    parser.add_argument("--profile", action="store_true", help="per-layer times (trt.IProfiler) in the record")
    parser.add_argument("--legacy-calibrator", action="store_true",
                        help="DEPRECATED (TensorRT 10.1+): implicit INT8 calibration for TensorRT 8.5 / JetPack 5")
    parser.add_argument("--verify-only", action="store_true", help="only verify the bundle's checksums")
    args = parser.parse_args(argv)
    summary = {"status": "failed", "records": 0}

    def status(message: str) -> None:
        print(f"[runner] {message}", flush=True)

    def finish(code: int) -> int:
        print(SUMMARY_PREFIX + json.dumps(summary), flush=True)
        return code

    checks = verify_checksums(HERE)
    summary["checksums"] = checks
    if not checks["verified"]:
        summary["error"] = "bundle checksums failed: " + "; ".join(checks["problems"][:5])
        return finish(3)
    status(f"checksums verified: {checks['files']} files")
    if args.verify_only:
        summary["status"] = "ok"
        return finish(0)
    meta = json.loads((HERE / "bundle.json").read_text())
    args.precision = args.precision or meta["precision"]
    try:
        batches = [int(b) for b in args.batch.split(",") if b.strip()]
        assert batches and all(b >= 1 for b in batches)
    except (ValueError, AssertionError):
        summary["error"] = f"--batch must be a comma-separated list of positive integers, got {args.batch!r}"
        return finish(2)
    reason = tensorrt_reason()
    summary["tensorrt"] = {"usable": reason is None, "reason": reason}
    if reason:
        status(reason)
        if args.fallback != "ort":
            summary["error"] = reason
            return finish(4)
    deploy = {"bundle": meta.get("bundle_id"), "checksums_verified": True, "checksum_files": checks["files"],
              "tensorrt_reason": reason, "fallback": "ort" if reason else None}
    try:
        measured = measure_ort(meta, args, batches, status) if reason else measure_trt(meta, args, batches, status)
    except Exception as exc:  # noqa: BLE001 - reported as one line
        summary["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:500]
        summary["traceback"] = traceback.format_exc(limit=5)
        return finish(1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a") as f:
        f.writelines(json.dumps(make_record(meta, args, m, deploy), sort_keys=True, default=str) + "\n" for m in measured)
    summary.update({"status": "ok", "records": len(measured), "out": str(out),
                    "runtime": measured[0]["runtime"]["name"] if measured else None})
    for m in measured:
        lat = m["latency_ms"]
        status(f"{m['runtime']['name']} batch {m['batch']}: p50 {lat['p50']:.3f} ms, p99 {lat['p99']:.3f} ms")
    return finish(0)


if __name__ == "__main__":
    sys.exit(main())
