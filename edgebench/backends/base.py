"""One interface for every runtime, in the style of Polygraphy's runners.

A runtime loads an *engine* (a file made by :mod:`edgebench.build`: ONNX for ONNX
Runtime, IR for OpenVINO, a serialised plan for TensorRT), runs numpy batches, and
reports its settings and device memory. The public :meth:`Runtime.activate`,
:meth:`Runtime.infer` and :meth:`Runtime.deactivate` check the state; a backend
overrides only the small ``*_impl`` hooks. Runtimes never import torch unless they are
the torch runtime, so a measurement process holds only the runtime it measures.

A backend also says how its engines are built (:meth:`Runtime.build_engine`, handed an
:class:`EngineRequest`) and which INT8 model it loads (:attr:`Runtime.int8_model`).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from edgebench.portable.errors import EngineMismatch

PRECISIONS = ("fp32", "fp16", "int8")
Status = Callable[[str], None]
"""A progress callback: each step of a long operation as one line (the CLI's spinner text)."""


def quiet(_msg: str) -> None:
    """The default :data:`Status`: say nothing."""


@dataclass(frozen=True)
class RuntimeOptions:
    """What a user chooses for one engine: precision, threads, device, batch range, per-layer profile,
    and the backend's own run options (``backend``: an instance of the runtime's ``run_options_class``)."""

    precision: str = "fp32"
    threads: int | None = None
    device: str | None = None  # runtime-specific device name; None = the runtime's default
    batches: tuple[int, ...] = (1,)  # batch sizes the engine must accept (TensorRT profiles)
    profile: bool = False  # per-layer times after the timed loop (runtime.settings.layer_profile)
    backend: Any = None

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "backend"}
        out["batches"] = list(self.batches)
        out["backend"] = self.backend.to_dict() if self.backend is not None else None
        return out

    @classmethod
    def from_dict(cls, d: dict, backend_class: type | None = None) -> RuntimeOptions:
        """Back from :meth:`to_dict`, e.g. through the measurement worker's JSON."""
        backend = d.get("backend")
        if backend is not None and backend_class is not None:
            backend = backend_class(**backend)
        return cls(**{**d, "batches": tuple(d["batches"]), "backend": backend})


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


@dataclass
class EngineRequest:
    """What an engine build gets: the FP32 ONNX, the folder to write into, the precision,
    the backend's build options, the verification inputs, and other models already made
    (``sources``: e.g. ``{"qdq": Path}`` for a TensorRT INT8 plan, ``{"fp16": Path}``), the artifact's manifest
    (``manifest``: model, weights, preprocessing; what a backend that exports from the PyTorch model rebuilds
    it from) and, for :meth:`Runtime.quantize_int8`, the preprocessed calibration images."""

    onnx: Path
    folder: Path
    precision: str
    input_shape: tuple[int, ...]  # C, H, W
    options: Any = None
    inputs: np.ndarray | None = None
    sources: dict[str, Path] = field(default_factory=dict)
    status: Status = field(default=lambda _msg: None)
    manifest: dict = field(default_factory=dict)
    calibration: np.ndarray | None = None


class MissingLibrary(ImportError):
    """A runtime's library is not installed; the message says which extra installs it."""


