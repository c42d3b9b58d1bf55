"""The records a report reads, and one flat row per measurement.

Reading: every results file is read line by line; a damaged line is skipped and counted, a
record of another schema (or one missing the fields a report needs) is set aside and counted,
and each problem is one warning line: the report is still written for the rest.

Rows: the newest latency record per (model, runtime, precision, batch, threads) (the rule of
:func:`edgebench.results.records.newest`), with its INT8 accuracy, its confidence interval and its paired speed-up where
the records carry them, plain medians where they don't. Field names read when present (the gate's):

* ``latency_ms.p50_ci95`` (or ``latency_ms.ci95``): ``[lo, hi]``, 95% CI of the median (ms);
* ``samples_ms``: the per-iteration times (ms), ``{"encoding": "float32-le-base64", "data": ...}`` or a list;
* ``memory.engine_mb``: the engine's own memory, load + run (``engine_memory_mb``; ``peak_rss_mb`` is the
  whole measuring process's peak, ``import_mb`` the runtime's import floor);
* ``build_seconds``, ``load_seconds``, ``first_inference_ms``: the cold start (``build_s``, ``load_s``,
  ``first_inference_ms``);
* a ``kind: "speedup"`` record (same model, runtime, batch, threads): ``speedup`` (FP32 p50 / INT8 p50 from
  interleaved rounds) and ``ci95`` ``[lo, hi]``; or a ``speedup: {"ratio", "ci95"}`` on the INT8 latency record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgebench.portable.envelope import SCHEMA
from edgebench.portable.errors import UsageError
from edgebench.results.records import newest
from edgebench.results.store import read_records
from edgebench.results.zoo_table import FAMILY_ORDER, PRECISION_ORDER, latest_latency

REQUIRED = {"latency": ("model", "runtime", "precision", "batch", "status", "timestamp"),
            "accuracy": ("model", "runtime", "precision", "timestamp", "headline"),
            "peak": ("runtime", "precision", "gmacs_per_s", "timestamp")}


@dataclass
class Loaded:
    """Records read from results files, with what was set aside and why."""

    files: list[str] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)
    damaged: dict[str, int] = field(default_factory=dict)
    older: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _usable(record: dict) -> bool:
    need = REQUIRED.get(record.get("kind", ""))
    if need is None:
        return True  # other kinds (crosscheck, ...) are kept and ignored by the figures
    if any(k not in record for k in need):
        return False
    if record["kind"] in ("latency", "accuracy"):
        if not isinstance(record["model"], dict) or "name" not in record["model"] or "name" not in record["runtime"]:
            return False
        if record["kind"] == "latency" and record["status"] == "ok":
            return all(k in (record.get("latency_ms") or {}) for k in ("p50", "p90", "p99"))
    return True


def load(paths: list[Path], extra: list[dict] | None = None) -> Loaded:
    """Read every file of ``paths`` (and ``extra`` records, e.g. from the history DB)."""
    found = Loaded()
    for path in paths:
        path = Path(path)
        found.files.append(str(path))
        if not path.is_file():
            found.warnings.append(f"{path}: no such results file")
            continue
        try:
            read = read_records(path)  # the one tolerant reader (damaged and schema-failing lines skipped)
        except UsageError as exc:
            found.warnings.append(str(exc))
            continue
        damaged, older, kept = read.skipped_count, 0, 0
        for record in read.records:
            if record.get("schema") != SCHEMA or not _usable(record):
                older += 1
            else:
                found.records.append(record)
                kept += 1
        if damaged:
            found.damaged[str(path)] = damaged
            found.warnings.append(read.warning(path))
        if older:
            found.older[str(path)] = older
            found.warnings.append(f"{path}: {older} record(s) of an older or unknown schema (not {SCHEMA}) skipped")
        if not kept and not damaged and not older:
            found.warnings.append(f"{path}: empty results file")
    found.records += extra or []
    return found


# ---------------------------------------------------------------- fields read when present

def p50_ci(record: dict) -> tuple[float, float] | None:
    lat = record.get("latency_ms") or {}
    ci = lat.get("p50_ci95") or lat.get("ci95")
    ok = isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(v, (int, float)) for v in ci)
    return (float(ci[0]), float(ci[1])) if ok else None


SAMPLES_ENCODING = "float32-le-base64"


def samples(record: dict) -> list[float] | None:
    """The stored per-iteration times (ms), decoded; None without them."""
    found = record.get("samples_ms") or (record.get("latency_ms") or {}).get("samples")
    if isinstance(found, dict) and found.get("encoding") == SAMPLES_ENCODING and found.get("data"):
        import base64

        import numpy as np
        return np.frombuffer(base64.b64decode(found["data"]), dtype="<f4").astype(float).tolist()
    return [float(x) for x in found] if isinstance(found, list) and found else None


def _speedup_field(value: object, ci: object = None) -> dict | None:
    """``{"ratio", "ci95", "paired"}`` from a ``speedup`` record (a number and ``ci95``) or a dict field."""
    if isinstance(value, dict):
        value, ci = value.get("ratio"), value.get("ci95")
    if not isinstance(value, (int, float)):
        return None
    good = isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(v, (int, float)) for v in ci)
    return {"ratio": float(value), "ci95": (float(ci[0]), float(ci[1])) if good else None, "paired": True}


def speedups(records: list[dict], batch: int = 1, threads: int | None = None) -> dict[tuple, dict]:
    """INT8 speed-up over FP32 per (model, runtime): the paired ratio and CI where recorded, else
    the ratio of the newest medians (``paired: False``, no CI)."""
    latest = latest_latency(records, batch, threads)
    paired = newest(records, lambda r: (r["model"]["name"], r["runtime"]["name"]),
                    lambda r: r.get("kind") == "speedup" and r.get("batch", batch) == batch
                    and (threads is None or r.get("threads") == threads))
    found = {}
    for (model, runtime, device, precision, thr), record in latest.items():
        if precision != "int8" or record["status"] != "ok":
            continue
        pair = paired.get((model, runtime)) or {}
        given = _speedup_field(record.get("speedup")) or _speedup_field(pair.get("speedup"), pair.get("ci95"))
        fp32 = latest.get((model, runtime, device, "fp32", thr))
        if given:
            found[(model, runtime)] = given
        elif fp32 and fp32["status"] == "ok":
            found[(model, runtime)] = {"ratio": fp32["latency_ms"]["p50"] / record["latency_ms"]["p50"],
                                       "ci95": None, "paired": False}
    return found


# ---------------------------------------------------------------- one row per measurement

COLUMNS = ("model", "family", "runtime", "runtime_version", "precision", "batch", "threads", "status",
           "params_m", "gmacs", "p50_ms", "p90_ms", "p99_ms", "p50_ci95_lo_ms", "p50_ci95_hi_ms", "engine_memory_mb",
           "engine_memory_file_mb", "peak_rss_mb", "import_mb", "engine_mb", "build_s", "load_s", "first_inference_ms",
           "weights", "top1", "drop_points", "drop_se_points", "agreement", "int8_speedup",
           "int8_speedup_ci95_lo", "int8_speedup_ci95_hi", "stability", "error", "host", "timestamp", "record_id")


def engine_memory(record: dict) -> float | None:
    """The engine's own memory (MB): the rise of the process peak while loading and running it, past the
    runtime's import (``memory.engine_mb``); None for a record made before it was measured."""
    own = record.get("memory")
    return own.get("engine_mb") if isinstance(own, dict) else None


