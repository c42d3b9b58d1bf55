"""What produced a number: the host fingerprint, package versions, edgebench version and git commit.

One implementation for the library and the device runner (x86 ``model name``/``flags``,
ARM ``Hardware``/``Features``, the Jetson board from the device tree).
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

from . import cpu_int8, cpuinfo

_PACKAGES = ("torch", "torchvision", "timm", "onnx", "onnxruntime", "openvino", "nncf", "numpy",
             "opencv-python-headless", "tensorrt", "cuda-python", "cuda-bindings")
# the ISA flags that change INT8 speed and accuracy (x86) and the ARM dot-product extensions
_FLAG_PREFIXES = ("avx512", "avx2", "amx", "avx_vnni", "asimddp", "i8mm", "sve")


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
    return sorted(f for f in cpu_int8.read_flags() if f.startswith(_FLAG_PREFIXES))


def board() -> str | None:
    """The device-tree model (e.g. a Jetson module), None on a PC."""
    try:
        return Path("/proc/device-tree/model").read_text().strip("\x00\n ") or None
    except OSError:
        return None


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
            parts = [p.strip() for p in first.split(",")] if tool == "nvidia-smi" \
                else [first.replace("NV Power Mode:", "").strip()]
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