def lazy_import(module: str, extra: str | None, hint: str = "") -> ModuleType:
    """``module``, imported when a backend first needs it (a measurement process holds only its own runtime),
    or :class:`MissingLibrary` worded the same for every backend: what is missing, why, and the ``pip install``
    of the extra (``None``: a core dependency of edgebench) or ``hint``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        how = hint or (f"pip install 'edgebench[{extra}]'" if extra else "pip install edgebench (a core dependency)")
        raise MissingLibrary(f"{module.split('.')[0]} is not installed ({exc}); {how}") from None


@dataclass(frozen=True)
class InputMetadata:
    """What an engine's input takes, as its runtime reports it (Polygraphy's ``TensorMetadata``): the name, the
    shape (a dynamic dimension is None), the numpy dtype and the batch range a call accepts (``max`` None:
    unbounded). :meth:`Runtime.infer` and :meth:`Runtime.bind` check every feed against it, the same way for
    every backend, so a wrong batch is one line naming both shapes instead of a runtime's own exception."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str
    batch: tuple[int, int | None] = (1, None)

    def accepts(self, batch: np.ndarray) -> bool:
        lo, hi = self.batch
        return (batch.dtype == np.dtype(self.dtype) and batch.ndim == len(self.shape)
                and all(d is None or d == got for d, got in zip(self.shape[1:], batch.shape[1:]))
                and lo <= batch.shape[0] and (hi is None or batch.shape[0] <= hi))

    def refusal(self, batch: np.ndarray, where: str) -> EngineMismatch:
        """The one line that says what ``where`` takes and what it was fed instead."""
        want = " x ".join("N" if i == 0 else ("?" if d is None else str(d)) for i, d in enumerate(self.shape))
        lo, hi = self.batch
        span = f"{lo}..{hi}" if hi is not None else f"{lo} or more"
        return EngineMismatch(f"{where} takes {self.dtype} {want} (batch {span}) on input {self.name!r}, "
                              f"not {batch.dtype} {' x '.join(map(str, batch.shape))}")


