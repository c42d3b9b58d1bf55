"""``--rounds K``: K independent measurement processes of one engine, each a full guarded protocol.

On this machine kind one process's p50 varies ~20% (CV) from process to process while its
own order-statistic CI is a few %, so the CI of a K-round record is a bootstrap over the
round medians: it carries the between-process noise that a single process cannot see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from edgebench.bench import samples
from edgebench.bench.stats import bootstrap_median_ci, median_ci
from edgebench.portable.protocol import summarize

MIN_ROUNDS_FOR_BOOTSTRAP = 3
_SEVERITY = ("stable", "contended", "unstable")


def measure_rounds(job: dict, guard, measure: Callable[[dict, object], tuple[dict, dict]]) -> tuple[dict, dict]:
    """Run ``measure(job, guard)`` ``guard.rounds`` times; one result with every round's summary."""
    one = replace(guard, rounds=1)
    results, stabilities = [], []
    for _ in range(guard.rounds):
        result, stability = measure(job, one)
        results.append(result)
        stabilities.append(stability)
        if result.get("status") != "ok":
            return {**result, "rounds": _summaries(results, stabilities)}, stability
    return combine(results, stabilities, job["options"]["batches"][0])


def _summaries(results: list[dict], stabilities: list[dict]) -> list[dict]:
    return [{"status": r.get("status"), "error": r.get("error"),
             **{k: (r.get("latency_ms") or {}).get(k) for k in ("p50", "p90", "p99", "p50_ci95")},
             "iterations": (r.get("loop") or {}).get("iterations"),
             "peak_rss_mb": (r.get("memory_mb") or {}).get("peak"),
             "engine_memory_mb": (r.get("memory") or {}).get("engine_mb"),
             "first_inference_ms": r.get("first_inference_ms"), "load_seconds": r.get("load_seconds"),
             "stability": s.get("verdict"), "seen": s.get("seen", [])} for r, s in zip(results, stabilities)]


def combine(results: list[dict], stabilities: list[dict], batch: int) -> tuple[dict, dict]:
    """The K rounds as one result: p50 = median of the round medians with its bootstrap CI,
    p90/p99 from the pooled stored samples, peak RSS = the median round's."""
    pooled = np.concatenate([samples.decode(r.get("samples_ms")) for r in results])
    medians = np.array([r["latency_ms"]["p50"] for r in results])
    latency = summarize(pooled, batch) if len(pooled) else dict(results[0]["latency_ms"])
    latency["p50"] = float(np.median(medians))
    if len(results) >= MIN_ROUNDS_FOR_BOOTSTRAP:
        latency["p50_ci95"] = list(bootstrap_median_ci(medians))
        latency["ci_method"] = f"bootstrap of the median of {len(results)} round medians"
    else:
        latency["p50_ci95"] = list(median_ci(pooled)) if len(pooled) else latency.get("p50_ci95")
        latency["ci_method"] = f"order statistics of {len(results)} pooled rounds (too few rounds to bootstrap)"
    peaks = sorted((r.get("memory_mb") or {}).get("peak") or 0 for r in results)
    middle = dict(results[int(np.argsort(medians)[len(medians) // 2])])
    memory = dict(middle.get("memory_mb") or {})
    memory["peak"] = peaks[len(peaks) // 2]
    verdicts = [s["verdict"] for s in stabilities]
    stability = {"verdict": max(verdicts, key=_SEVERITY.index), "rounds": verdicts,
                 "seen": sorted({x for s in stabilities for x in s.get("seen", [])}),
                 "attempts": [a for s in stabilities for a in s["attempts"]]}
    return {**middle, "latency_ms": latency, "memory_mb": memory, "samples_ms": samples.encode(pooled),
            "rounds": _summaries(results, stabilities)}, stability
