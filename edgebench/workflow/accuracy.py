"""Accuracy of a runtime's engines on the evaluation split, as one record (``eval``, ``sweep --accuracy-images``,
and ``run --accuracy``'s record)."""

from __future__ import annotations

import os
from pathlib import Path

from edgebench.backends import Status, quiet
from edgebench.bench.accuracy import evaluate_model, headline
from edgebench.build.artifacts import Artifacts
from edgebench.results.records import AccuracyRecord, model_fields
from edgebench.results.store import append_record


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
             limit: int | None = None, status: Status = quiet) -> tuple[AccuracyRecord, dict]:
    """``eval`` / ``sweep --accuracy-images``: accuracy of the engines on the evaluation split, one record."""
    summary = evaluate_model(artifacts, runtime, precision, data, threads, limit=limit, status=status)
    record = accuracy_record(artifacts, runtime, precision, threads or os.cpu_count(), summary)
    append_record(record, results)
    return record, summary
