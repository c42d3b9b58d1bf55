"""TensorRT: serialised plans built from the exported ONNX, run with execute_async_v3.

The plan is version-locked: it loads only on the TensorRT release and GPU that built it
(or, for a hardware-compatible plan, a GPU of the same family); anything else is refused
with EngineMismatch saying how to rebuild. Build details are in
:mod:`edgebench.portable.tensorrt.engine`, the GPU-free rules in :mod:`edgebench.portable.tensorrt.rules`
(both shipped to devices). Build options arrive as :class:`~edgebench.portable.tensorrt.rules.TrtBuildOptions`
(``EngineRequest.options``), run options as ``RuntimeOptions.backend``
(:class:`~edgebench.portable.tensorrt.rules.TrtRunOptions`).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np

from edgebench.backends.base import Availability, EngineRequest, InputMetadata, Runtime
from edgebench.backends.tensorrt.qdq import qdq_summary
from edgebench.portable.errors import EngineMismatch, UsageError
from edgebench.portable.layer_profile import ACT, DENSE, LINEAR, MOVE, NORM, QDQ, SOFTMAX
from edgebench.portable.tensorrt import rules
from edgebench.portable.tensorrt.cuda_compat import mismatch_hint
from edgebench.portable.tensorrt.engine import TrtEngine, build_plan, gpu_info, import_cudart

INSTALL_HINT = ("pip install 'edgebench[tensorrt]' (driver >= 580.65) or 'edgebench[tensorrt-cu12]' (driver 525-575) "
                "--extra-index-url https://pypi.nvidia.com (JetPack ships it on Jetson)")


def nvidia_driver() -> tuple[bool, str]:
    """(present, detail): the kernel driver via /proc/driver/nvidia, else nvidia-smi."""
    version_file = Path("/proc/driver/nvidia/version")
    if version_file.is_file():
        try:
            return True, version_file.read_text().splitlines()[0].strip()
        except OSError:
            return True, "driver present"
    if Path("/etc/nv_tegra_release").is_file():  # Jetson: no /proc/driver/nvidia, the GPU is integrated
        return True, "Jetson (L4T) " + Path("/etc/nv_tegra_release").read_text().split(",")[0].strip("# \n")
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20, check=False)
            if out.returncode == 0 and out.stdout.strip():
                return True, out.stdout.strip().splitlines()[0]
            return False, f"nvidia-smi failed: {(out.stderr or out.stdout).strip().splitlines()[:1]}"
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"nvidia-smi failed: {exc}"
    return False, "no NVIDIA driver (no /proc/driver/nvidia, no nvidia-smi)"


class TensorRTRuntime(Runtime):
    name = "trt"
    #: TensorRT reports layer names only: the op is the last part of the first fused layer's name
    #: -> the report's operator class (:mod:`edgebench.portable.layer_profile`).
    op_classes: ClassVar[dict[str, str]] = {
        **dict.fromkeys(("Conv", "ConvTranspose"), DENSE),
        **dict.fromkeys(("MatMul", "Gemm"), LINEAR),
        "Softmax": SOFTMAX,
        **dict.fromkeys(("LayerNormalization", "LayerNorm", "ReduceMean"), NORM),
        **dict.fromkeys(("HardSwish", "HardSigmoid", "Sigmoid", "Erf", "Gelu", "Relu", "Clip", "Mul", "Div", "Tanh",
                         "PWN"), ACT),
        **dict.fromkeys(("QuantizeLinear", "DequantizeLinear"), QDQ),
        **dict.fromkeys(("Reformatting", "Transpose", "Reshape", "Concat", "Split", "Slice", "Gather", "Shuffle",
                         "Squeeze", "Unsqueeze", "Flatten"), MOVE),
    }
    colour = "#2ca02c"
    marker = "^"
    engine_kind = "plan"
    version_locked = True
    int8_model = "qdq"
    run_options_class = rules.TrtRunOptions
    build_options_class = rules.TrtBuildOptions
    default_device = "cuda:0"

    @classmethod
    def default_build_options(cls, batches: tuple[int, ...]) -> rules.TrtBuildOptions:
        """A plan's optimisation profile spans the batches a sweep measures (a plan built for batch 1
        refuses batch 8)."""
        return rules.TrtBuildOptions(batches=batches)

    @classmethod
    def availability_impl(cls) -> Availability:
        driver, detail = nvidia_driver()
        try:
            import tensorrt as trt
            version = trt.__version__
        except ImportError as exc:
            missing = f"TensorRT is not installed ({exc}); {INSTALL_HINT}"
            if not driver:
                return Availability(cls.name, False, None, f"{detail}; {missing}")
            return Availability(cls.name, False, None, missing)
        except Exception as exc:  # noqa: BLE001 - a broken install (missing libnvinfer) must not crash doctor
            return Availability(cls.name, False, None, f"TensorRT failed to import: {type(exc).__name__}: {exc}")
        if not driver:
            return Availability(cls.name, False, version, f"{detail} (TensorRT {version} is installed)")
        try:
            import_cudart()
        except ImportError as exc:
            return Availability(cls.name, False, version, f"cuda-python is not installed ({exc}); "
                                                           "pip install 'edgebench[tensorrt]'")
        try:
            gpu = gpu_info()
        except Exception as exc:  # noqa: BLE001
            hint = mismatch_hint(detail)  # e.g. cuda-bindings 13 on a CUDA 12 driver
            return Availability(cls.name, False, version, f"no usable CUDA device ({detail}): {exc}"
                                + (f"; {hint}" if hint else ""))
        return Availability(cls.name, True, version, "", [f"cuda:0 {gpu['name']} (sm {gpu['compute_capability']})"])

    @classmethod
    def engine_sources(cls, precision: str, options: rules.TrtBuildOptions | None = None) -> tuple[str, ...]:
        """INT8 plans build from the Q/DQ ONNX (unless the legacy calibrator is asked for); FP16 plans on
        TensorRT >= 11 from the FP16 ONNX (strong typing)."""
        if precision == "int8":
            return () if options is not None and options.legacy_calibrator else ("qdq",)
        if precision == "fp16":
            import tensorrt as trt
            return ("fp16",) if rules.parse_version(trt.__version__)[0] >= 11 else ()
        return ()

    @classmethod
    def build_engine(cls, request: EngineRequest) -> dict:
        return build_plan_for(request)

    def activate_impl(self) -> None:
        options, engine = self.options, self.engine
        if Path(engine).suffix == ".onnx":
            raise UsageError(f"the trt runtime loads a plan, not {engine}; build one with "
                             "`edgebench export MODEL --runtime trt`")
        self.core = TrtEngine(Path(engine))
        lo, hi = self.core.profile_range()
        outside = [b for b in options.batches if not lo <= b <= hi]
        if outside:
            raise EngineMismatch(f"batch {outside[0]} is outside the engine's profile [{lo}, {hi}]; rebuild it with "
                                 f"`edgebench export MODEL --runtime trt --batch {','.join(map(str, options.batches))}`")

    def input_metadata_impl(self) -> InputMetadata:
        """The plan's first input (``ICudaEngine.get_tensor_shape``: -1 where dynamic, TensorRT 8.5 to 11) and
        its optimisation profile's batch range."""
        core = self.core
        name = core.inputs[0]
        shape = tuple(int(d) if int(d) >= 0 else None for d in core.engine.get_tensor_shape(name))
        dtype = np.dtype(core.trt.nptype(core.engine.get_tensor_dtype(name))).name
        return InputMetadata(name, shape, dtype, core.profile_range())

    @property
    def run_options(self) -> rules.TrtRunOptions:
        return self.options.backend or rules.TrtRunOptions()

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        return self.core.infer(batch)

    def bind_impl(self, batch: np.ndarray) -> Callable[[], None]:
        """Host latency = H2D + execute_async_v3 + D2H + sync; GPU compute time from CUDA events."""
        self.core.prepare(batch)
        if self.run_options.cuda_graph:
            self.core.capture_graph()
        self.core.gpu_ms.clear()
        self.core.copy_ms.clear()
        return self.core.timed_run()

    def settings(self) -> dict:
        manifest = self.core.manifest
        build = manifest.get("build") or {}
        return {**self.core.settings(profile=manifest.get("profile"), build=build,
                                     float_layers=build.get("float_layers"), cuda_graph=self.run_options.cuda_graph),
                "workspace_mb": build.get("workspace_mb"),
                "hardware_compatibility": manifest.get("hardware_compatibility"),
                "timing_cache": manifest.get("timing_cache")}

    def layer_profile_impl(self, batch: np.ndarray) -> list[dict]:
        return self.core.layer_profile(batch)

    def effective_precision(self) -> str:
        return self.core.manifest.get("precision", self.options.precision)

    def device_memory(self) -> dict:
        return self.core.memory_mb()

    def deactivate_impl(self) -> None:
        if getattr(self, "core", None) is not None:
            self.core.close()
            self.core = None  # type: ignore[assignment]


