"""The workflow: model source -> artifacts -> engines -> measurements -> records, for every front end.

``prepare`` exports (or imports) a model and builds what a runtime loads; ``measure``
takes one guarded measurement per batch size; ``measure_with_accuracy`` adds accuracy on
the evaluation split and the INT8 speed-up; ``sweep`` runs many models x runtimes x
precisions, turning each failure into a failed record with the precise reason. The CLI
(and anything else) calls these; nothing here imports the CLI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edgebench.backends import RuntimeOptions, Status, canonical, require, require_device, runtime_class
from edgebench.bench.accuracy import evaluate_model, headline
from edgebench.bench.paired import speedup as paired_speedup
from edgebench.bench.runner import Guard, benchmark
from edgebench.build.artifacts import Artifacts
from edgebench.models import get_spec
from edgebench.portable.errors import EdgebenchError, UsageError, one_line
from edgebench.portable.protocol import Protocol
from edgebench.quantize.int8 import Int8Options, accuracy_control, ensure_int8
from edgebench.results.records import AccuracyRecord, LatencyRecord, SpeedupRecord, model_fields
from edgebench.results.store import ResultsNotSaved, append_record

EVERY_LAYER = "int8-every-layer"


def _quiet(_msg: str) -> None:
    pass


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


@dataclass(frozen=True)
class MeasureRequest:
    """One runtime and precision at each batch size, with the protocol and where records go."""

    runtime: str
    precision: str = "fp32"
    batches: tuple[int, ...] = (1,)
    threads: int | None = None
    device: str | None = None
    profile: bool = False
    protocol: Protocol = Protocol()
    guard: Guard = Guard()
    backend: object = None  # the backend's run options (TensorRT: TrtRunOptions)
    results: Path = Path("results/results.jsonl")

    def options(self, batch: int, precision: str | None = None) -> RuntimeOptions:
        return RuntimeOptions(precision=precision or self.precision, threads=self.threads or os.cpu_count(),
                              device=self.device, batches=(batch,), profile=self.profile, backend=self.backend)


def prepare(source: ModelSource, runtimes: tuple[str, ...], precision: str, build: BuildRequest = BuildRequest(),
            status: Status = _quiet) -> Artifacts:
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


def measure(artifacts: Artifacts, request: MeasureRequest, status: Status = _quiet) -> list[dict]:
    """One guarded measurement per batch size; each record is appended as soon as it exists."""
    records = []
    for batch in request.batches:
        status(f"measuring {artifacts.manifest['model']['name']} on {request.runtime} {request.precision}, "
               f"batch {batch}")
        record = benchmark(artifacts, request.runtime, request.options(batch), request.protocol, request.guard)
        append_record(record, request.results)  # saved before the next measurement starts
        records.append(record)
    return records


def accuracy_record(artifacts: Artifacts, runtime: str, precision: str, threads: int, summary: dict,
                    /, **extra) -> AccuracyRecord:
    """An accuracy record: the summary, the headline figures and (int8) the calibration; ``extra`` adds
    ``run --accuracy``'s latencies (a ``runtime`` or ``status`` there overrides the default)."""
    int8 = artifacts.manifest.get("int8", {}) if precision == "int8" else {}
    return AccuracyRecord(
        model=model_fields(artifacts.manifest), weights=artifacts.manifest.get("weights"),
        runtime=extra.pop("runtime", {"name": runtime}), status=extra.pop("status", "ok"), precision=precision,
        threads=threads, accuracy=summary, headline=headline(summary, runtime, precision),
        int8=int8.get("calibration"), calibration_seconds=(int8.get("seconds") or {}).get(runtime),
        int8_recipe=artifacts.int8_recipe(runtime) if int8 else None,
        extra=extra)


def evaluate(artifacts: Artifacts, runtime: str, precision: str, data: Path, threads: int | None, results: Path,
             limit: int | None = None, status: Status = _quiet) -> tuple[AccuracyRecord, dict]:
    """``eval`` / ``sweep --accuracy-images``: accuracy of the engines on the evaluation split, one record."""
    summary = evaluate_model(artifacts, runtime, precision, data, threads, limit=limit, status=status)
    record = accuracy_record(artifacts, runtime, precision, threads or os.cpu_count(), summary)
    append_record(record, results)
    return record, summary


