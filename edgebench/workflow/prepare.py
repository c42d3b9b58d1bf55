"""A model source becomes artifacts: export (or import) a model and build what a runtime loads, reusing what is
current; INT8 calibrates first."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgebench.backends import Status, canonical, quiet, require, require_device, runtime_class
from edgebench.build.artifacts import Artifacts
from edgebench.portable.errors import UsageError
from edgebench.quantize.int8 import Int8Options, ensure_int8


@dataclass(frozen=True)
class ModelSource:
    """A registry model (with its weights) or a user's ONNX file."""

    model: str | None = None
    onnx: Path | None = None
    weights: str = "auto"
    weights_dir: Path | None = None

    def __post_init__(self) -> None:
        if (self.model is None) == (self.onnx is None):
            raise UsageError("give either a MODEL name or --onnx FILE")


@dataclass(frozen=True)
class BuildRequest:
    """Where and how engines are built: artifacts folder, images, opset, INT8 calibration, and each
    backend's build options (``backend``: runtime name -> options, e.g. ``{"trt": TrtBuildOptions}``)."""

    out: Path = Path("artifacts")
    data: Path | None = None
    opset: int = 17
    int8: Int8Options = Int8Options()
    backend: dict = field(default_factory=dict)


def prepare(source: ModelSource, runtimes: tuple[str, ...], precision: str, build: BuildRequest = BuildRequest(),
            status: Status = quiet) -> Artifacts:
    """Export (or import) and build engines for ``runtimes``; reuse what is current. INT8 calibrates on
    ``build.data`` first, and a runtime that builds its INT8 engine from the Q/DQ ONNX builds it after."""
    from edgebench.build.export import export_model, import_onnx  # noqa: PLC0415 - onnx (and torch to export)

    def engines(runtimes: tuple[str, ...], engine_precision: str) -> Artifacts:
        if source.onnx is not None:
            return import_onnx(source.onnx, runtimes, engine_precision, build.out, build.data, status=status,
                               build_options=build.backend)
        return export_model(source.model, runtimes, engine_precision, source.weights,
                            str(source.weights_dir) if source.weights_dir else None, build.out, build.data,
                            build.opset, status=status, build_options=build.backend)

    artifacts = engines(runtimes, "fp32" if precision == "int8" else precision)
    if precision == "int8":
        artifacts = ensure_int8(artifacts, runtimes, build.data, build.int8)
        plans = tuple(r for r in runtimes if runtime_class(r).int8_model == "qdq")
        if plans:
            artifacts = engines(plans, "int8")
    return artifacts


def require_runtime(name: str, device: str | None = None) -> str:
    """The canonical runtime name, usable here with ``device``, or RuntimeUnavailable."""
    runtime = canonical(name)
    require(runtime)
    require_device(runtime, device)
    return runtime
