"""TensorRT build and execution on the current Python API (10.x; 11.x strong typing; 8.5+ for JetPack 5).

Needs ``tensorrt``, ``numpy`` and cuda-python (``cuda.bindings.runtime`` or the older
``cuda.cudart``); part of the portable core, so the Jetson bundle runs this very file.

Build: Builder -> network (explicit batch; EXPLICIT_BATCH flag only on 8.x; 11.x is always
strongly typed) -> OnnxParser -> BuilderConfig (workspace pool limit, TF32 cleared, precision
flags, DETAILED profiling verbosity, one optimisation profile, timing cache, hardware
compatibility) -> build_serialized_network. Which names each step uses on which release is
:mod:`.api`'s table; cuda-python differences are :mod:`.cuda_compat`'s.
Run: Runtime.deserialize_cuda_engine -> execution context -> set_input_shape /
set_tensor_address -> execute_async_v3 on a stream, timed with CUDA events (timed loop only);
optionally replayed as a captured CUDA graph.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ..hashing import sha256_file
from ..layer_profile import RUNS, layer_table
from . import api, cuda_compat, layers, rules

# ---------------------------------------------------------------- imports with precise reasons

def import_tensorrt():
    import tensorrt as trt
    return trt


import_cudart = cuda_compat.import_cudart


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


def calibration_sha256(batches: Iterable[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for batch in batches:
        digest.update(repr(batch.shape).encode())
        digest.update(np.ascontiguousarray(batch, dtype=np.float32).tobytes())
    return digest.hexdigest()


def make_entropy_calibrator(trt, batches: Iterable[np.ndarray], cache_path: Path, cache_key: str, trt_version: str):
    """DEPRECATED since TensorRT 10.1 (removed in 11.x): implicit INT8 calibration with
    IInt8EntropyCalibrator2. Kept for JetPack 5 (TensorRT 8.5) devices; the cache file is
    TensorRT's text format (see rules.read_calibration_cache), reused only for the
    same ``cache_key`` (TensorRT release, ONNX, calibration images)."""
    cudart = import_cudart()
    batches = [np.ascontiguousarray(b, dtype=np.float32) for b in batches]
    if not batches:
        raise rules.UsageError("the legacy INT8 calibrator needs calibration images")

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.index = 0
            self.reused = False
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
            data = rules.cached_calibration(Path(cache_path), cache_key, trt_version)
            self.reused = data is not None
            return data

        def write_calibration_cache(self, cache) -> None:
            rules.store_calibration(Path(cache_path), bytes(cache), cache_key)

        def free(self) -> None:
            if self.device is not None:
                cudart.cudaFree(self.device)
                self.device = None

    return EntropyCalibrator()


def build_plan(onnx_path: Path, plan_path: Path, cfg: rules.BuildConfig, profile: dict, *,
               timing_cache: Path | None = None, calibration_batches: Iterable[np.ndarray] | None = None,
               calibration_cache: Path | None = None, status: Callable[[str], None] = lambda _m: None) -> dict:
    """Build and write ``plan_path`` plus its engine manifest; return the manifest."""
    trt = import_tensorrt()
    logger = _logger(trt)
    builder = trt.Builder(logger)
    flags = 0  # 11.x: always strongly typed (its STRONGLY_TYPED flag is deprecated and ignored)
    if cfg.explicit_batch_flag:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT's ONNX parser rejected {onnx_path}: {errors[:500]}")
    gpu = gpu_info()
    rules.check_hardware_compat_gpu(cfg.hardware_compatibility, gpu["compute_capability"], gpu["integrated"])
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, cfg.workspace_mb * 2**20)
    for flag in cfg.cleared_flags:
        config.clear_flag(api.resolve(trt, f"BuilderFlag.{flag}"))
    for flag in cfg.builder_flags:
        config.set_flag(api.resolve(trt, f"BuilderFlag.{flag}"))
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # layer types, formats, tactics in the plan
    if cfg.hardware_compatibility != "none":
        level = api.HARDWARE_LEVELS[cfg.hardware_compatibility][1]
        config.hardware_compatibility_level = api.resolve(trt, level)
    opt_profile = builder.create_optimization_profile()
    input_name = network.get_input(0).name
    opt_profile.set_shape(input_name, profile["min"], profile["opt"], profile["max"])
    config.add_optimization_profile(opt_profile)
    calibrator = calibration = None
    if cfg.legacy_calibrator:
        batches = list(calibration_batches or [])
        cache = Path(calibration_cache or Path(plan_path).with_name(rules.CALIBRATION_CACHE_FILE))
        key = rules.calibration_cache_key(trt.__version__, sha256_file(Path(onnx_path)), calibration_sha256(batches))
        calibrator = make_entropy_calibrator(trt, batches, cache, key, trt.__version__)
        calibration = {"cache": str(cache), "key": key, "images": sum(len(b) for b in batches)}
        config.int8_calibrator = calibrator  # deprecated since 10.1
        config.set_calibration_profile(opt_profile)
    cache_use = _use_timing_cache(config, Path(timing_cache)) if timing_cache is not None else None
    status(f"building the TensorRT {cfg.precision} plan (this takes a while)")
    t0 = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - t0
    if calibrator is not None:
        calibrator.free()
        calibration["reused"] = calibrator.reused
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
    manifest = rules.engine_manifest(trt_version=trt.__version__, gpu_name=gpu["name"],
                                  compute_capability=gpu["compute_capability"], precision=cfg.precision,
                                  profile=profile, onnx_sha256=sha256_file(Path(onnx_path)), build=cfg,
                                  plan_sha256=sha256_file(plan_path), plan_bytes=plan_path.stat().st_size)
    manifest["build_seconds"] = round(seconds, 2)
    manifest["timing_cache"] = cache_use
    if calibration is not None:
        manifest["calibration_cache"] = calibration
    rules.write_engine_manifest(plan_path, manifest)
    return manifest


def _use_timing_cache(config, path: Path) -> dict:
    """Load the timing cache at ``path`` into ``config`` (an empty one if absent or made elsewhere).

    A cache from another TensorRT release may not even deserialise: create_timing_cache returns None
    then, and set_timing_cache(None) would raise; so does a GPU mismatch (set_timing_cache -> False).
    """
    blob = path.read_bytes() if path.is_file() else b""
    use = {"path": str(path), "loaded_bytes": len(blob), "reused": bool(blob)}
    cache = config.create_timing_cache(blob)
    if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
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
            self.samples: list[tuple[str, float]] = []

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            self.samples.append((layer_name, ms))

    return LayerProfiler()


class TrtEngine:
    """One deserialised plan with its execution context, stream, device buffers and events."""

    def __init__(self, plan: Path, check_manifest: bool = True) -> None:
        self.trt = trt = import_tensorrt()
        self.cudart = cudart = import_cudart()
        self.plan = Path(plan)
        self.gpu = gpu_info()
        self.manifest = rules.read_engine_manifest(self.plan) if check_manifest else {}
        if check_manifest:
            rules.check_compatible(self.manifest, trt_version=trt.__version__, gpu_name=self.gpu["name"],
                                compute_capability=self.gpu["compute_capability"], plan=str(self.plan))
        self.memory = {"cuda_before_load": mem_info_mb()}
        self.runtime = trt.Runtime(_logger(trt))
        self.engine = self.runtime.deserialize_cuda_engine(self.plan.read_bytes())
        if self.engine is None:
            raise rules.EngineMismatch(f"TensorRT could not deserialise {self.plan}; rebuild it with "
                                    "`edgebench export MODEL --runtime trt`")
        self.context = self.engine.create_execution_context()
        self.memory["cuda_after_load"] = mem_info_mb()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.stream = check(cudart.cudaStreamCreate())
        self.stream_handle = cuda_compat.handle(self.stream)
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
        """device_memory_size_v2 where it exists (10.1+; device_memory_size is deprecated there, gone in 11)."""
        if api.uses("device_memory_size_v2", self.trt.__version__):
            return int(self.engine.device_memory_size_v2)
        else:
            return int(self.engine.device_memory_size)

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
                raise rules.EngineMismatch(f"batch {batch.shape[0]} is outside the engine's profile [{lo}, {hi}]; "
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
        elif not self.context.execute_async_v3(self.stream_handle):
            raise RuntimeError("execute_async_v3 failed")

    def capture_graph(self) -> None:
        """Capture execute_async_v3 as a CUDA graph (after one normal run, as TensorRT requires)."""
        cudart = self.cudart
        self._execute()
        check(cudart.cudaStreamSynchronize(self.stream))
        self._drop_graph()
        check(cudart.cudaStreamBeginCapture(self.stream, cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal))
        captured = self.context.execute_async_v3(self.stream_handle)
        graph = check(cudart.cudaStreamEndCapture(self.stream))
        if not captured:
            cudart.cudaGraphDestroy(graph)
            raise RuntimeError("execute_async_v3 could not be captured in a CUDA graph (run without --cuda-graph)")
        self.graph_exec = check(cuda_compat.instantiate_graph(cudart, graph))
        check(cudart.cudaGraphDestroy(graph))  # the executable graph keeps what it needs

    # -- one iteration
    def timed_run(self) -> TimedRun:
        """What the latency protocol times (see :class:`TimedRun`)."""
        return TimedRun(self)

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
                if not context.execute_async_v3(self.stream_handle):
                    raise RuntimeError("execute_async_v3 failed while profiling layers")
                check(self.cudart.cudaStreamSynchronize(self.stream))  # reports arrive per completed run
            info = self.layer_info(context)
        finally:
            del context
        return layer_table([(name, *layers.op_and_kernel(info, name), ms) for name, ms in profiler.samples], runs)

    def layer_info(self, context=None) -> dict[str, dict]:
        """Each layer's type, precision and kernel from the engine inspector, with ``context``'s input
        shape (else the formats of a dynamic-shape plan read "N/A")."""
        inspector = self.engine.create_engine_inspector()
        inspector.execution_context = context or self.context
        return layers.layer_info(inspector.get_engine_information(self.trt.LayerInformationFormat.JSON))

    def layer_precisions(self) -> dict[str, int]:
        """How many layers run in each precision, for the prepared batch (which layers really ran INT8)."""
        return layers.precision_counts(self.layer_info())

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

    def settings(self, *, profile: dict | None, build: dict, float_layers, cuda_graph: bool) -> dict:
        """The ``runtime.settings`` of a record, one wording for the host and the device runner (each adds
        what only it knows: the host its timing cache and workspace, the device its build time and inputs)."""
        return {"device": "cuda:0", "gpu": self.gpu, "tensorrt_version": self.trt.__version__, "profile": profile,
                "build": build, "float_layers": float_layers, "layer_precisions": self.layer_precisions(),
                "cuda_graph": cuda_graph,
                "timing": {**self.timing_summary(),
                           "host_latency": "latency_ms: H2D + execute_async_v3 + D2H + stream sync, host clock",
                           "gpu_compute": "gpu_compute_ms: CUDA events around execute_async_v3, timed loop only"}}

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


class TimedRun:
    """One :meth:`TrtEngine.run_once` per call: the function the latency protocol times.

    Every run records CUDA-event times; the protocol calls :meth:`warmup_done` when warm-up ends, which
    drops the warm-up ones, so ``timing.iterations`` is the timed loop's count.
    """

    def __init__(self, core: TrtEngine) -> None:
        self.core = core

    def __call__(self) -> None:
        self.core.run_once()

    def warmup_done(self) -> None:
        self.core.gpu_ms.clear()
        self.core.copy_ms.clear()