def speedup_ratio(latency: dict, slow: str, fast: str) -> float | None:
    """p50 of ``slow`` over p50 of ``fast`` (a speed-up), when both were measured."""
    a, b = ((latency.get(k) or {}).get("latency_ms") or {} for k in (slow, fast))
    return round(a["p50"] / b["p50"], 3) if a.get("p50") and b.get("p50") else None


def measure_with_accuracy(artifacts: Artifacts, request: MeasureRequest, data: Path,
                          status: Status = _quiet) -> tuple[AccuracyRecord, dict, dict]:
    """``run --accuracy`` / ``run --precision int8 --data``: FP32 (and INT8) latency and accuracy on the
    evaluation split in one record, with the drop ± SE, agreement and the INT8 speed-up. When --max-drop kept
    layers in float, the every-layer INT8 engine is measured too: the fallback's cost.
    Returns (record, accuracy summary, latency by "precision/bBATCH")."""
    runtime, precision, batches = request.runtime, request.precision, request.batches
    threads = request.threads or os.cpu_count()
    engine_build = (artifacts.engine_entry(runtime, "int8") or {}).get("build") if precision == "int8" else None
    every_layer = (engine_build or {}).get("every_layer_int8_file")
    engines: dict[str, Path | None] = {p: None for p in (["fp32", precision] if precision != "fp32" else ["fp32"])}
    if every_layer and artifacts.file_intact(every_layer):
        engines[EVERY_LAYER] = artifacts.path(every_layer)
    latency: dict[str, dict] = {}
    for batch in batches:
        for p, engine in engines.items():
            status(f"measuring {artifacts.manifest['model']['name']} on {runtime} {p}, batch {batch}")
            rec = benchmark(artifacts, runtime, request.options(batch, "int8" if engine else p), request.protocol,
                            request.guard, engine)
            latency[f"{p}/b{batch}"] = {k: rec.get(k) for k in ("status", "error", "latency_ms", "memory_mb",
                                                                "memory", "effective_precision", "stability",
                                                                "engine", "build_seconds", "load_seconds",
                                                                "first_inference_ms", "batch", "runtime")}
    summary = evaluate_model(artifacts, runtime, precision, data, threads, status=status)
    paired = {}
    if precision != "fp32" and all(v["status"] == "ok" for v in latency.values()):
        for b in batches:  # the speed-up from interleaved ABBA rounds in one job, with its CI
            status(f"interleaved fp32/{precision} rounds, batch {b}")
            paired[f"b{b}"] = paired_speedup(artifacts, runtime, b, threads, fast=precision)
    speedup = {f"b{b}": paired[f"b{b}"]["speedup"] if f"b{b}" in paired
               else speedup_ratio(latency, f"fp32/b{b}", f"{precision}/b{b}") for b in batches} \
        if precision != "fp32" else {}
    fallback = None
    if EVERY_LAYER in engines:
        fallback = {"restored_to_float": accuracy_control(engine_build).get("restored_to_float"),
                    "latency_cost_p50": {f"b{b}": speedup_ratio(latency, f"int8/b{b}", f"{EVERY_LAYER}/b{b}") for b in batches},
                    "every_layer_speedup_vs_fp32_p50": {f"b{b}": speedup_ratio(latency, f"fp32/b{b}", f"{EVERY_LAYER}/b{b}")
                                                        for b in batches}}
    ok = all(v["status"] == "ok" for v in latency.values())
    record = accuracy_record(artifacts, runtime, precision, threads, summary,
                             runtime={"name": runtime, "device": request.device}, batches=list(batches),
                             latency=latency, speedup_vs_fp32_p50=speedup or None, speedup_paired=paired or None,
                             int8_engine=engine_build,
                             int8_fallback=fallback, protocol=request.protocol.to_dict(),
                             status="ok" if ok else "failed")
    append_record(record, request.results)
    return record, summary, latency


