#!/usr/bin/env python3
"""edgebench bundle runner: builds the TensorRT engine on the device and benchmarks it.

Standalone: needs Python 3.8+, numpy, and TensorRT + cuda-python (JetPack ships TensorRT;
cuda-python matching the JetPack CUDA: see
``portable/tensorrt/cuda_compat.INSTALL``); OpenCV only to preprocess the bundled sample images; ONNX
Runtime only for the CPU fallback (``--fallback ort``). Everything it measures with is the
library's own ``portable`` package, shipped next to it as it is: the protocol and its
statistics, peak RSS, decoding and preprocessing, checksums, the host fingerprint, the
record envelope, and the TensorRT builder and engine. This file is argument parsing and
orchestration only.

Steps: verify SHA256SUMS, build the plan for this GPU and TensorRT version, measure with
edgebench's protocol, write edgebench result records (JSON lines) to --out. The last
stdout line is ``EDGEBENCH_DEPLOY <json summary>``.

Exit codes: 0 measured; 1 a measurement failed; 3 checksum mismatch; 4 TensorRT
unusable and no fallback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the shipped portable package

from portable.cpu_load import LoadMeter
from portable.envelope import envelope
from portable.errors import UsageError, finite, one_line
from portable.hashing import sha256_file, verify_checksums
from portable.memory import EngineMemory
from portable.protocol import Protocol, summarize, time_loop
from portable.strict_json import dumps
from portable.tensorrt.rules import DEFAULT_WORKSPACE_MB

SUMMARY_PREFIX = "EDGEBENCH_DEPLOY "


# ---------------------------------------------------------------- inputs

def load_inputs(meta: dict, batch: int):
    """Bundled sample photos decoded and preprocessed exactly as on the host, else seeded random input."""
    import numpy as np
    shape = meta["input_shape"]
    images = sorted((HERE / "images").glob("*")) if (HERE / "images").is_dir() else []
    try:  # OpenCV only for the sample photos
        from portable.images import UnreadableImage, read_rgb
        from portable.preprocess import Preprocess, preprocess
    except ImportError:
        images = []
    if images:
        spec = Preprocess.from_dict(json.loads((HERE / "preprocess.json").read_text()))
        tensors = []
        for path in images:
            try:
                tensors.append(preprocess(read_rgb(path), spec))
            except UnreadableImage:
                continue
        if tensors:
            stack = np.stack(tensors)
            reps = -(-batch // len(stack))
            return np.ascontiguousarray(np.concatenate([stack] * reps)[:batch]), "images"
    return np.random.default_rng(0).standard_normal((batch, *shape), dtype=np.float32), "random"


# ---------------------------------------------------------------- TensorRT

def tensorrt_reason():
    """None when TensorRT and cuda-python import and a GPU answers; else the precise reason."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        return f"TensorRT not installed on device: {exc}"
    except Exception as exc:  # noqa: BLE001 - a broken install
        return f"TensorRT failed to import on device: {type(exc).__name__}: {exc}"
    from portable.tensorrt import api
    unsupported = api.jetson_problem(trt.__version__, api.l4t_release())
    if unsupported:
        return unsupported
    try:
        from portable.tensorrt import engine as trt_engine
        trt_engine.import_cudart()
    except ImportError as exc:
        return f"cuda-python not installed on device (TensorRT {trt.__version__} is): {exc}"
    try:
        trt_engine.gpu_info()
    except Exception as exc:  # noqa: BLE001
        from portable.tensorrt import cuda_compat
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
    from portable.tensorrt import engine as trt_engine
    from portable.tensorrt import rules
    files = meta["files"]
    cfg = rules.derive_build_config(args.precision, trt.__version__, qdq_available="qdq_onnx" in files,
                                 fp16_onnx_available="fp16_onnx" in files, legacy_calibrator=args.legacy_calibrator,
                                 workspace_mb=args.workspace_mb, hardware_compatibility="none")
    source = HERE / files[{"fp32": "onnx", "fp16": "fp16_onnx", "qdq": "qdq_onnx"}[cfg.onnx_source]]
    profile = rules.profile_shapes(batches, meta["input_shape"])
    plan = HERE / "engine" / f"model.{args.precision}.plan"
    calibration = None
    if cfg.legacy_calibrator:
        images, _ = load_inputs(meta, 32)
        calibration = rules.calibration_batches(images, profile)
    prepared = {batch: load_inputs(meta, batch) for batch in batches}  # decoding (OpenCV) before the reset
    engine_memory = EngineMemory()  # after TensorRT's import: its floor; the build, load and runs are measured apart
    rss_import = engine_memory.peak_mb
    status(f"building the TensorRT {trt.__version__} {args.precision} engine on the device")
    t0 = time.perf_counter()
    manifest = trt_engine.build_plan(source, plan, cfg, profile, timing_cache=HERE / "engine" / rules.TIMING_CACHE_FILE,
                                     calibration_batches=calibration,
                                     calibration_cache=HERE / "engine" / rules.CALIBRATION_CACHE_FILE)
    build_seconds = time.perf_counter() - t0
    engine_memory.mark("build")  # the builder's: not the engine's memory at run time
    t0 = time.perf_counter()
    engine = trt_engine.TrtEngine(plan)
    load_seconds = time.perf_counter() - t0
    engine_memory.mark("load")
    rss_load = engine_memory.peak_mb
    out = []
    try:
        for batch in batches:
            inputs, source_kind = prepared[batch]
            with LoadMeter() as load:
                engine.prepare(inputs)
                t0 = time.perf_counter()
                engine.run_once(record=False)
                first_ms = (time.perf_counter() - t0) * 1e3
                if args.cuda_graph:
                    engine.capture_graph()
                times, loop = time_loop(engine.timed_run(), protocol_of(args))
            engine_memory.mark("run")
            settings = {**engine.settings(profile=profile, build=cfg.to_dict(), float_layers=cfg.float_layers,
                                          cuda_graph=bool(args.cuda_graph)),
                        "build_seconds": round(build_seconds, 2), "inputs": source_kind}
            if args.profile:
                settings["layer_profile"] = engine.layer_profile(inputs)
            out.append({"runtime": {"name": "trt", "version": trt.__version__, "settings": settings,
                                     "device": engine.gpu["name"]},
                            "effective_precision": args.precision, "batch": batch, "latency_ms": summarize(times, batch),
                            "loop": loop, "first_inference_ms": round(first_ms, 3), "load_seconds": round(load_seconds, 3),
                            "build_seconds": round(build_seconds, 3), "load": load.result,
                            "memory_mb": {"after_import": rss_import, "after_load": rss_load,
                                          "peak": engine_memory.peak_mb},
                            "memory": {**engine_memory.result(),
                                       "engine_files_mb": round(plan.stat().st_size / 2**20, 2)},
                            "device_memory_mb": engine.memory_mb(),
                            "engine": {"path": str(plan), "sha256": manifest["plan_sha256"],
                                    "bytes": manifest["plan_bytes"], "manifest": manifest}})
    finally:
        engine.close()
    return out