# ---------------------------------------------------------------- engine build

def build_plan_for(request: EngineRequest) -> dict:
    """Build ``<precision>/tensorrt/model.plan`` (+ ``.json``) in ``request.folder``.

    The profile covers ``options.batches``; the timing cache (``options.timing_cache``, else
    ``trt.timing-cache`` in the folder) is read before and grown after every build.
    """
    import tensorrt as trt


    options: rules.TrtBuildOptions = request.options or rules.TrtBuildOptions()
    precision, folder = request.precision, Path(request.folder)
    qdq = request.sources.get("qdq")
    fp16_onnx = request.sources.get("fp16")
    cfg = rules.derive_build_config(
        precision, trt.__version__, qdq_available=qdq is not None, fp16_onnx_available=fp16_onnx is not None,
        legacy_calibrator=options.legacy_calibrator, workspace_mb=options.workspace_mb,
        hardware_compatibility=options.hardware_compatibility)
    source = {"fp32": Path(request.onnx), "fp16": fp16_onnx, "qdq": qdq}[cfg.onnx_source]
    if cfg.onnx_source == "qdq":
        summary = qdq_summary(source)
        if not summary["tensorrt_ready"]:
            raise UsageError(f"{qdq} is not a Q/DQ ONNX TensorRT takes ({'; '.join(summary['problems'])}); rebuild it: "
                             "`edgebench export MODEL --runtime trt --precision int8 --data DIR`")
        cfg.notes.append(f"Q/DQ ONNX: {qdq.relative_to(folder)} ({summary['quantize_nodes']} QuantizeLinear nodes)")
    profile = options.profile(request.input_shape)
    timing_cache = Path(options.timing_cache) if options.timing_cache else folder / rules.TIMING_CACHE_FILE
    plan = folder / f"{precision}/tensorrt/{rules.ENGINE_FILE}"
    calibration = None
    if cfg.legacy_calibrator:
        if request.inputs is None:
            raise UsageError("the legacy INT8 calibrator needs calibration inputs")
        calibration = rules.calibration_batches(request.inputs, profile)
    engine_manifest = build_plan(source, plan, cfg, profile, timing_cache=timing_cache,
                                 calibration_batches=calibration,
                                 calibration_cache=folder / rules.CALIBRATION_CACHE_FILE, status=request.status)
    return {"tool": "tensorrt build_serialized_network", "onnx": str(source.relative_to(folder)),
            "options": options.to_dict(), "engine_manifest": engine_manifest,
            "files": [plan, rules.manifest_path_for(plan)]}
