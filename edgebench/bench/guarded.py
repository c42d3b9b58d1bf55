"""Run one measurement in a subprocess, guarded by the noise probe, and make its record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from edgebench.backends import RuntimeOptions
from edgebench.bench import noise, phases
from edgebench.bench.rounds import measure_rounds
from edgebench.bench.worker import PARENT_ENV, RESULT_PREFIX
from edgebench.build.artifacts import Artifacts
from edgebench.portable.hashing import sha256_file
from edgebench.portable.protocol import Protocol
from edgebench.results.records import LatencyRecord, model_fields


@dataclass(frozen=True)
class Guard:
    """How hard to try for a measurement taken outside a bad phase."""

    retries: int = 2
    settle_seconds: float = 20.0
    timeout_seconds: float = 900.0
    rounds: int = 1  # independent measurement processes, each a full protocol (see rounds.py)


def run_worker(job: dict, timeout: float, module: str = "edgebench.bench.worker") -> dict:
    """Run the measurement subprocess (``module``); a crash or time-out becomes a failed result."""
    try:
        proc = subprocess.run([sys.executable, "-m", module], input=json.dumps(job), capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, PARENT_ENV: str(os.getpid())})
    except subprocess.TimeoutExpired:
        return {"status": "failed", "error": f"measurement timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
    return {"status": "failed", "error": f"measurement process crashed ({how}): {tail[:300]}"}


def measure_guarded(job: dict, guard: Guard) -> tuple[dict, dict]:
    """Measure, re-measuring when the probe shows a bad phase; return (result, stability)."""
    threads = job["options"].get("threads") or os.cpu_count() or 1
    attempts = []
    result: dict = {}
    for attempt in range(guard.retries + 1):
        before = noise.probe(threads)
        result = run_worker(job, guard.timeout_seconds)
        after = noise.probe(threads)
        bad = before["bad"] or after["bad"]
        attempts.append({"before": before, "after": after, "bad_phase": bad,
                         "p50_ms": result.get("latency_ms", {}).get("p50"),
                         "phases": result.get("phases"), "load": result.get("load")})
        if result.get("status") != "ok" or not phases.noise_seen(attempts[-1]):
            break
        if attempt < guard.retries:
            time.sleep(guard.settle_seconds)
    last = attempts[-1]
    verdict = "unstable" if last["bad_phase"] or (last["phases"] or {}).get("slow_phase") else \
        "contended" if (last["load"] or {}).get("contended") else "stable"
    stability = {"verdict": verdict, "attempts": attempts, "probe_bad_ratio": noise.BAD_RATIO,
                 "seen": phases.noise_seen(last)}
    cores = os.cpu_count() or 1
    if threads > cores:  # threads that share cores measure the scheduler too: never a stable number
        stability.update(verdict="oversubscribed", oversubscription={"threads": threads, "cores": cores})
    return result, stability


def build_seconds(entry: dict) -> float | None:
    """The engine's build time from its manifest entry (``build_seconds``, recorded by ``Artifacts.ensure``;
    an older manifest's builder-reported ``build.seconds``); None where neither was recorded."""
    found = entry.get("build_seconds", (entry.get("build") or {}).get("seconds"))
    return float(found) if isinstance(found, (int, float)) and not isinstance(found, bool) else None


def benchmark(artifacts: Artifacts, runtime: str, options: RuntimeOptions, protocol: Protocol,
              guard: Guard = Guard(), engine: Path | None = None) -> dict:
    """Measure one engine of ``artifacts`` at one batch size (``engine``: another file of the
    same model and precision, e.g. the every-layer INT8 model); return its result record."""
    manifest = artifacts.manifest
    engine = engine or artifacts.engine_path(runtime, options.precision)
    job = {"runtime": runtime, "engine": str(engine), "options": options.to_dict(),
           "input_shape": manifest["input"]["shape"][1:], "protocol": protocol.to_dict()}
    if guard.rounds > 1:
        result, stability = measure_rounds(job, guard, measure_guarded)
    else:
        result, stability = measure_guarded(job, guard)
    entry = artifacts.engine_entry(runtime, options.precision) or {}
    files = entry.get("files", [])
    disk = sum(artifacts.path(f).stat().st_size for f in files if artifacts.path(f).is_file())
    memory = result.get("memory")
    if memory is not None:
        memory = {**memory, "engine_files_mb": round(disk / 2**20, 2)}
    return LatencyRecord(
        status=result.get("status", "failed"),
        error=result.get("error"),
        model=model_fields(manifest),
        weights=manifest["weights"],
        runtime={"name": runtime, "version": result.get("runtime_version"), "settings": result.get("settings"),
                 "device": (result.get("settings") or {}).get("device", options.device)},
        precision=options.precision,
        effective_precision=result.get("effective_precision"),
        int8_recipe=artifacts.int8_recipe(runtime) if options.precision == "int8" else None,
        batch=options.batches[0],
        threads=options.threads,
        latency_ms=result.get("latency_ms"),
        loop=result.get("loop"),
        build_seconds=build_seconds(entry),
        first_inference_ms=result.get("first_inference_ms"),
        load_seconds=result.get("load_seconds"),
        memory_mb={k: v for k, v in (result.get("memory_mb") or {}).items() if k != "snapshots"} or None,
        memory=memory,
        device_memory_mb=result.get("device_memory_mb"),
        engine={"path": str(engine), "sha256": sha256_file(engine) if engine.is_file() else None,
                "bytes": disk,
                "files": files, "manifest": str(artifacts.manifest_path)},
        onnx_bytes=manifest["files"].get("fp32/model.onnx", {}).get("bytes"),
        protocol=protocol.to_dict(),
        stability=stability,
        samples_ms=result.get("samples_ms"),
        rounds=result.get("rounds"),
    ).to_dict()