# ---------------------------------------------------------------- ONNX Runtime fallback

def measure_ort(meta, args, batches, status):
    import onnxruntime as ort
    from portable.onnxruntime import session_options, session_settings
    files = meta["files"]
    onnx = HERE / files["qdq_onnx" if args.precision == "int8" and "qdq_onnx" in files else "onnx"]
    status(f"measuring on ONNX Runtime {ort.__version__} (CPU fallback)")
    prepared = {batch: load_inputs(meta, batch) for batch in batches}  # decoding (OpenCV) before the reset
    ort.get_available_providers()  # touched
    engine_memory = EngineMemory()  # the import floor; the load and the runs are measured past it
    rss_import = engine_memory.peak_mb
    so = session_options(ort, args.threads or os.cpu_count() or 1)
    t0 = time.perf_counter()
    session = ort.InferenceSession(str(onnx), so, providers=["CPUExecutionProvider"])
    load_seconds = time.perf_counter() - t0
    engine_memory.mark("load")
    rss_load = engine_memory.peak_mb
    name, output = session.get_inputs()[0].name, session.get_outputs()[0].name
    out = []
    for batch in batches:  # a later batch's run is its rise past the earlier batches'
        inputs, source_kind = prepared[batch]
        with LoadMeter() as load:
            t0 = time.perf_counter()
            session.run([output], {name: inputs})
            first_ms = (time.perf_counter() - t0) * 1e3
            binding = session.io_binding()
            binding.bind_cpu_input(name, inputs)
            binding.bind_output(output)
            times, loop = time_loop(lambda b=binding: session.run_with_iobinding(b), protocol_of(args))
        engine_memory.mark("run")
        settings = {**session_settings(session, so, "cpu"), "fallback": True, "inputs": source_kind}
        effective = {"fp16": "fp32"}.get(args.precision, args.precision)  # the CPU provider runs FP16 requests in FP32
        out.append({"runtime": {"name": "ort", "version": ort.__version__, "settings": settings, "device": "cpu"},
                        "effective_precision": effective, "batch": batch, "latency_ms": summarize(times, batch), "loop": loop,
                        "first_inference_ms": round(first_ms, 3), "load_seconds": round(load_seconds, 3),
                        "load": load.result,
                        "memory_mb": {"after_import": rss_import, "after_load": rss_load,
                                      "peak": engine_memory.peak_mb},
                        "memory": {**engine_memory.result(), "engine_files_mb": round(onnx.stat().st_size / 2**20, 2)},
                        "device_memory_mb": {}, "engine": {"path": str(onnx), "sha256": sha256_file(onnx),
                                                     "bytes": onnx.stat().st_size}})
    return out


