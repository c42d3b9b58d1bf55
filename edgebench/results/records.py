"""Typed result records: one class per kind, each ``to_dict``/``from_dict`` over the JSON-lines form.

Every record starts from the portable envelope (:func:`edgebench.portable.envelope.envelope`:
schema, id, kind, timestamp, host, edgebench), so the library and the device runner
write the same keys. ``newest`` is the one definition of "the newest record".
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from edgebench.backends import runtime_class
from edgebench.portable.envelope import SCHEMA, envelope
from edgebench.portable.errors import EdgebenchError


@dataclass
class Record:
    """What every record has: identity and provenance (the envelope), the model, and a status."""

    kind: ClassVar[str]
    model: dict
    status: str = "ok"
    error: str | None = None
    weights: dict | None = None
    envelope: dict = field(default_factory=dict)  # schema, id, kind, timestamp, host, edgebench

    def __post_init__(self) -> None:
        if not self.envelope:
            self.envelope = envelope(self.kind)

    def to_dict(self) -> dict:
        """The JSON-lines form: the envelope, the fields, and a subclass's ``extra`` keys at the top level."""
        body = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "envelope"}
        body.update(body.pop("extra", None) or {})
        return {**self.envelope, **body}

    @classmethod
    def from_dict(cls, d: dict) -> Record:
        """The typed record of ``d`` (its ``kind`` picks the class); unknown keys are kept in ``extra``
        where the class has one."""
        klass = KINDS.get(d.get("kind"), cls) if cls is Record else cls
        names = {f.name for f in fields(klass)}
        head = {k: d[k] for k in ("schema", "id", "kind", "timestamp", "host", "edgebench") if k in d}
        known = {k: v for k, v in d.items() if k in names and k != "envelope"}
        record = klass(**known, envelope=head)
        if "extra" in names:
            record.extra.update({k: v for k, v in d.items() if k not in names and k not in head})
        return record


@dataclass
class LatencyRecord(Record):
    """One engine at one batch size: latency, memory, what ran and how stable the machine was."""

    kind: ClassVar[str] = "latency"
    runtime: dict = field(default_factory=dict)
    precision: str = "fp32"
    batch: int = 1
    threads: int | None = None
    effective_precision: str | None = None
    #: the INT8 model's recipe and why (edgebench.quantize.recipes); a backend's own recipe is one line (ExecuTorch)
    int8_recipe: dict | str | None = None
    latency_ms: dict | None = None
    loop: dict | None = None
    #: cold start, what an application pays on every launch: the engine's build (from its manifest entry; once
    #: per engine), its load/compile (``load_seconds``) and the first inference (``first_inference_ms``)
    build_seconds: float | None = None
    first_inference_ms: float | None = None
    load_seconds: float | None = None
    #: the whole measuring process's peak RSS after the runtime's import, the load and the run (MB)
    memory_mb: dict | None = None
    #: the engine's own memory (edgebench.portable.memory.EngineMemory): import_mb (the floor), load_mb and
    #: run_mb (rises of the peak after a reset), each split into _anon_mb / _file_mb, engine_mb = load + run,
    #: process_peak_mb, method; engine_files_mb (on disk). Older records have none.
    memory: dict | None = None
    device_memory_mb: dict | None = None
    engine: dict | None = None
    onnx_bytes: int | None = None
    protocol: dict | None = None
    stability: dict | None = None
    samples_ms: dict | None = None  # the per-iteration times, bounded (edgebench.bench.samples)
    rounds: list[dict] | None = None  # with --rounds K: each round's summary
    extra: dict = field(default_factory=dict)  # e.g. ``deploy`` from a device run


    @classmethod
    def failed(cls, error: str, *, model: dict, runtime: dict, precision: str, batch: int,
               threads: int | None, weights: dict | None = None) -> LatencyRecord:
        """A measurement that could not be taken, with the precise reason."""
        return cls(model=model, status="failed", error=error, weights=weights, runtime=runtime, precision=precision,
                   batch=batch, threads=threads, stability={"verdict": "not measured"})


@dataclass
class AccuracyRecord(Record):
    """Accuracy on the evaluation split (FP32 and INT8, paired), and with ``run --accuracy`` the latencies."""

    kind: ClassVar[str] = "accuracy"
    runtime: dict = field(default_factory=dict)
    precision: str = "fp32"
    threads: int | None = None
    accuracy: dict = field(default_factory=dict)
    headline: dict = field(default_factory=dict)
    int8: dict | None = None
    calibration_seconds: float | None = None
    #: the INT8 model's recipe and why (edgebench.quantize.recipes); a backend's own recipe is one line (ExecuTorch)
    int8_recipe: dict | str | None = None
    extra: dict = field(default_factory=dict)  # run --accuracy: batches, latency, speed-up, INT8 build, fallback