class Runtime(ABC):
    """Load an engine, run numpy batches, report settings and memory, release."""

    name: ClassVar[str]  # CLI name: torch | ort | openvino | trt | executorch
    engine_kind: ClassVar[str]  # which build artifact the runtime loads
    #: Whether the engine is a build product that must match the runtime version / device
    #: it was built with (TensorRT plans); CPU runtimes load portable files.
    version_locked: ClassVar[bool] = False
    #: The INT8 model this runtime loads: ``"ort"`` (ORT's U8S8 Q/DQ ONNX), ``"openvino"`` (the NNCF IR),
    #: ``"qdq"`` (the symmetric S8 Q/DQ ONNX a TensorRT plan is built from), None (no INT8).
    int8_model: ClassVar[str | None] = None
    #: Whether export builds an engine file (torch rebuilds the model from the manifest).
    builds_engine: ClassVar[bool] = True
    run_options_class: ClassVar[type | None] = None
    #: The device an engine runs on when none is asked for (``RuntimeOptions.device`` None).
    default_device: ClassVar[str] = "cpu"
    build_options_class: ClassVar[type | None] = None
    #: How the report's figures draw this runtime: a colour and a matplotlib marker, each its own among the
    #: registered backends (ExecuTorch once had none and was drawn as ONNX Runtime's circle).
    colour: ClassVar[str]
    marker: ClassVar[str]
    #: Bumped when a backend that builds its own engines changes how (it joins the engine's content key where
    #: non-zero, so programs of an older recipe are rebuilt; the other runtimes' keys are unchanged).
    build_format: ClassVar[int] = 0
    #: The runtime's profiler op names -> the report's operator class (:data:`edgebench.portable.layer_profile.
    #: OP_CLASS_NAMES`); the report's structural rules refine conv, matmul and SE from there.
    op_classes: ClassVar[dict[str, str]] = {}

    @classmethod
    def availability(cls) -> Availability:
        """Installed? Which version? Which devices? Never raises."""
        try:
            return cls.availability_impl()
        except MissingLibrary as exc:
            return Availability(cls.name, False, None, str(exc))
        except Exception as exc:  # noqa: BLE001 - a broken install must not crash doctor or a sweep
            return Availability(cls.name, False, None, f"{type(exc).__name__}: {exc}")

    @classmethod
    @abstractmethod
    def availability_impl(cls) -> Availability:
        """Installed? Which version? Which devices?"""

    @classmethod
    def build_engine(cls, request: EngineRequest) -> dict:
        """Build the engine ``request`` asks for: ``{"files": [engine file first, ...], ...build facts}``."""
        raise NotImplementedError(f"{cls.name} builds no engines")

    @classmethod
    def default_build_options(cls, batches: tuple[int, ...]) -> object | None:
        """The build options a sweep measuring ``batches`` uses where the user gave none (None: the runtime
        has none). An engine with a batch range (a TensorRT plan's optimisation profile) must cover them."""
        return None

    @classmethod
    def engine_sources(cls, precision: str, options: object = None) -> tuple[str, ...]:
        """The models besides the FP32 ONNX an engine of ``precision`` is built from (``"fp16"``, ``"qdq"``),
        made by the build layer before :meth:`build_engine` and handed over in ``EngineRequest.sources``."""
        return ()

    @classmethod
    def quantize_int8(cls, request: EngineRequest) -> dict:
        """Quantize this backend's own INT8 model (an ``int8_model`` that is none of the shared ``ort``, ``qdq``,
        ``openvino``) from ``request.calibration``, the shared seeded split; ``request.options``: the calibration
        options (method, seed, num, max_drop). Returns ``{"files": [model first, ...], ...build facts}``."""
        raise NotImplementedError(f"{cls.name} quantizes no INT8 model of its own")

    def __init__(self, engine: Path, options: RuntimeOptions) -> None:
        self.engine = Path(engine)
        self.options = options
        self.is_active = False

    # ---------------------------------------------------------------- public, state-checked

    def activate(self) -> None:
        """Load the engine."""
        if self.is_active:
            raise RuntimeError(f"{self.name} runtime for {self.engine} is already active")
        self.activate_impl()
        self.is_active = True
        self._input = self.input_metadata_impl()

    def input_metadata(self) -> InputMetadata:
        """The loaded engine's input: name, shape with its dynamic dimensions, dtype, batch range."""
        self._check_active("input_metadata")
        return self._input

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Run one NCHW float32 batch, return the logits as a numpy array."""
        self._check_active("infer")
        self._check_feed(batch)
        return self.infer_impl(batch)

    def bind(self, batch: np.ndarray) -> Callable[[], None]:
        """A zero-argument call that runs ``batch`` once, for timed loops (inputs bound once)."""
        self._check_active("bind")
        self._check_feed(batch)
        return self.bind_impl(batch)

    def layer_profile(self, batch: np.ndarray) -> list[dict]:
        """Per-layer times of ``batch`` on separate runs after the timed loop (see :mod:`edgebench.portable.layer_profile`)."""
        self._check_active("layer_profile")
        return self.layer_profile_impl(batch)

    def deactivate(self) -> None:
        """Release the engine."""
        if self.is_active:
            self.deactivate_impl()
            self.is_active = False

    def __enter__(self) -> Runtime:
        self.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    def _check_feed(self, batch: np.ndarray) -> None:
        """Every feed against :meth:`input_metadata`, the same way for every backend (the message only when
        refused: ``infer`` runs per batch of an evaluation)."""
        if not self._input.accepts(batch):
            raise self._input.refusal(batch, f"the {self.name} engine {self.engine.name}")

    def _check_active(self, what: str) -> None:
        if not self.is_active:
            raise RuntimeError(f"{self.name}.{what}() before activate()")

    # ---------------------------------------------------------------- hooks

    @abstractmethod
    def activate_impl(self) -> None:
        """Load ``self.engine`` with ``self.options``."""

    @abstractmethod
    def input_metadata_impl(self) -> InputMetadata:
        """The loaded engine's input, as the runtime reports it."""

    @abstractmethod
    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch."""

    def bind_impl(self, batch: np.ndarray) -> Callable[[], None]:
        return lambda: self.infer_impl(batch)

    def layer_profile_impl(self, batch: np.ndarray) -> list[dict]:
        raise NotImplementedError(f"{self.name} has no per-layer profile")

    def deactivate_impl(self) -> None:
        """Release what :meth:`activate_impl` loaded."""

    @abstractmethod
    def settings(self) -> dict:
        """Settings that shape the numbers: threads, hints, providers, effective precision."""

    def effective_precision(self) -> str:
        """The precision the device really computes in (a CPU may run an FP16 request as FP32)."""
        return self.options.precision

    def device_memory(self) -> dict:
        """Accelerator memory use (MB); empty for CPU runtimes, whose memory is the process RSS."""
        return {}