# ---------------------------------------------------------------- records

def protocol_of(args) -> Protocol:
    return Protocol(args.warmup, args.warmup_seconds, args.iterations, args.min_seconds, args.max_seconds)


def stability_of(load: dict) -> dict:
    """Without the noise probe: ``contended`` when other processes or the hypervisor's steal took the cores
    during the loop (portable.cpu_load), else ``not-probed``."""
    seen = []
    if load.get("contended") and load.get("other_share", 0) > load.get("threshold_share", 1):
        seen.append(f"contended: other processes used {load['other_share']:.0%} of the cores")
    if load.get("steal_contended"):
        seen.append(f"contended: the hypervisor stole {load['steal_share']:.1%} of the cores' time")
    return {"verdict": "contended" if load.get("contended") else "not-probed", "attempts": [], "seen": seen,
            "note": "the bundle runner does not run edgebench's CPU noise probe"}


def make_record(meta, args, measured, deploy):
    """A latency record with the library's envelope; ``edgebench`` is the version that built the bundle."""
    return {
        **envelope("latency", edgebench=meta.get("edgebench", {})),
        "status": "ok", "error": None,
        "model": meta["model"], "weights": meta.get("weights"),
        "precision": args.precision, "threads": args.threads or os.cpu_count(),
        "onnx_bytes": (HERE / meta["files"]["onnx"]).stat().st_size,
        "protocol": protocol_of(args).to_dict(),
        "stability": stability_of(measured.get("load") or {}),
        "deploy": deploy,
        **measured,
    }


def _seconds(text: str) -> float:
    """A finite, non-negative number of seconds: ``float()`` takes "nan" and "inf", which no loop can use."""
    try:
        value = finite(float(text), "seconds")
    except (ValueError, UsageError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite, non-negative number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite, non-negative number of seconds")
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "results.jsonl"), help="JSON-lines results file")
    parser.add_argument("--precision", choices=["fp32", "fp16", "int8"], default=None,
                        help="default: the bundle's precision")
    parser.add_argument("--batch", default="1", help="comma-separated batch sizes")
    parser.add_argument("--fallback", choices=["none", "ort"], default="none",
                        help="measure on ONNX Runtime (CPU) when TensorRT is unusable")
    parser.add_argument("--threads", type=int, default=None)
    defaults = Protocol()
    parser.add_argument("--warmup", type=int, default=defaults.warmup_iterations)
    parser.add_argument("--warmup-seconds", type=_seconds, default=defaults.warmup_seconds)
    parser.add_argument("--iterations", type=int, default=defaults.min_iterations)
    parser.add_argument("--min-seconds", type=_seconds, default=defaults.min_seconds)
    parser.add_argument("--max-seconds", type=_seconds, default=defaults.max_seconds)
    parser.add_argument("--workspace-mb", type=int, default=DEFAULT_WORKSPACE_MB)
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
        summary["error"] = one_line(exc, 500, with_type=True)
        summary["traceback"] = traceback.format_exc(limit=5)
        return finish(1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a") as f:
        f.writelines(dumps(make_record(meta, args, m, deploy), sort_keys=True) + "\n" for m in measured)
    summary.update({"status": "ok", "records": len(measured), "out": str(out),
                    "runtime": measured[0]["runtime"]["name"] if measured else None})
    for m in measured:
        lat = m["latency_ms"]
        status(f"{m['runtime']['name']} batch {m['batch']}: p50 {lat['p50']:.3f} ms, p99 {lat['p99']:.3f} ms")
    return finish(0)


if __name__ == "__main__":
    sys.exit(main())
