"""Cross-check edgebench's OpenVINO latency with OpenVINO's own ``benchmark_app``.

Both measure the same IR, same batch, LATENCY hint and FP32 inference precision,
alternating round by round so that a slow phase of the machine hits both alike.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from edgebench.backends import RuntimeOptions
from edgebench.bench.guarded import Guard, benchmark
from edgebench.build.artifacts import Artifacts
from edgebench.portable.errors import RuntimeUnavailable, UsageError
from edgebench.portable.protocol import Protocol
from edgebench.results.records import CrosscheckRecord
from edgebench.results.store import append_record

#: benchmark_app writes a latency under a millisecond in microseconds ("Median: 26.87 us", a tiny model).
_FIELDS = {name: re.compile(rf"^\[ INFO \]\s+{name}:\s+([\d.]+) (ms|us)", re.MULTILINE)
           for name in ("Median", "Average", "Min", "Max")}
_TO_MS = {"ms": 1.0, "us": 1e-3}
_COUNT = re.compile(r"Count:\s+(\d+) iterations")


def benchmark_app_path() -> str:
    found = Path(sys.executable).parent / "benchmark_app"
    if found.is_file():
        return str(found)
    which = shutil.which("benchmark_app")
    if not which:
        raise RuntimeUnavailable("benchmark_app not found (it ships with the openvino package)")
    return which


def run_benchmark_app(xml: Path, shape: list[int], seconds: float) -> dict:
    """``benchmark_app -hint latency`` on ``xml`` at a static ``shape``; its latency figures in ms."""
    cmd = [benchmark_app_path(), "-m", str(xml), "-d", "CPU", "-hint", "latency", "-infer_precision", "f32",
           "-shape", "[" + ",".join(str(d) for d in shape) + "]", "-t", str(int(max(seconds, 1)))]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 4 + 120)
    figures: dict = {"command": cmd}
    for name, pattern in _FIELDS.items():
        match = pattern.search(proc.stdout)
        figures[name.lower()] = float(match.group(1)) * _TO_MS[match.group(2)] if match else None
    count = _COUNT.search(proc.stdout)
    figures["iterations"] = int(count.group(1)) if count else None
    if figures["median"] is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeUnavailable(f"benchmark_app failed: {tail[0][:300]}")
    return figures


def crosscheck_openvino(artifacts: Artifacts, rounds: int, seconds: float, batch: int, results: Path,
                        status: Callable[[str], None] = lambda _msg: None) -> dict:
    """edgebench's OpenVINO median against ``benchmark_app -hint latency`` on the same IR, alternating
    rounds in one session; one crosscheck record (appended to ``results``)."""
    xml = artifacts.engine_path("openvino", "fp32")
    shape = [batch, *artifacts.manifest["input"]["shape"][1:]]
    options = RuntimeOptions(precision="fp32", threads=os.cpu_count(), batches=(batch,))
    protocol = Protocol(10, 1.0, 100, seconds)
    ours, theirs = [], []
    for i in range(rounds):
        status(f"round {i + 1}/{rounds}: edgebench")
        record = benchmark(artifacts, "openvino", options, protocol, Guard(retries=0))
        if record["status"] != "ok":
            raise UsageError(f"edgebench measurement failed: {record['error']}")
        ours.append(record["latency_ms"]["p50"])
        status(f"round {i + 1}/{rounds}: benchmark_app")
        theirs.append(run_benchmark_app(xml, shape, seconds))
    medians = [t["median"] for t in theirs]
    summary = CrosscheckRecord(
        model={"name": artifacts.manifest["model"]["name"]},
        runtime={"name": "openvino", "version": record["runtime"]["version"]}, batch=batch, precision="fp32",
        edgebench_p50_ms=ours, benchmark_app_median_ms=medians, benchmark_app=theirs,
        ratio_per_round=[a / b for a, b in zip(ours, medians)],
        ratio=statistics.median(ours) / statistics.median(medians)).to_dict()
    append_record(summary, results)
    return summary
