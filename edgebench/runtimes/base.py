"""One interface for every runtime, in the style of Polygraphy's backends.

A runtime loads an *engine* (a file made by :mod:`edgebench.export`: ONNX for
ONNX Runtime, IR for OpenVINO, a serialised plan for TensorRT), runs numpy
batches, and reports its settings and device memory. Runtimes never import
torch unless they are the torch runtime, so a measurement process holds only
the runtime it measures.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np

from .tensorrt_config import TrtRunOptions

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class RuntimeOptions:
    """What a user chooses for one engine: precision, threads, device, batch range, per-layer profile,
    TensorRT run options."""

    precision: str = "fp32"
    threads: int | None = None
    device: str | None = None  # runtime-specific device name; None = the runtime's default
    batches: tuple[int, ...] = (1,)  # batch sizes the engine must accept (TensorRT profiles)
    profile: bool = False  # per-layer times after the timed loop (runtime.settings.layer_profile)
    trt: TrtRunOptions = field(default_factory=TrtRunOptions)  # used by the trt runtime only

    def __post_init__(self) -> None:
        if isinstance(self.trt, dict):  # back from to_dict(), e.g. through the measurement worker's JSON
            object.__setattr__(self, "trt", TrtRunOptions(**self.trt))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Availability:
    """Whether a runtime can run here, and why not."""

    name: str
    usable: bool
    version: str | None
    reason: str = ""
    devices: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


class Runtime(ABC):
    """Load an engine, run numpy batches, report settings and memory, close."""

    name: ClassVar[str]  # CLI name: torch | ort | openvino | trt
    engine_kind: ClassVar[str]  # which export artifact the runtime loads
    #: Whether the engine is a build product that must match the runtime version / device
    #: it was built with (TensorRT plans); CPU runtimes load portable files.
    version_locked: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def availability(cls) -> Availability:
        """Installed? Which version? Which devices? Never raises."""

    def __init__(self, engine: Path, options: RuntimeOptions) -> None:
        self.engine = Path(engine)
        self.options = options

    @abstractmethod
    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Run one NCHW float32 batch, return the logits as a numpy array."""

    def bind(self, batch: np.ndarray) -> Callable[[], None]:
        """A zero-argument call that runs ``batch`` once, for timed loops.

        Runtimes override this to bind inputs once so the loop times inference only.
        """
        return lambda: self.infer(batch)

    @abstractmethod
    def settings(self) -> dict:
        """Settings that shape the numbers: threads, hints, providers, effective precision."""

    def layer_profile(self, batch: np.ndarray) -> list[dict]:
        """Per-layer times of ``batch`` on separate runs after the timed loop (see :mod:`.layer_profile`)."""
        raise NotImplementedError(f"{self.name} has no per-layer profile")

    def effective_precision(self) -> str:
        """The precision the device really computes in (a CPU may run an FP16 request as FP32)."""
        return self.options.precision

    def device_memory(self) -> dict:
        """Accelerator memory use (MB); empty for CPU runtimes, whose memory is the process RSS."""
        return {}

    def close(self) -> None:
        """Release the engine."""

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
