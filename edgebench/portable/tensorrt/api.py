"""The TensorRT Python names edgebench uses, by code path and release: one table the TensorRT modules read.

Each path (``FEATURES``) is a set of names as ``import tensorrt as trt`` binds them (``Class.member``,
``Enum.VALUE``, module attributes) with the releases where edgebench takes that path: from ``since``
up to, not including, ``until``. The modules branch on :func:`uses` and look version-dependent names
up with :func:`resolve`, so a path cannot run on a release the table does not give it.
``tests/test_trt_api.py`` checks every name against the bindings' source of TensorRT 8.5.2, 10.3.0 and
11.1 (``../shared/reference/tensorrt``), and that the modules touch no TensorRT name missing here.

Standard library only: the Jetson bundle ships this file next to its runner.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OLDEST = (8, 5)  # JetPack 5: the oldest release the path runs on

# Where a binding lives in NVIDIA/TensorRT's python/ tree. Only the first three are in the reference
# copy the test parses per release; the OnnxParser names were read by hand in one (2022, 8.x) pyOnnx.cpp,
# the others (ITensor.name, INetworkDefinition.get_input, nptype, __version__) are not checked here.
CORE, INT8 = "infer/pyCore.cpp", "infer/pyInt8.cpp"
REFERENCE_SOURCES = (CORE, "infer/pyFoundationalTypes.cpp", INT8)
GRAPH, ONNX, PACKAGE = "infer/pyGraph.cpp", "parsers/pyOnnx.cpp", "packaging tensorrt/__init__.py"


@dataclass(frozen=True)
class Feature:
    """One code path: the names it touches, the releases that take it, and why the bounds are there."""

    names: dict[str, str]  # trt name -> the bindings file that defines it
    since: tuple[int, int] = OLDEST
    until: tuple[int, int] | None = None
    why: str = ""


def _names(source: str, *names: str) -> dict[str, str]:
    return dict.fromkeys(names, source)


FEATURES: dict[str, Feature] = {
    "build": Feature({
        **_names(CORE, "Logger", "Logger.WARNING", "Builder", "Builder.create_network",
                 "Builder.create_builder_config", "Builder.create_optimization_profile",
                 "Builder.build_serialized_network", "IBuilderConfig.set_memory_pool_limit", "MemoryPoolType.WORKSPACE",
                 "IBuilderConfig.set_flag", "IBuilderConfig.clear_flag", "BuilderFlag.TF32",
                 "IBuilderConfig.add_optimization_profile", "IOptimizationProfile.set_shape"),
        **_names(ONNX, "OnnxParser", "OnnxParser.parse_from_file", "OnnxParser.num_errors", "OnnxParser.get_error"),
        **_names(GRAPH, "INetworkDefinition.get_input", "ITensor.name"),
        **_names(PACKAGE, "__version__"),
    }, why="TF32 is on by default (NvInfer.h, 8.5 to 11.x): every build clears it, so FLOAT layers compute FP32"),
    "run": Feature({
        **_names(CORE, "Runtime", "Runtime.deserialize_cuda_engine", "ICudaEngine.create_execution_context",
                 "ICudaEngine.num_io_tensors", "ICudaEngine.get_tensor_name", "ICudaEngine.get_tensor_mode",
                 "ICudaEngine.get_tensor_profile_shape", "ICudaEngine.get_tensor_dtype", "TensorIOMode.INPUT",
                 "TensorIOMode.OUTPUT", "IExecutionContext.set_input_shape", "IExecutionContext.get_tensor_shape",
                 "IExecutionContext.set_tensor_address", "IExecutionContext.execute_async_v3",
                 "IExecutionContext.profiler", "IProfiler", "IProfiler.report_layer_time"),
        **_names(PACKAGE, "nptype"),
    }, why="the name-based I/O API (num_io_tensors, set_input_shape, execute_async_v3) is 8.5+"),
    "timing_cache": Feature(_names(CORE, "IBuilderConfig.create_timing_cache", "IBuilderConfig.set_timing_cache",
                                   "IBuilderConfig.get_timing_cache", "ITimingCache.serialize")),
    "layer_info": Feature(_names(CORE, "IBuilderConfig.profiling_verbosity", "ProfilingVerbosity.DETAILED",
                                 "ICudaEngine.create_engine_inspector", "EngineInspector.execution_context",
                                 "EngineInspector.get_engine_information", "LayerInformationFormat.JSON"),
                          why="DETAILED verbosity puts each layer's type, formats and tactic in the plan"),
    "explicit_batch_flag": Feature(_names(CORE, "NetworkDefinitionCreationFlag.EXPLICIT_BATCH"), until=(10, 0),
                                   why="8.x networks are implicit-batch unless the flag is set; 10.x ignores it"),
    "precision_flags": Feature(_names(CORE, "BuilderFlag.FP16", "BuilderFlag.INT8"), until=(11, 0),
                               why="11.x is strongly typed only: the ONNX's types decide"),
    "legacy_calibrator": Feature({
        **_names(INT8, "IInt8EntropyCalibrator2", "IInt8EntropyCalibrator2.get_batch_size",
                 "IInt8EntropyCalibrator2.get_batch", "IInt8EntropyCalibrator2.read_calibration_cache",
                 "IInt8EntropyCalibrator2.write_calibration_cache"),
        **_names(CORE, "IBuilderConfig.int8_calibrator", "IBuilderConfig.set_calibration_profile"),
    }, until=(11, 0), why="implicit INT8 calibration: deprecated in 10.1, removed in 11.0"),
    "hardware_compatibility": Feature(_names(CORE, "IBuilderConfig.hardware_compatibility_level",
                                             "HardwareCompatibilityLevel.AMPERE_PLUS"), since=(8, 6),
                                      why="hardware-compatible plans are new in 8.6"),
    "same_compute_capability": Feature(_names(CORE, "HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY"),
                                       since=(10, 9), why="new in 10.9 (not in 10.3.0's bindings)"),
    "device_memory_size": Feature(_names(CORE, "ICudaEngine.device_memory_size"), until=(10, 1),
                                  why="deprecated in 10.1 (device_memory_size_v2), gone in 11.0"),
    "device_memory_size_v2": Feature(_names(CORE, "ICudaEngine.device_memory_size_v2"), since=(10, 1)),
}

# --trt-hw-compat level -> (path, trt name, the oldest GPU that builds it: NvInfer.h's "only supported on")
HARDWARE_LEVELS = {
    "ampere_plus": ("hardware_compatibility", "HardwareCompatibilityLevel.AMPERE_PLUS", (8, 0), "Ampere"),
    "same_compute_capability": ("same_compute_capability", "HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY",
                                (7, 5), "Turing"),
}


def release(version: str | tuple[int, ...]) -> tuple[int, ...] | None:
    """'10.7.0.23' -> (10, 7, 0, 23); non-numeric parts stop the parse; None when nothing parses."""
    if isinstance(version, tuple):
        return version
    parts = []
    for piece in str(version).split("."):
        match = re.match(r"\d+", piece)
        if not match:
            break
        parts.append(int(match.group()))
    return tuple(parts) or None


def uses(feature: str, version: str | tuple[int, ...]) -> bool:
    """Whether edgebench takes ``feature``'s path on TensorRT ``version``."""
    f = FEATURES[feature]
    v = (release(version) or (0,))[:2]
    return f.since <= v and (f.until is None or v < f.until)


