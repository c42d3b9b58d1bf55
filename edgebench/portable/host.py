"""What produced a number: the host fingerprint, package versions, edgebench version and git commit.

One implementation for the library and the device runner (x86 ``model name``/``flags``,
ARM ``Hardware``/``Features``, the Jetson board from the device tree).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

from . import cpu_int8, cpuinfo

_PACKAGES = ("torch", "torchvision", "timm", "onnx", "onnxruntime", "openvino", "nncf", "numpy",
             "opencv-python-headless", "tensorrt", "cuda-python", "cuda-bindings")
#: The one list of ISA flags that change kernels (and so latency and INT8 accuracy): x86's vector, VNNI and
#: AMX extensions and ARM's dot-product, int8 matrix and SVE ones. Records keep these, and the host fingerprint
#: compares them.
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_bf16", "amx_int8",
             "amx_tile", "asimddp", "i8mm", "sve", "sve2")


def package_versions(names: tuple[str, ...] = _PACKAGES) -> dict[str, str | None]:
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


@functools.lru_cache(maxsize=None)
def cpu_model() -> str:
    found = cpuinfo.fields()
    return found.get("model name") or found.get("hardware") or platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    return sorted(f for f in cpu_int8.read_flags() if f in ISA_FLAGS)


def board() -> str | None:
    """The device-tree model (e.g. a Jetson module), None on a PC."""
    try:
        return Path("/proc/device-tree/model").read_text().strip("\x00\n ") or None
    except OSError:
        return None


def nvpmodel_mode(text: str | None) -> str | None:
    """``NV Power Mode: MAXN`` -> ``MAXN`` (``nvpmodel -q``, here or on a device); the text as it is when it has
    no such line."""
    if not text:
        return None
    for line in text.splitlines():
        if line.startswith("NV Power Mode:"):
            return line.split(":", 1)[1].strip()
    return text.strip().splitlines()[0]


def _accelerator() -> dict:
    """GPU name and driver (nvidia-smi), Jetson power mode (nvpmodel), where present: host fingerprint fields."""
    found = {}
    for tool, args, keys in (("nvidia-smi", ["--query-gpu=name,driver_version", "--format=csv,noheader"],
                              ("gpu", "gpu_driver")), ("nvpmodel", ["-q"], ("nvpmodel",))):
        if shutil.which(tool):
            try:
                out = subprocess.run([tool, *args], capture_output=True, text=True, timeout=10).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                continue
            first = out.splitlines()[0] if out else ""
            parts = [p.strip() for p in first.split(",")] if tool == "nvidia-smi" else [nvpmodel_mode(out)]
            found.update({k: v for k, v in zip(keys, parts) if v})
    return found


@functools.lru_cache(maxsize=None)
def host_info() -> dict:
    info = {
        **_accelerator(),
        "hostname": platform.node(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_flags": cpu_flags(),
        "cpu_int8": cpu_int8.detect().to_dict(),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
    found = board()
    if found:
        info["board"] = found
    return info


@functools.lru_cache(maxsize=None)
def git_commit() -> str | None:
    """The commit of the edgebench checkout (with '+dirty' for local changes), if any."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                                capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def edgebench_info() -> dict:
    try:
        version = metadata.version("edgebench")
    except metadata.PackageNotFoundError:  # the portable folder on a device
        version = None
    return {"version": version, "git_commit": git_commit()}


# ---------------------------------------------------------------- the fingerprint of a record's host

def fingerprint(record: dict) -> dict:
    """What must match for two latencies to be comparable: CPU model, the ISA flags that matter,
    core count, OS/kernel, runtime and version, GPU name and driver, Jetson power mode, and a fleet device's
    fingerprint (board, L4T/JetPack, TensorRT, clocks).
    The hostname is left out: CI runners of one kind get a new name every job."""
    host = record.get("host") or {}
    runtime = record.get("runtime") or {}
    found = {"cpu": host.get("cpu"), "isa": sorted(f for f in host.get("cpu_flags") or [] if f in ISA_FLAGS),
             "cores": host.get("cpu_count"), "os": host.get("os"), "machine": host.get("machine"),
             "runtime": runtime.get("name"), "runtime_version": runtime.get("version")}
    for optional in ("gpu", "gpu_driver", "nvpmodel"):
        if host.get(optional):
            found[optional] = host[optional]
    device = record.get("device")
    if isinstance(device, dict) and device.get("fingerprint"):  # a fleet place's board: never mixed with another
        found["device"] = device["fingerprint"]
    return found


def fingerprint_key(fp: dict) -> str:
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]


def differences(a: dict, b: dict) -> list[str]:
    """``"cpu: X vs Y"`` for every field where two fingerprints differ."""
    return [f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def host_summary(fp: dict) -> str:
    isa = "+".join(f for f in fp.get("isa") or [] if f in ("avx2", "avx512f", "avx512_vnni", "amx_int8"))
    return f"{fp.get('cpu')} x{fp.get('cores')} {isa} {fp.get('runtime')} {fp.get('runtime_version')}".strip()
