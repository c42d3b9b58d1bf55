"""Engines become measurements and records: one guarded measurement per batch size, ``run --accuracy``'s FP32
and INT8 latency with accuracy and the paired speed-up, and the paired speed-up records of a sweep."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edgebench.backends import RuntimeOptions, Status, quiet
from edgebench.bench.accuracy import evaluate_model
from edgebench.bench.guarded import Guard, benchmark
from edgebench.bench.paired import PairedSettings
from edgebench.bench.paired import speedup as paired_speedup
from edgebench.build.artifacts import Artifacts
from edgebench.portable.protocol import Protocol
from edgebench.quantize.int8 import accuracy_control
from edgebench.results.records import AccuracyRecord, SpeedupRecord, model_fields
from edgebench.results.store import append_record
from edgebench.workflow.accuracy import accuracy_record

EVERY_LAYER = "int8-every-layer"


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


def measure(artifacts: Artifacts, request: MeasureRequest, status: Status = quiet) -> list[dict]:
    """One guarded measurement per batch size; each record is appended as soon as it exists."""
    records = []
    for batch in request.batches:
        status(f"measuring {artifacts.manifest['model']['name']} on {request.runtime} {request.precision}, "
               f"batch {batch}")
        record = benchmark(artifacts, request.runtime, request.options(batch), request.protocol, request.guard)
        append_record(record, request.results)  # saved before the next measurement starts
        records.append(record)
    return records


def speedup_ratio(latency: dict, slow: str, fast: str) -> float | None:
    """p50 of ``slow`` over p50 of ``fast`` (a speed-up), when both were measured."""
    a, b = ((latency.get(k) or {}).get("latency_ms") or {} for k in (slow, fast))
    return round(a["p50"] / b["p50"], 3) if a.get("p50") and b.get("p50") else None


def measure_with_accuracy(artifacts: Artifacts, request: MeasureRequest, data: Path,
                          status: Status = quiet) -> tuple[AccuracyRecord, dict, dict]:
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
            paired[f"b{b}"] = paired_speedup(artifacts, runtime, b, threads, fast=precision,
                                             settings=PairedSettings.from_protocol(request.protocol))
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


def paired_speedups(artifacts: Artifacts, runtime: str, batches: tuple[int, ...], threads: int, results: Path,
                    protocol: Protocol = Protocol(), status: Status = quiet) -> list[dict]:
    """``sweep`` with fp32 and int8: the paired, interleaved INT8 speed-up (with its CI), a speedup record per batch;
    each round follows ``protocol``."""
    records = []
    for b in batches:
        status(f"interleaved fp32/int8 rounds of {artifacts.manifest['model']['name']} on {runtime}, batch {b}")
        record = SpeedupRecord(model=model_fields(artifacts.manifest), weights=artifacts.manifest.get("weights"),
                               runtime={"name": runtime}, batch=b, threads=threads,
                               extra=paired_speedup(artifacts, runtime, b, threads,
                                                    settings=PairedSettings.from_protocol(protocol))).to_dict()
        append_record(record, results)
        records.append(record)
    return records