@dataclass
class CrosscheckRecord(Record):
    """edgebench's OpenVINO median against ``benchmark_app`` on the same IR, alternating rounds."""

    kind: ClassVar[str] = "crosscheck"
    runtime: dict = field(default_factory=dict)
    precision: str = "fp32"
    batch: int = 1
    edgebench_p50_ms: list[float] = field(default_factory=list)
    benchmark_app_median_ms: list[float] = field(default_factory=list)
    benchmark_app: list[dict] = field(default_factory=list)
    ratio_per_round: list[float] = field(default_factory=list)
    ratio: float | None = None


@dataclass
class RunRecord(Record):
    """A record about one runtime at one precision, batch and thread count, whose figures are its ``extra``."""

    runtime: dict = field(default_factory=dict)
    precision: str = "fp32"
    batch: int = 1
    threads: int | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class SpeedupRecord(RunRecord):
    """The INT8/FP32 speed-up from FP32 and INT8 rounds interleaved (ABBA) in one job, with its CI
    (``extra``: speedup, ci95, rounds, ... from edgebench.bench.paired.speedup)."""

    kind: ClassVar[str] = "speedup"
    precision: str = "int8"


@dataclass
class GateRecord(RunRecord):
    """One ``edgebench gate`` decision: what was compared, every metric with its ratio, CI and verdict
    (``extra``: mode, sources, metrics, verdict, rounds, noise, ...)."""

    kind: ClassVar[str] = "gate"


@dataclass
class PeakRecord(RunRecord):
    """This machine's measured GEMM peak (FP32 or INT8), the attained-compute figure's denominator
    (``extra``: gemm, gmacs_per_s, best_gmacs_per_s, latency_ms, stability)."""

    kind: ClassVar[str] = "peak"


KINDS: dict[Any, type[Record]] = {k.kind: k for k in (LatencyRecord, AccuracyRecord, CrosscheckRecord, SpeedupRecord,
                                                       GateRecord, PeakRecord)}


def newest(records: Iterable[dict], key: Callable[[dict], Hashable],
           keep: Callable[[dict], bool] = lambda _r: True) -> dict[Hashable, dict]:
    """The newest record for each ``key(record)`` among those ``keep`` accepts: the latest timestamp wins,
    and of equal timestamps the later line in the file."""
    found: dict[Hashable, dict] = {}
    for record in records:
        if keep(record):
            k = key(record)
            if k not in found or str(record.get("timestamp", "")) >= str(found[k].get("timestamp", "")):
                found[k] = record
    return found


def latest_peaks(records: Iterable[dict]) -> dict[Hashable, dict]:
    """Newest ``peak`` record per (host cpu, threads, precision)."""
    return newest(records, lambda r: ((r.get("host") or {}).get("cpu"), r.get("threads"), r["precision"]),
                  lambda r: r.get("kind") == "peak" and r.get("status") == "ok")


def device_of(record: dict) -> str:
    """The device a record was (or was to be) measured on, lower-case: a fleet place's device fingerprint
    (``place@fingerprint``), else the runtime's device; one that names none ran on its runtime's default device."""
    fleet = record.get("device")
    if isinstance(fleet, dict) and fleet.get("fingerprint"):
        return f"{record.get('place') or 'device'}@{fleet['fingerprint']}".lower()
    runtime = record.get("runtime") or {}
    device = runtime.get("device") or (runtime.get("settings") or {}).get("device")
    if not device:
        try:
            device = runtime_class(str(runtime.get("name"))).default_device
        except EdgebenchError:  # a runtime this version does not know
            device = ""
    return str(device).lower()


def measurement_key(record: dict) -> tuple:
    """What the newest record is chosen per: kind, model, runtime, device, precision, batch and threads, the
    settings that change the number. A failed attempt on another device never replaces a good number."""
    return (record.get("kind"), record["model"]["name"], (record.get("runtime") or {}).get("name"), device_of(record),
            record.get("precision"), record.get("batch"), record.get("threads"))


def model_fields(manifest: dict) -> dict:
    """The ``model`` part of a record, from an artifact manifest."""
    return {"name": manifest["model"]["name"], "family": manifest["model"]["family"], **manifest.get("complexity", {})}


__all__ = ["SCHEMA", "AccuracyRecord", "CrosscheckRecord", "GateRecord", "LatencyRecord", "PeakRecord", "Record",
           "SpeedupRecord",
           "device_of", "measurement_key",
           "model_fields", "newest"]
