"""Runtimes behind one interface (:class:`~edgebench.backends.base.Runtime`), one package each.

This registry is the one place that names them: the CLI choices, ``doctor``, the
sweep and the INT8 builds derive from it. Classes are imported lazily by name, so
asking about one runtime never imports another. Adding a runtime means adding one
package under ``backends/`` and one line here.
"""

from __future__ import annotations

import importlib
import re

from edgebench.backends.base import PRECISIONS, Availability, EngineRequest, Runtime, RuntimeOptions, Status, quiet
from edgebench.portable.errors import RuntimeUnavailable, UsageError

# CLI name -> "module:Class"
RUNTIMES: dict[str, str] = {
    "torch": "edgebench.backends.torch.runtime:TorchRuntime",
    "ort": "edgebench.backends.onnxruntime.runtime:OnnxRuntime",
    "openvino": "edgebench.backends.openvino.runtime:OpenVinoRuntime",
    "trt": "edgebench.backends.tensorrt.runtime:TensorRTRuntime",
    "executorch": "edgebench.backends.executorch.runtime:ExecuTorchRuntime",
}
ALIASES = {"onnxruntime": "ort", "ov": "openvino", "tensorrt": "trt", "pytorch": "torch"}


def canonical(name: str) -> str:
    name = ALIASES.get(name.lower(), name.lower())
    if name not in RUNTIMES:
        raise UsageError(f"unknown runtime {name!r}; choose one of {', '.join(RUNTIMES)}")
    return name


def runtime_class(name: str) -> type[Runtime]:
    module, _, cls = RUNTIMES[canonical(name)].partition(":")
    return getattr(importlib.import_module(module), cls)


def require(name: str) -> type[Runtime]:
    """The runtime class, or RuntimeUnavailable saying exactly what is missing."""
    cls = runtime_class(name)
    available = cls.availability()
    if not available.usable:
        raise RuntimeUnavailable(f"runtime {cls.name} is not usable here: {available.reason}")
    return cls


def require_device(name: str, device: str | None) -> None:
    """RuntimeUnavailable unless ``device`` (None or "auto": the runtime's choice) is present here, checked
    before any work so that an absent device costs no measurement and leaves no record."""
    if device is None or device.lower() == "auto":
        return
    cls = require(name)
    devices = cls.availability().devices
    present = {d.lower() for entry in devices for d in (entry.split()[0], re.split(r"[.:]", entry)[0])}
    if device.lower() not in present:
        raise RuntimeUnavailable(f"{cls.name} has no device {device!r} here (available: {', '.join(devices) or 'none'})")


def engine_runtimes() -> list[str]:
    """The runtimes whose engines ``export`` builds."""
    return [name for name in RUNTIMES if runtime_class(name).builds_engine]


def int8_runtimes() -> list[str]:
    """The runtimes that load an INT8 model."""
    return [name for name in RUNTIMES if runtime_class(name).int8_model]


__all__ = ["PRECISIONS", "RUNTIMES", "Availability", "EngineRequest", "Runtime", "RuntimeOptions", "Status", "canonical",
           "engine_runtimes", "int8_runtimes", "quiet", "require", "require_device", "runtime_class"]
