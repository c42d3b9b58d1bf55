"""Runtimes behind one interface (:class:`~edgebench.runtimes.base.Runtime`).

Classes are imported lazily by name, so asking about one runtime never imports another.
"""

from __future__ import annotations

import importlib

from ..errors import RuntimeUnavailable, UsageError
from .base import PRECISIONS, Availability, Runtime, RuntimeOptions

# CLI name -> "module:Class"
RUNTIMES: dict[str, str] = {
    "torch": "edgebench.runtimes.torch_rt:TorchRuntime",
    "ort": "edgebench.runtimes.onnxruntime_rt:OnnxRuntime",
    "openvino": "edgebench.runtimes.openvino_rt:OpenVinoRuntime",
    "trt": "edgebench.runtimes.tensorrt_rt:TensorRTRuntime",
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


__all__ = ["PRECISIONS", "RUNTIMES", "Availability", "Runtime", "RuntimeOptions", "canonical",
           "require", "runtime_class"]
