"""TensorRT build and execution on the current Python API (10.x; 11.x strong typing; 8.5+ for JetPack 5).

Needs ``tensorrt``, ``numpy`` and cuda-python (``cuda.bindings.runtime`` or the older
``cuda.cudart``); part of the portable core, so the Jetson bundle runs this very file.

Build: Builder -> network (explicit batch; EXPLICIT_BATCH flag only on 8.x, strongly
typed on 11.x) -> OnnxParser -> BuilderConfig (workspace pool limit, precision flags,
one optimisation profile, timing cache, hardware compatibility) -> build_serialized_network.
Run: Runtime.deserialize_cuda_engine -> execution context -> set_input_shape /
set_tensor_address -> execute_async_v3 on a stream, timed with CUDA events; optionally
replayed as a captured CUDA graph.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ..hashing import sha256_file
from ..layer_profile import RUNS, layer_table
from . import rules as tc

# ---------------------------------------------------------------- imports with precise reasons

def import_tensorrt():
    import tensorrt as trt
    return trt


def import_cudart():
    """cuda-python's runtime module (12.x/13.x layout first, then the older ``cuda.cudart``)."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        from cuda import cudart  # type: ignore[no-redef]
    return cudart


def check(result):
    """cuda-python calls return (err, *values); raise on error, return the values."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        cudart = import_cudart()
        name = cudart.cudaGetErrorName(err)[1]
        raise RuntimeError(f"CUDA error {name.decode() if isinstance(name, bytes) else name}")
    return values[0] if len(values) == 1 else (tuple(values) if values else None)


def gpu_info(device: int = 0) -> dict:
    cudart = import_cudart()
    prop = check(cudart.cudaGetDeviceProperties(device))
    name = prop.name.decode(errors="replace") if isinstance(prop.name, bytes) else str(prop.name)
    return {"name": name.rstrip("\x00").strip(), "compute_capability": f"{prop.major}.{prop.minor}",
            "integrated": bool(prop.integrated), "total_memory_mb": round(prop.totalGlobalMem / 2**20, 1),
            "cuda_runtime": check(cudart.cudaRuntimeGetVersion()), "cuda_driver": check(cudart.cudaDriverGetVersion())}


def mem_info_mb() -> dict:
    free, total = check(import_cudart().cudaMemGetInfo())
    return {"free": round(free / 2**20, 1), "total": round(total / 2**20, 1)}


# ---------------------------------------------------------------- build

def _logger(trt):
    return trt.Logger(trt.Logger.WARNING)


def make_entropy_calibrator(trt, batches: Iterable[np.ndarray], cache_path: Path, trt_version: str):
    """DEPRECATED since TensorRT 10.1 (removed in 11.x): implicit INT8 calibration with
    IInt8EntropyCalibrator2. Kept for JetPack 5 (TensorRT 8.5) devices; the cache file is
    TensorRT's text format (see rules.read_calibration_cache)."""
    cudart = import_cudart()
    batches = [np.ascontiguousarray(b, dtype=np.float32) for b in batches]
    if not batches:
        raise tc.UsageError("the legacy INT8 calibrator needs calibration images")

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.index = 0
            self.device = check(cudart.cudaMalloc(max(b.nbytes for b in batches)))

        def get_batch_size(self) -> int:
            return int(batches[0].shape[0])

        def get_batch(self, names):
            if self.index >= len(batches):
                return None
            batch = batches[self.index]
            self.index += 1
            check(cudart.cudaMemcpy(self.device, batch.ctypes.data, batch.nbytes,
                                    cudart.cudaMemcpyKind.cudaMemcpyHostToDevice))
            return [int(self.device)]

        def read_calibration_cache(self):
            path = Path(cache_path)
            if path.is_file():
                data = path.read_bytes()
                try:
                    if tc.cache_matches(tc.read_calibration_cache(data), trt_version):
                        return data
                except tc.UsageError:
                    pass
            return None

        def write_calibration_cache(self, cache) -> None:
            data = bytes(cache)
            tc.read_calibration_cache(data)  # refuse to store something we cannot read back
            tmp = Path(cache_path).with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(cache_path)

        def free(self) -> None:
            if self.device is not None:
                cudart.cudaFree(self.device)
                self.device = None

    return EntropyCalibrator()


