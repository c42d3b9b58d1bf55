"""cuda-python across CUDA 11 (JetPack 5), 12 (JetPack 6, older desktop drivers) and 13.

* the runtime module: ``cuda.bindings.runtime`` (12.6.1+, 13.x), else ``cuda.cudart`` (11.x, 12.x < 12.6.1;
  removed in 13.0);
* a stream's handle for TensorRT: ``cuda.bindings.utils.get_cuda_native_handle`` (12.9.1+, 13.x, where
  ``int(stream)`` is deprecated), else ``int()``;
* graph instantiation: ``cudaGraphInstantiateWithFlags(graph, flags)`` has that signature in 11.4+, 12.x
  and 13.x, while ``cudaGraphInstantiate`` takes (graph, log buffer, size) in 11.x (read in cuda-python
  11.8.2 and 12.2.1's cudart.pyx and 13.5.0's docstrings);
* the driver each bindings major needs, to name a mismatch instead of "no usable CUDA GPU".

Standard library only: the Jetson bundle ships this file next to its runner.
"""

from __future__ import annotations

import re
from importlib import metadata

# the lowest Linux driver of each CUDA major (cuda-bindings / cuda.core install pages)
MIN_DRIVER = {11: (450, 80, 2), 12: (525, 60, 13), 13: (580, 65, 6)}
# pip line per platform (README "TensorRT and Jetson"); JetPack's own TensorRT stays
INSTALL = {
    "desktop, driver >= 580.65 (CUDA 13)": "pip install -e '.[tensorrt]' --extra-index-url https://pypi.nvidia.com",
    "desktop, driver 525-575 (CUDA 12)": "pip install -e '.[tensorrt-cu12]' --extra-index-url https://pypi.nvidia.com",
    "JetPack 6.1/6.2 (CUDA 12.6, TensorRT 10.3)": "pip3 install 'cuda-python>=12.6,<12.7'",
    "JetPack 6.0 (CUDA 12.2, TensorRT 8.6)": "pip3 install 'cuda-python>=12.2,<12.3'",
    "JetPack 5 (CUDA 11.4, TensorRT 8.5, Python 3.8)": "pip3 install 'cuda-python>=11.5,<11.8.3'",
}
_FIX = {13: "pip install 'cuda-python>=13,<14'", 12: "pip install 'cuda-python>=12,<13'",
        11: "pip install 'cuda-python>=11.5,<11.8.3'"}


def import_cudart():
    """cuda-python's runtime module (12.x/13.x layout first, then the older ``cuda.cudart``)."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        from cuda import cudart  # type: ignore[no-redef]
    return cudart


def handle(obj) -> int:
    """The address a CUDA object (stream, event) wraps, for TensorRT's ``stream_handle`` arguments."""
    try:
        from cuda.bindings.utils import get_cuda_native_handle
    except ImportError:
        return int(obj)
    return int(get_cuda_native_handle(obj))


def instantiate_graph(cudart, graph):
    """``(err, graph_exec)`` on every cuda-python major (see the module docstring)."""
    return cudart.cudaGraphInstantiateWithFlags(graph, 0)


def bindings_version() -> str | None:
    for name in ("cuda-bindings", "cuda-python"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def driver_version(detail: str) -> tuple[int, ...] | None:
    """The kernel driver version in ``/proc/driver/nvidia/version`` or nvidia-smi output, e.g. 550.54.15."""
    match = re.search(r"\b(\d{3})\.(\d{1,3})(?:\.(\d{1,3}))?\b", detail or "")
    return tuple(int(g) for g in match.groups() if g is not None) if match else None


def driver_mismatch(bindings: str | None, driver_cuda: int | None, driver: tuple[int, ...] | None) -> str | None:
    """Why cuda-python ``bindings`` cannot use this driver, with the pip line that fixes it; None if it can.

    ``driver_cuda`` is cudaDriverGetVersion() (12060 = CUDA 12.6; 0 or None when unknown), ``driver``
    the kernel driver version; either suffices (Jetson drivers report the CUDA version only).
    """
    try:
        major = int(str(bindings).split(".")[0])
    except ValueError:
        return None
    if major not in MIN_DRIVER:
        return None
    need = MIN_DRIVER[major]
    cuda = (driver_cuda // 1000, driver_cuda % 1000 // 10) if driver_cuda else None
    too_old = cuda[0] < major if cuda else (driver is not None and driver < need)
    if not too_old:
        return None
    here = ".".join(map(str, driver)) if driver else "unknown"
    usable = cuda[0] if cuda else max((m for m, v in MIN_DRIVER.items() if driver >= v), default=None)
    fix = _FIX.get(usable, "update the NVIDIA driver")
    return (f"cuda-bindings {bindings} needs an NVIDIA driver >= {'.'.join(map(str, need[:2]))} (CUDA {major}); "
            f"this driver is {here}" + (f" (CUDA {cuda[0]}.{cuda[1]})" if cuda else "") + f": {fix}")


def mismatch_hint(driver_detail: str) -> str | None:
    """:func:`driver_mismatch` for the installed cuda-python and the running driver (``driver_detail``: the
    driver's own report, /proc/driver/nvidia/version or nvidia-smi); None when they fit or nothing is known."""
    try:
        err, driver_cuda = import_cudart().cudaDriverGetVersion()
        driver_cuda = driver_cuda if int(err) == 0 else None
    except Exception:  # noqa: BLE001 - no cuda-python or no driver library at all
        driver_cuda = None
    return driver_mismatch(bindings_version(), driver_cuda, driver_version(driver_detail))