def since(feature: str) -> str:
    return ".".join(map(str, FEATURES[feature].since))


def feature_of(name: str) -> str:
    """The path a trt name belongs to (LookupError for a name the table does not list)."""
    for key, f in FEATURES.items():
        if name in f.names:
            return key
    raise LookupError(f"{name!r} is not in edgebench's TensorRT names table (api.FEATURES)")


def resolve(trt, name: str):
    """``trt.<name>`` for a listed name, e.g. ``resolve(trt, "BuilderFlag.FP16")``."""
    feature_of(name)
    obj = trt
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


# ---------------------------------------------------------------- Jetson: which TensorRT each JetPack takes

# JetPack 5 (L4T R35): TensorRT 8.5; JetPack 6.0 (R36.3): 8.6; JetPack 6.1/6.2 (R36.4): 10.3. TensorRT 11
# (11.4.1) supports Jetson only from JetPack 7.2.2, on AGX Orin and Thor (L4T R38+): Orin on JetPack 6 stays on 10.x.
JETPACK = {35: "JetPack 5", 36: "JetPack 6", 38: "JetPack 7"}


def l4t_release(text: str | None = None) -> tuple[int, ...] | None:
    """(36, 4, 3) from /etc/nv_tegra_release ("# R36 (release), REVISION: 4.3, ..."); None off Jetson."""
    if text is None:
        try:
            with open("/etc/nv_tegra_release") as f:
                text = f.read()
        except OSError:
            return None
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    if not match:
        return None
    return (int(match.group(1)), *(int(p) for p in match.group(2).split(".") if p))


def jetson_problem(trt_version: str, l4t: tuple[int, ...] | None) -> str | None:
    """Why this TensorRT cannot run edgebench's path on this Jetson, or None (also off Jetson)."""
    if l4t is None:
        return None
    v = release(trt_version) or (0,)
    jetpack = JETPACK.get(l4t[0], f"L4T R{l4t[0]}")
    if v[:2] < OLDEST:
        return f"TensorRT {trt_version} is older than 8.5 (JetPack 5), the oldest the runner supports"
    if v[0] >= 11 and l4t[0] < 38:
        return (f"TensorRT {trt_version} supports Jetson only from JetPack 7.2.2 (AGX Orin, Thor); this is {jetpack} "
                f"(L4T R{'.'.join(map(str, l4t))}), whose TensorRT is {'8.5' if l4t[0] < 36 else '8.6 or 10.3'}: "
                "use the JetPack TensorRT (python3-libnvinfer), not a pip wheel")
    return None