def build_plan(onnx_path: Path, plan_path: Path, cfg: tc.BuildConfig, profile: dict, *,
               timing_cache: Path | None = None, calibration_batches: Iterable[np.ndarray] | None = None,
               calibration_cache: Path | None = None, status: Callable[[str], None] = lambda _m: None) -> dict:
    """Build and write ``plan_path`` plus its engine manifest; return the manifest."""
    trt = import_tensorrt()
    logger = _logger(trt)
    builder = trt.Builder(logger)
    flags = 0
    if cfg.explicit_batch_flag:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if cfg.strongly_typed and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT's ONNX parser rejected {onnx_path}: {errors[:500]}")
    gpu = gpu_info()
    tc.check_hardware_compat_gpu(cfg.hardware_compatibility, gpu["compute_capability"], gpu["integrated"])
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, cfg.workspace_mb * 2**20)
    for flag in cfg.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if cfg.hardware_compatibility != "none":
        level = {"ampere_plus": "AMPERE_PLUS", "same_compute_capability": "SAME_COMPUTE_CAPABILITY"}
        config.hardware_compatibility_level = getattr(trt.HardwareCompatibilityLevel, level[cfg.hardware_compatibility])
    opt_profile = builder.create_optimization_profile()
    input_name = network.get_input(0).name
    opt_profile.set_shape(input_name, profile["min"], profile["opt"], profile["max"])
    config.add_optimization_profile(opt_profile)
    calibrator = None
    if cfg.legacy_calibrator:
        calibrator = make_entropy_calibrator(trt, calibration_batches or [], calibration_cache
                                             or Path(plan_path).with_name(tc.CALIBRATION_CACHE_FILE), cfg.trt_version)
        config.int8_calibrator = calibrator  # deprecated since 10.1
        config.set_calibration_profile(opt_profile)
    cache_use = _use_timing_cache(config, Path(timing_cache)) if timing_cache is not None else None
    status(f"building the TensorRT {cfg.precision} plan (this takes a while)")
    t0 = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - t0
    if calibrator is not None:
        calibrator.free()
    if serialized is None:
        raise RuntimeError("TensorRT failed to build the engine (see the TensorRT log above)")
    plan_path = Path(plan_path)
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = plan_path.with_name(plan_path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(memoryview(serialized))
    tmp.replace(plan_path)
    if cache_use is not None:
        cache_use["saved_bytes"] = _save_timing_cache(config, Path(timing_cache))
    manifest = tc.engine_manifest(trt_version=trt.__version__, gpu_name=gpu["name"],
                                  compute_capability=gpu["compute_capability"], precision=cfg.precision,
                                  profile=profile, onnx_sha256=sha256_file(Path(onnx_path)), build=cfg,
                                  plan_sha256=sha256_file(plan_path), plan_bytes=plan_path.stat().st_size)
    manifest["build_seconds"] = round(seconds, 2)
    manifest["timing_cache"] = cache_use
    tc.write_engine_manifest(plan_path, manifest)
    return manifest


def _use_timing_cache(config, path: Path) -> dict:
    """Load the timing cache at ``path`` into ``config`` (an empty one if absent or made elsewhere)."""
    blob = path.read_bytes() if path.is_file() else b""
    use = {"path": str(path), "loaded_bytes": len(blob), "reused": bool(blob)}
    if not config.set_timing_cache(config.create_timing_cache(blob), ignore_mismatch=False):
        # another GPU or TensorRT release wrote it: start afresh rather than risk wrong tactics
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
        use.update(reused=False, note="cache from another GPU or TensorRT release: started an empty one")
    return use


def _save_timing_cache(config, path: Path) -> int:
    """Write the builder's (grown) timing cache back to ``path`` atomically; return its size."""
    blob = bytes(memoryview(config.get_timing_cache().serialize()))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(blob)
    tmp.replace(path)
    return len(blob)


# ---------------------------------------------------------------- run

def make_layer_profiler(trt):
    class LayerProfiler(trt.IProfiler):
        """Collects per-layer GPU times over profiled runs (trt.IProfiler)."""

        def __init__(self) -> None:
            trt.IProfiler.__init__(self)
            self.samples: list[tuple[str, str, str, float]] = []

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            self.samples.append((layer_name, "", "", ms))

    return LayerProfiler()


class TrtEngine:
    """One deserialised plan with its execution context, stream, device buffers and events."""

    def __init__(self, plan: Path, check_manifest: bool = True) -> None:
        self.trt = trt = import_tensorrt()
        self.cudart = cudart = import_cudart()
        self.plan = Path(plan)
        self.gpu = gpu_info()
        self.manifest = tc.read_engine_manifest(self.plan) if check_manifest else {}
        if check_manifest:
            tc.check_compatible(self.manifest, trt_version=trt.__version__, gpu_name=self.gpu["name"],
                                compute_capability=self.gpu["compute_capability"], plan=str(self.plan))
        self.memory = {"cuda_before_load": mem_info_mb()}
        self.runtime = trt.Runtime(_logger(trt))
        self.engine = self.runtime.deserialize_cuda_engine(self.plan.read_bytes())
        if self.engine is None:
            raise tc.EngineMismatch(f"TensorRT could not deserialise {self.plan}; rebuild it with "
                                    "`edgebench export MODEL --runtime trt`")
        self.context = self.engine.create_execution_context()
        self.memory["cuda_after_load"] = mem_info_mb()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.stream = check(cudart.cudaStreamCreate())
        self.start, self.end = check(cudart.cudaEventCreate()), check(cudart.cudaEventCreate())
        self.h2d_end, self.compute_end = check(cudart.cudaEventCreate()), check(cudart.cudaEventCreate())
        self.device: dict[str, int] = {}
        self.host: dict[str, np.ndarray] = {}
        self.batch: int | None = None
        self.graph_exec = None
        self.gpu_ms: list[float] = []
        self.copy_ms: list[float] = []

    # -- properties
    @property
    def device_memory_size(self) -> int:
        engine = self.engine
        return int(getattr(engine, "device_memory_size_v2", None) or engine.device_memory_size)

    def profile_range(self) -> tuple[int, int]:
        lo, _opt, hi = self.engine.get_tensor_profile_shape(self.inputs[0], 0)
        return int(lo[0]), int(hi[0])

    # -- buffers
    def prepare(self, batch: np.ndarray) -> None:
        """Set the input shape and (re)allocate device/host buffers for ``batch``'s size."""
        trt, cudart = self.trt, self.cudart
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self.batch != batch.shape[0]:
            self._free_buffers()
            name = self.inputs[0]
            if not self.context.set_input_shape(name, tuple(batch.shape)):
                lo, hi = self.profile_range()
                raise tc.EngineMismatch(f"batch {batch.shape[0]} is outside the engine's profile [{lo}, {hi}]; "
                                        f"rebuild it with `--batch` including {batch.shape[0]}")
            for tensor in self.inputs + self.outputs:
                shape = tuple(self.context.get_tensor_shape(tensor))
                dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(tensor)))
                host = np.empty(shape, dtype=dtype)
                self.host[tensor] = host
                self.device[tensor] = check(cudart.cudaMalloc(max(host.nbytes, 1)))
                self.context.set_tensor_address(tensor, int(self.device[tensor]))
            self.batch = batch.shape[0]
        np.copyto(self.host[self.inputs[0]], batch.astype(self.host[self.inputs[0]].dtype, copy=False))

    def _free_buffers(self) -> None:
        self._drop_graph()
        for ptr in self.device.values():
            self.cudart.cudaFree(ptr)
        self.device, self.host, self.batch = {}, {}, None

    def _drop_graph(self) -> None:
        if self.graph_exec is not None:
            self.cudart.cudaGraphExecDestroy(self.graph_exec)
            self.graph_exec = None

    def _h2d(self) -> None:
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        for name in self.inputs:
            check(self.cudart.cudaMemcpyAsync(self.device[name], self.host[name].ctypes.data, self.host[name].nbytes,
                                              kind, self.stream))

    def _d2h(self) -> None:
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for name in self.outputs:
            check(self.cudart.cudaMemcpyAsync(self.host[name].ctypes.data, self.device[name], self.host[name].nbytes,
                                              kind, self.stream))

    def _execute(self) -> None:
        if self.graph_exec is not None:
            check(self.cudart.cudaGraphLaunch(self.graph_exec, self.stream))
        elif not self.context.execute_async_v3(int(self.stream)):
            raise RuntimeError("execute_async_v3 failed")

    def capture_graph(self) -> None:
        """Capture execute_async_v3 as a CUDA graph (after one normal run, as TensorRT requires)."""
        cudart = self.cudart
        self._execute()
        check(cudart.cudaStreamSynchronize(self.stream))
        self._drop_graph()
        check(cudart.cudaStreamBeginCapture(self.stream, cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal))
        captured = self.context.execute_async_v3(int(self.stream))
        graph = check(cudart.cudaStreamEndCapture(self.stream))
        if not captured:
            cudart.cudaGraphDestroy(graph)
            raise RuntimeError("execute_async_v3 could not be captured in a CUDA graph (run without --cuda-graph)")
        self.graph_exec = check(cudart.cudaGraphInstantiate(graph, 0))
        check(cudart.cudaGraphDestroy(graph))  # the executable graph keeps what it needs

    # -- one iteration
    def run_once(self, record: bool = True) -> np.ndarray:
        """H2D, execute (between CUDA events), D2H, synchronise; return the first output."""
        cudart = self.cudart
        check(cudart.cudaEventRecord(self.start, self.stream))
        self._h2d()
        check(cudart.cudaEventRecord(self.h2d_end, self.stream))
        self._execute()
        check(cudart.cudaEventRecord(self.compute_end, self.stream))
        self._d2h()
        check(cudart.cudaEventRecord(self.end, self.stream))
        check(cudart.cudaStreamSynchronize(self.stream))
        if record:
            self.gpu_ms.append(check(cudart.cudaEventElapsedTime(self.h2d_end, self.compute_end)))
            self.copy_ms.append(check(cudart.cudaEventElapsedTime(self.start, self.end)) - self.gpu_ms[-1])
        return self.host[self.outputs[0]]

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.prepare(batch)
        return self.run_once(record=False).astype(np.float32, copy=True)

    def layer_profile(self, batch: np.ndarray, runs: int = RUNS) -> list[dict]:
        """Per-layer times from trt.IProfiler, on runs separate from the timed loop.

        A profiler cannot be detached from a context (TensorRT rejects a null profiler), so
        the profiled runs use their own execution context on the same device buffers.
        """
        self.prepare(batch)
        context = self.engine.create_execution_context()
        profiler = make_layer_profiler(self.trt)
        try:
            context.set_input_shape(self.inputs[0], tuple(self.host[self.inputs[0]].shape))
            for name, ptr in self.device.items():
                context.set_tensor_address(name, int(ptr))
            context.profiler = profiler
            self._h2d()
            for _ in range(runs):
                if not context.execute_async_v3(int(self.stream)):
                    raise RuntimeError("execute_async_v3 failed while profiling layers")
                check(self.cudart.cudaStreamSynchronize(self.stream))  # reports arrive per completed run
        finally:
            del context
        return layer_table(profiler.samples, runs)

    def timing_summary(self) -> dict:
        def stats(values: list[float]) -> dict:
            if not values:
                return {}
            arr = np.asarray(values)
            p50, p90, p99 = np.percentile(arr, [50, 90, 99])
            return {"min": float(arr.min()), "p50": float(p50), "p90": float(p90), "p99": float(p99),
                    "mean": float(arr.mean()), "max": float(arr.max())}
        return {"gpu_compute_ms": stats(self.gpu_ms), "h2d_d2h_ms": stats(self.copy_ms),
                "cuda_graph": self.graph_exec is not None, "iterations": len(self.gpu_ms)}

    def memory_mb(self) -> dict:
        before, after = self.memory["cuda_before_load"], self.memory["cuda_after_load"]
        return {"engine_device_memory": round(self.device_memory_size / 2**20, 2),
                "plan_file": round(self.plan.stat().st_size / 2**20, 2),
                "cuda_free_before_load": before["free"], "cuda_free_after_load": after["free"],
                "cuda_used_by_load": round(before["free"] - after["free"], 1),
                "cuda_free_now": mem_info_mb()["free"], "cuda_total": before["total"]}

    def close(self) -> None:
        if getattr(self, "engine", None) is None:
            return
        self._free_buffers()
        for event in (self.start, self.end, self.h2d_end, self.compute_end):
            self.cudart.cudaEventDestroy(event)
        self.cudart.cudaStreamDestroy(self.stream)
        self.context = self.engine = self.runtime = None