@dataclass(frozen=True)
class SweepRequest:
    """Many registry models x runtimes x precisions with one protocol; ``accuracy_images``: with int8 and
    ``build.data``, also compare INT8 with FP32 on the first N evaluation images."""

    models: tuple[str, ...]
    runtimes: tuple[str, ...]
    precisions: tuple[str, ...]
    batches: tuple[int, ...] = (1,)
    threads: int | None = None
    accuracy_images: int = 0
    weights: str = "auto"
    weights_dir: Path | None = None
    protocol: Protocol = Protocol()
    guard: Guard = Guard()
    build: BuildRequest = BuildRequest()
    results: Path = Path("results/results.jsonl")
    profile: bool = False  # per-layer times in each record (not for torch)


def sweep(request: SweepRequest, status: Status = _quiet) -> Iterator[tuple[str, str, str, EdgebenchError | None]]:
    """Measure every combination; a model that cannot go through a runtime gets a failed record with the
    precise reason, and the sweep goes on. Yields (model, runtime, precision, error or None) as each ends."""
    from edgebench.models.catalog import complexity_of  # noqa: PLC0415 - torch: only the skipped models' sizes

    runtimes = tuple(canonical(r) for r in request.runtimes)
    threads = request.threads or os.cpu_count()
    for name in request.models:
        spec = get_spec(name)
        for runtime in runtimes:
            for precision in request.precisions:
                error = None
                try:
                    if runtime in spec.unsupported:
                        raise UsageError(f"{spec.name} cannot run on {runtime}: {spec.unsupported[runtime]}")
                    backend = {**request.build.backend}
                    default = runtime_class(runtime).default_build_options(request.batches)
                    if default is not None:
                        backend.setdefault(runtime, default)
                    build = BuildRequest(request.build.out, request.build.data, request.build.opset,
                                         request.build.int8, backend)
                    artifacts = prepare(ModelSource(spec.name, None, request.weights, request.weights_dir),
                                        (runtime,), precision, build, status)
                    measure(artifacts, MeasureRequest(runtime, precision, request.batches, threads,
                                                      profile=request.profile and runtime != "torch",
                                                      protocol=request.protocol, guard=request.guard,
                                                      results=request.results), status)
                    if precision == "int8" and request.accuracy_images and request.build.data is not None:
                        evaluate(artifacts, runtime, "int8", request.build.data, threads, request.results,
                                 limit=request.accuracy_images)
                    if precision == "int8" and "fp32" in request.precisions:
                        paired_speedups(artifacts, runtime, request.batches, threads, request.results, status)
                except ResultsNotSaved:  # the results file cannot take records: nothing more can be kept
                    raise
                except Exception as exc:  # noqa: BLE001 - one model's failure must not stop the sweep
                    error = exc if isinstance(exc, EdgebenchError) else \
                        EdgebenchError(one_line(exc, with_type=True))
                    found = complexity_of(spec)
                    model = {"name": spec.name, "family": spec.family, "params": found.params,
                             "gmacs": round(found.gmacs, 4)}
                    for batch in request.batches:
                        append_record(LatencyRecord.failed(str(error), model=model, runtime={"name": runtime},
                                                           precision=precision, batch=batch, threads=threads),
                                      request.results)
                yield spec.name, runtime, precision, error


def paired_speedups(artifacts: Artifacts, runtime: str, batches: tuple[int, ...], threads: int, results: Path,
                    status: Status = _quiet) -> list[dict]:
    """``sweep`` with fp32 and int8: the paired, interleaved INT8 speed-up (with its CI), a speedup record per batch."""
    records = []
    for b in batches:
        status(f"interleaved fp32/int8 rounds of {artifacts.manifest['model']['name']} on {runtime}, batch {b}")
        record = SpeedupRecord(model=model_fields(artifacts.manifest), weights=artifacts.manifest.get("weights"),
                               runtime={"name": runtime}, batch=b, threads=threads,
                               extra=paired_speedup(artifacts, runtime, b, threads)).to_dict()
        append_record(record, results)
        records.append(record)
    return records


def require_runtime(name: str, device: str | None = None) -> str:
    """The canonical runtime name, usable here with ``device``, or RuntimeUnavailable."""
    runtime = canonical(name)
    require(runtime)
    require_device(runtime, device)
    return runtime
