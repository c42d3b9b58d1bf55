"""The gate's overall verdict, its exit code, and the ``gate`` record (JSONL and history)."""

from __future__ import annotations

import time

from edgebench.bench.stats import overall
from edgebench.portable import host
from edgebench.portable.errors import EXIT_INCONCLUSIVE, EXIT_OK, EXIT_REGRESSION
from edgebench.results.records import GateRecord
from edgebench.workflow.gate.sources import GateOptions

EXIT = {"no change": EXIT_OK, "improvement": EXIT_OK, "regression": EXIT_REGRESSION, "inconclusive": EXIT_INCONCLUSIVE}


def decide(metrics: list[dict], inconclusive: str | None) -> dict:
    """Overall verdict (gated metrics only) and the exit code; ``inconclusive``: "pass", "fail" or None (exit 3)."""
    verdict = overall([m["verdict"] for m in metrics if m.get("gated", True)])
    code = EXIT[verdict]
    if verdict == "inconclusive" and inconclusive:
        code = EXIT_OK if inconclusive == "pass" else EXIT_REGRESSION
    return {"overall": verdict, "exit_code": code, "inconclusive_policy": inconclusive or "exit 3"}


def gate_record(measured: dict, metrics: list[dict], decision: dict, opts: GateOptions, sources: dict,
                started: float, extra: dict | None = None) -> dict:
    """The ``gate`` result record (JSONL + history): what was compared, every metric, the verdict."""
    cand = sources["candidate"]
    record = GateRecord(model={"name": cand["model"]},
                        runtime={"name": opts.runtime, "version": measured.get("runtime_version")},
                        precision=opts.precision, batch=opts.batch, threads=opts.threads, extra=dict(
                            mode=measured["mode"], sources=sources, metrics=metrics, verdict=decision,
                            options=opts.to_dict(), rounds_used=measured["rounds_used"],
                            rounds_started=measured["rounds_started"], adaptive=measured["adaptive"],
                            noise=measured.get("noise"), other_host=measured.get("other_host", False),
                            seconds=round(time.monotonic() - started, 1),
                            latency_ms={"p50": measured["candidate_latency"]["p50"],
                                        "p50_ci95": measured["candidate_latency"]["p50_ci95"],
                                        "p99": measured["candidate_latency"]["p99"]},
                            memory_mb={"peak": measured.get("candidate_peak_rss_mb")}, **(extra or {}))).to_dict()
    record["fingerprint"] = host.fingerprint(record)
    record["host_summary"] = host.host_summary(record["fingerprint"])
    return record
