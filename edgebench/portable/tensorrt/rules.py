"""TensorRT build and compatibility logic that needs neither a GPU nor TensorRT.

Optimisation-profile shapes from a batch list, the build configuration for a
precision and TensorRT version, the engine manifest written next to each plan
and its compatibility check, and the legacy INT8 calibration-cache text format.

This module uses only the standard library; it is part of the portable core that the
Jetson bundle ships.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EngineMismatch, UsageError
from . import api

ENGINE_MANIFEST_SCHEMA = "edgebench.trt-engine/1"
ENGINE_FILE = "model.plan"
TIMING_CACHE_FILE = "trt.timing-cache"
CALIBRATION_CACHE_FILE = "trt.calibration-cache"
DEFAULT_WORKSPACE_MB = 2048
HARDWARE_COMPAT_LEVELS = ("none", "ampere_plus", "same_compute_capability")
HARDWARE_COMPAT_CLI = {"none": "none", "ampere+": "ampere_plus", "same-compute-capability": "same_compute_capability"}
BUILD_RECIPE = 2  # bump when derive_build_config changes what a plan computes (2: TF32 cleared, FP16 with INT8)
LEGACY_CALIBRATOR_NOTE = ("IInt8EntropyCalibrator2 (implicit quantization) is deprecated since TensorRT 10.1 and "
                          "removed in 11.x; prefer the Q/DQ ONNX (explicit quantization)")


# ---------------------------------------------------------------- versions

def parse_version(version: str) -> tuple[int, ...]:
    """'10.7.0.23' -> (10, 7, 0, 23); non-numeric parts stop the parse."""
    parts = api.release(str(version))
    if not parts:
        raise UsageError(f"not a TensorRT version: {version!r}")
    return parts


def same_release(a: str, b: str) -> bool:
    """Plans load only on the TensorRT release (major.minor.patch) that built them."""
    return parse_version(a)[:3] == parse_version(b)[:3]


# ---------------------------------------------------------------- profiles

def profile_batches(batches: tuple[int, ...] | list[int], opt: int | None = None) -> tuple[int, int, int]:
    """The profile rule: (min, opt, max) = (smallest, ``opt`` or the first batch listed, largest).

    The first batch listed is the one TensorRT tunes its kernels for, so ``--batch 1,8,32`` gives
    1/1/32 (latency first) and ``--batch 32,1,8`` gives 1/32/32 (throughput first).
    """
    batches = [int(b) for b in batches]
    if not batches or any(b < 1 for b in batches):
        raise UsageError(f"batch sizes must be positive integers, got {batches}")
    lo, hi = min(batches), max(batches)
    opt = batches[0] if opt is None else int(opt)
    if not lo <= opt <= hi:
        raise UsageError(f"profile opt batch {opt} is outside [{lo}, {hi}]")
    return lo, opt, hi


def profile_shapes(batches: tuple[int, ...] | list[int], input_shape: tuple[int, ...] | list[int],
                   opt: int | None = None) -> dict[str, list[int]]:
    """One optimisation profile covering every batch (rule: :func:`profile_batches`)."""
    chw = [int(d) for d in input_shape]
    if len(chw) != 3 or any(d < 1 for d in chw):
        raise UsageError(f"input shape must be static C, H, W, got {list(input_shape)}")
    lo, opt, hi = profile_batches(batches, opt)
    return {"min": [lo, *chw], "opt": [opt, *chw], "max": [hi, *chw]}


def calibration_batches(images, profile: dict) -> list:
    """Legacy-calibrator input: batches of the profile's opt size (TensorRT calibrates at that
    shape), the images repeated to fill the last batch."""
    opt = profile["opt"][0]
    images = np.resize(images, (-(-len(images) // opt) * opt, *images.shape[1:]))
    return [images[i:i + opt] for i in range(0, len(images), opt)]


def profile_covers(profile: dict, batch: int) -> bool:
    return profile["min"][0] <= batch <= profile["max"][0]


# ---------------------------------------------------------------- user options

def check_build_limits(workspace_mb: int, hardware_compatibility: str) -> None:
    """UsageError for a workspace limit or hardware-compatibility level no TensorRT build accepts
    (the CLI's options and the Jetson runner's arguments go through this one check)."""
    if workspace_mb < 1:
        raise UsageError("the TensorRT workspace limit must be at least 1 MiB")
    if hardware_compatibility not in HARDWARE_COMPAT_LEVELS:
        raise UsageError(f"hardware compatibility must be one of {', '.join(HARDWARE_COMPAT_LEVELS)}, "
                         f"got {hardware_compatibility!r}")



@dataclass(frozen=True)
class TrtBuildOptions:
    """How to build a plan, from ``export``/``run`` options: the batches its profile covers,
    workspace, hardware compatibility, timing cache, legacy INT8 calibrator."""

    batches: tuple[int, ...] = (1,)
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    hardware_compatibility: str = "none"  # one of HARDWARE_COMPAT_LEVELS
    timing_cache: str | None = None  # None: trt.timing-cache in the model's artifact folder
    legacy_calibrator: bool = False  # deprecated since TensorRT 10.1, removed in 11.x

    def __post_init__(self) -> None:
        object.__setattr__(self, "batches", tuple(int(b) for b in self.batches))
        profile_batches(self.batches)
        check_build_limits(self.workspace_mb, self.hardware_compatibility)

    def profile(self, input_shape: tuple[int, ...] | list[int]) -> dict[str, list[int]]:
        return profile_shapes(self.batches, input_shape)

    def key(self, precision: str) -> dict:
        """What changes the plan (part of its content key); the timing cache only speeds the build."""
        return {"profile_batches": list(profile_batches(self.batches)), "workspace_mb": self.workspace_mb,
                "hardware_compatibility": self.hardware_compatibility,
                "legacy_calibrator": self.legacy_calibrator and precision == "int8", "recipe": BUILD_RECIPE}

    def to_dict(self) -> dict:
        return {**asdict(self), "batches": list(self.batches)}


@dataclass(frozen=True)
class TrtRunOptions:
    """How to run a plan: replay a captured CUDA graph."""

    cuda_graph: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- build configuration

@dataclass
class BuildConfig:
    """What the builder does for one precision on one TensorRT version (all plain data)."""

    precision: str
    trt_version: str
    onnx_source: str  # "fp32" | "fp16" (an FP16 ONNX, TRT 11 strong typing) | "qdq"
    builder_flags: list[str] = field(default_factory=list)  # trt.BuilderFlag names
    strongly_typed: bool = False
    explicit_batch_flag: bool = False  # TensorRT 8.x needs NetworkDefinitionCreationFlag.EXPLICIT_BATCH
    legacy_calibrator: bool = False
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    hardware_compatibility: str = "none"
    notes: list[str] = field(default_factory=list)
    cleared_flags: list[str] = field(default_factory=list)  # trt.BuilderFlag names cleared (on by default)
    float_layers: str = "fp32"  # what the layers outside INT8 compute in

    def to_dict(self) -> dict:
        return asdict(self)


def derive_build_config(precision: str, trt_version: str, *, qdq_available: bool = False,
                        fp16_onnx_available: bool = False, legacy_calibrator: bool = False,
                        workspace_mb: int = DEFAULT_WORKSPACE_MB, hardware_compatibility: str = "none") -> BuildConfig:
    """The build recipe, or UsageError naming what is missing for this precision and version.

    Which releases take which path is :mod:`.api`'s table (the flags below are its names):

    * every build clears BuilderFlag.TF32, on by default since 8.x: FLOAT layers compute FP32, which
      the 1e-3 fp32 verification expects (emulated TF32 rounding: 5.6e-3 on mobilenet_v3, 2.1e-2 on resnet50);
    * 8.x/10.x FP16: the FP32 ONNX with BuilderFlag.FP16 (weak typing);
    * 11.x FP16: builder precision flags are gone; an FP16 ONNX built strongly typed;
    * INT8: the Q/DQ ONNX (explicit quantization). 8.x/10.x set FP16 with INT8, as trtexec ``--best``
      does, so the layers outside Q/DQ run FP16 where that is faster; 11.x runs them in the ONNX's FP32;
    * INT8 legacy: FP32 ONNX + IInt8EntropyCalibrator2 (deprecated 10.1, removed 11.0), FP16 + INT8.
    """
    version = parse_version(trt_version)
    if precision not in ("fp32", "fp16", "int8"):
        raise UsageError(f"TensorRT precision must be fp32, fp16 or int8, got {precision!r}")
    check_build_limits(workspace_mb, hardware_compatibility)
    if hardware_compatibility != "none":
        feature = api.HARDWARE_LEVELS[hardware_compatibility][0]
        if not api.uses(feature, version):
            cli = {v: k for k, v in HARDWARE_COMPAT_CLI.items()}[hardware_compatibility]
            raise UsageError(f"--trt-hw-compat {cli} needs TensorRT >= {api.since(feature)} (this is {trt_version})")
    flags = api.uses("precision_flags", version)
    cfg = BuildConfig(precision, trt_version, "fp32", workspace_mb=workspace_mb,
                      hardware_compatibility=hardware_compatibility,
                      explicit_batch_flag=api.uses("explicit_batch_flag", version), strongly_typed=not flags,
                      cleared_flags=["TF32"])
    mixed = "fp16 where faster, else fp32"
    if precision == "fp16":
        if not flags:
            if not fp16_onnx_available:
                raise UsageError(f"TensorRT {trt_version} has no FP16 builder flag (strong typing only): "
                                 "it needs an FP16 ONNX (edgebench export --precision fp16 writes fp16/model.onnx)")
            cfg.onnx_source, cfg.float_layers = "fp16", "fp16 (the FP16 ONNX's types)"
        else:
            cfg.builder_flags.append("FP16")
            cfg.float_layers = mixed
    elif precision == "int8":
        if legacy_calibrator:
            if not api.uses("legacy_calibrator", version):
                raise UsageError(f"TensorRT {trt_version} removed implicit INT8 calibration; use the Q/DQ ONNX")
            cfg.legacy_calibrator = True
            cfg.builder_flags += ["FP16", "INT8"]
            cfg.float_layers = mixed
            cfg.notes.append(LEGACY_CALIBRATOR_NOTE)
        elif not qdq_available:
            raise UsageError("no INT8 Q/DQ ONNX in the artifacts: run `edgebench export MODEL --precision int8 "
                             "--data DIR` first (or use the deprecated legacy calibrator on TensorRT < 11)")
        else:
            cfg.onnx_source = "qdq"
            if flags:  # explicit quantization on weakly typed networks
                cfg.builder_flags += ["FP16", "INT8"]
                cfg.float_layers = mixed
            else:
                cfg.float_layers = "fp32 (strongly typed: the Q/DQ ONNX's float type)"
    return cfg


def check_hardware_compat_gpu(level: str, compute_capability: str, integrated: bool) -> None:
    """Refuse (UsageError) a hardware-compatible build the building GPU cannot make: TensorRT supports
    it only on discrete GPUs (not on Jetson / JetPack), Ampere+ for ``ampere_plus``, Turing+ for
    ``same_compute_capability`` (NvInfer.h)."""
    if level == "none":
        return
    if integrated:
        raise UsageError("hardware-compatible engines are not supported on Jetson (JetPack) or other "
                         "integrated GPUs; use --trt-hw-compat none")
    _feature, _name, oldest, arch = api.HARDWARE_LEVELS[level]
    if _cc(compute_capability) < oldest:
        raise UsageError(f"{level} hardware-compatible engines must be built on a {arch} or newer GPU "
                         f"(sm {oldest[0]}.{oldest[1]}+; this one is sm {compute_capability}); use --trt-hw-compat none")


# ---------------------------------------------------------------- engine manifest

def engine_manifest(*, trt_version: str, gpu_name: str, compute_capability: str, precision: str,
                    profile: dict, onnx_sha256: str, build: BuildConfig | dict | None = None,
                    plan_sha256: str | None = None, plan_bytes: int | None = None) -> dict:
    build_dict = build.to_dict() if isinstance(build, BuildConfig) else (build or {})
    return {
        "schema": ENGINE_MANIFEST_SCHEMA,
        "tensorrt_version": str(trt_version),
        "gpu_name": gpu_name,
        "compute_capability": str(compute_capability),
        "precision": precision,
        "profile": {k: list(v) for k, v in profile.items()},
        "onnx_sha256": onnx_sha256,
        "hardware_compatibility": build_dict.get("hardware_compatibility", "none"),
        "build": build_dict,
        "plan_sha256": plan_sha256,
        "plan_bytes": plan_bytes,
    }


def manifest_path_for(plan: Path) -> Path:
    return Path(plan).with_suffix(Path(plan).suffix + ".json")


def write_engine_manifest(plan: Path, manifest: dict) -> Path:
    path = manifest_path_for(plan)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    tmp.replace(path)
    return path


def read_engine_manifest(plan: Path) -> dict:
    path = manifest_path_for(plan)
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise EngineMismatch(f"{plan} has no engine manifest ({path.name}); rebuild it with "
                             "`edgebench export MODEL --runtime trt`") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise EngineMismatch(f"cannot read {path} ({exc}); rebuild with `edgebench export MODEL --runtime trt`") from None
    if manifest.get("schema") != ENGINE_MANIFEST_SCHEMA:
        raise EngineMismatch(f"{path} is not an edgebench TensorRT engine manifest; rebuild the engine")
    return manifest


def check_compatible(manifest: dict, *, trt_version: str, gpu_name: str, compute_capability: str,
                     plan: str = "the engine") -> None:
    """Refuse (EngineMismatch) a plan built by another TensorRT release or for another GPU.

    A hardware-compatible plan (``ampere_plus``) may move between GPUs of compute capability
    >= 8.0; ``same_compute_capability`` between GPUs with the same capability. The TensorRT
    release must always match (edgebench does not build version-compatible plans).
    """
    how = ("rebuild it here: `edgebench export MODEL --runtime trt --precision "
           f"{manifest.get('precision', 'fp32')}` (the stale plan is replaced)")
    built_version = manifest.get("tensorrt_version", "?")
    if not same_release(built_version, trt_version):
        raise EngineMismatch(f"{plan} was built with TensorRT {built_version} but this is TensorRT {trt_version}; {how}")
    level = manifest.get("hardware_compatibility", "none")
    built_gpu, built_cc = manifest.get("gpu_name"), str(manifest.get("compute_capability"))
    if level == "ampere_plus":
        if _cc(compute_capability) < (8, 0):
            raise EngineMismatch(f"{plan} is Ampere+-compatible but this GPU ({gpu_name}, sm {compute_capability}) "
                                 f"is older; {how}")
        return
    if level == "same_compute_capability":
        if _cc(compute_capability) != _cc(built_cc):
            raise EngineMismatch(f"{plan} was built for compute capability {built_cc} but {gpu_name} has "
                                 f"{compute_capability}; {how}")
        return
    if built_gpu != gpu_name or _cc(built_cc) != _cc(compute_capability):
        raise EngineMismatch(f"{plan} was built for {built_gpu} (sm {built_cc}) but this GPU is {gpu_name} "
                             f"(sm {compute_capability}); {how}")


def _cc(value: str) -> tuple[int, int]:
    major, _, minor = str(value).partition(".")
    try:
        return int(major), int(minor or 0)
    except ValueError:
        raise UsageError(f"not a compute capability: {value!r}") from None


# ---------------------------------------------------------------- legacy calibration cache

_CACHE_HEADER = re.compile(r"^TRT-(\d+)-(\w+)$")


def trt_version_number(version: str) -> int:
    """The NV_TENSORRT_VERSION number a calibration-cache header carries: 8.6.1 -> 8601, 10.1.0 -> 100100."""
    v = (*parse_version(version), 0, 0)
    return v[0] * 10000 + v[1] * 100 + v[2] if v[0] >= 10 else v[0] * 1000 + v[1] * 100 + v[2]


def write_calibration_cache(scales: dict[str, float], trt_version: str,
                            algorithm: str = "EntropyCalibration2") -> bytes:
    """TensorRT's text calibration cache: a ``TRT-<version>-<algorithm>`` header, then one
    ``tensor: <hex>`` line per tensor, the hex being the big-endian IEEE-754 float32 scale."""
    lines = [f"TRT-{trt_version_number(trt_version)}-{algorithm}"]
    for name, scale in scales.items():
        if ":" in name or "\n" in name:
            raise UsageError(f"tensor name {name!r} cannot be stored in a calibration cache")
        if not (scale > 0 and math.isfinite(scale)):
            raise UsageError(f"scale of {name!r} must be positive and finite, got {scale}")
        lines.append(f"{name}: {struct.pack('>f', float(scale)).hex()}")
    return ("\n".join(lines) + "\n").encode()


def read_calibration_cache(data: bytes | str) -> dict:
    """Parse a calibration cache into {"version": int, "algorithm": str, "scales": {tensor: float}}."""
    text = data.decode() if isinstance(data, bytes) else data
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not (header := _CACHE_HEADER.match(lines[0].strip())):
        raise UsageError("not a TensorRT calibration cache (missing the TRT-<version>-<algorithm> header)")
    scales = {}
    for n, line in enumerate(lines[1:], start=2):
        name, sep, value = line.rpartition(":")
        value = value.strip()
        if not sep or not re.fullmatch(r"[0-9a-fA-F]{8}", value):
            raise UsageError(f"calibration cache line {n} is malformed: {line!r}")
        scales[name.strip()] = struct.unpack(">f", bytes.fromhex(value))[0]
    return {"version": int(header.group(1)), "algorithm": header.group(2), "scales": scales}


def cache_matches(cache: dict, trt_version: str) -> bool:
    """A cache is reused only by the TensorRT version that wrote it (else recalibrate)."""
    return cache.get("version") == trt_version_number(trt_version)


def calibration_cache_key(trt_version: str, onnx_sha256: str, calibration_sha256: str) -> str:
    """What a legacy calibration cache holds scales for: the TensorRT release, the ONNX (a re-export
    renames tensors and changes ranges) and the calibration images."""
    return hashlib.sha256(json.dumps([str(trt_version), onnx_sha256, calibration_sha256]).encode()).hexdigest()


def _key_path(cache: Path) -> Path:
    return Path(cache).with_name(Path(cache).name + ".key")


def cached_calibration(cache: Path, key: str, trt_version: str) -> bytes | None:
    """The cache at ``cache`` if its ``.key`` file names ``key`` and it parses for this release, else None."""
    try:
        data, stored = Path(cache).read_bytes(), _key_path(cache).read_text().strip()
        matches = stored == key and cache_matches(read_calibration_cache(data), trt_version)
    except (OSError, UnicodeDecodeError, UsageError):
        return None
    return data if matches else None


def store_calibration(cache: Path, data: bytes, key: str) -> None:
    """Write the cache, then its key (atomically each: a cache without its key is never reused)."""
    read_calibration_cache(data)  # refuse to store what cannot be read back
    for target, blob in ((Path(cache), bytes(data)), (_key_path(cache), key.encode())):
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(blob)
        tmp.replace(target)