def _file_backed(own: dict) -> float | None:
    """The file-backed (mmapped, shareable) part of the engine's memory: load + run ``_file_mb``."""
    parts = [own.get(f"{p}_file_mb") for p in ("load", "run")]
    return round(sum(parts), 1) if all(isinstance(v, (int, float)) for v in parts) else None


def measurement_rows(records: list[dict]) -> list[dict]:
    """One row per (model, runtime, precision, batch, threads): the newest latency record, its INT8
    accuracy (same model, runtime, threads) and speed-up; columns :data:`COLUMNS`."""
    latest = newest(records, lambda r: (r["model"]["name"], r["runtime"]["name"], r["precision"], r["batch"],
                                        r.get("threads")),
                    lambda r: r.get("kind") == "latency")
    quality = newest(records, lambda r: (r["model"]["name"], r["runtime"]["name"], r.get("threads")),
                     lambda r: r.get("kind") == "accuracy" and r.get("precision") == "int8" and r.get("status") == "ok")
    speed: dict[tuple, dict] = {}
    for batch, threads in {(k[3], k[4]) for k in latest}:
        for (model, runtime), value in speedups(records, batch, threads).items():
            speed[(model, runtime, batch, threads)] = value
    rows = []
    for (model, runtime, precision, batch, threads), r in latest.items():
        lat, head = r.get("latency_ms") or {}, (quality.get((model, runtime, threads)) or {}).get("headline") or {}
        ci = p50_ci(r)
        sp = speed.get((model, runtime, batch, threads)) if precision == "int8" else None
        host = r.get("host") or {}
        weights = r.get("weights") or {}
        own = r.get("memory") if isinstance(r.get("memory"), dict) else {}
        rows.append({
            "model": model, "family": r["model"].get("family"), "runtime": runtime,
            "runtime_version": r["runtime"].get("version"), "precision": precision, "batch": batch,
            "threads": threads, "status": r["status"],
            "params_m": round(r["model"]["params"] / 1e6, 3) if r["model"].get("params") else None,
            "gmacs": r["model"].get("gmacs"), "p50_ms": lat.get("p50"), "p90_ms": lat.get("p90"),
            "p99_ms": lat.get("p99"), "p50_ci95_lo_ms": ci[0] if ci else None, "p50_ci95_hi_ms": ci[1] if ci else None,
            "engine_memory_mb": own.get("engine_mb"), "engine_memory_file_mb": _file_backed(own),
            "peak_rss_mb": (r.get("memory_mb") or {}).get("peak"), "import_mb": own.get("import_mb"),
            "engine_mb": round(r["engine"]["bytes"] / 1e6, 2) if (r.get("engine") or {}).get("bytes") else None,
            "build_s": r.get("build_seconds"), "load_s": r.get("load_seconds"),
            "first_inference_ms": r.get("first_inference_ms"),
            "weights": weights.get("source"),
            "top1": head.get("top1" if precision == "int8" else "fp32_top1"),
            "drop_points": head.get("drop_points") if precision == "int8" else None,
            "drop_se_points": head.get("drop_se_points") if precision == "int8" else None,
            "agreement": head.get("agreement") if precision == "int8" else None,
            "int8_speedup": sp["ratio"] if sp else None,
            "int8_speedup_ci95_lo": sp["ci95"][0] if sp and sp["ci95"] else None,
            "int8_speedup_ci95_hi": sp["ci95"][1] if sp and sp["ci95"] else None,
            "stability": (r.get("stability") or {}).get("verdict"), "error": r.get("error"),
            "host": f"{host.get('hostname', '?')}: {host.get('cpu', '?')} x{host.get('cpu_count', '?')}",
            "cpu": host.get("cpu"),  # not a CSV column: what the peak records are matched on
            "timestamp": r["timestamp"], "record_id": r.get("id"),
        })
    return sorted(rows, key=lambda x: (FAMILY_ORDER.index(x["family"]) if x["family"] in FAMILY_ORDER else 99,
                                       x["gmacs"] or 0, x["model"], x["runtime"],
                                       PRECISION_ORDER.index(x["precision"]) if x["precision"] in PRECISION_ORDER
                                       else 9, x["batch"], x["threads"] or 0))
