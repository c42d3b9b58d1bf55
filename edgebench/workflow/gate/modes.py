"""How the candidate is measured: A/B (both engines in one process per round, ABBA blocks), against the history
database, or alone for budgets; each gives the latency metrics and the candidate's figures."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from edgebench.backends import RuntimeOptions, Status, runtime_class
from edgebench.bench import samples as samples_mod
from edgebench.bench.guarded import Guard, benchmark
from edgebench.bench.paired import engine_spec, group_ratios, round_noise, run_round
from edgebench.bench.stats import Verdict, bootstrap_median_ci, compare_verdict, paired_ratio, unpaired_ratio
from edgebench.portable import host
from edgebench.portable.errors import UsageError
from edgebench.portable.protocol import Protocol
from edgebench.results import history
from edgebench.workflow.gate.sources import MIN_HISTORY, GateOptions, Source, check_engine, input_differences


def metric(name: str, kind: str, verdict, **figures) -> dict:
    return {"metric": name, "kind": kind, "verdict": verdict.verdict, "reason": verdict.reason, "gated": True,
            **figures}


def _ci_of(values: list[float]) -> list[float]:
    return list(bootstrap_median_ci(np.asarray(values))) if len(values) >= 3 else [min(values), max(values)]


def engine_mb(source: Source, opts: GateOptions) -> float:
    entry = source.artifacts.engine_entry(opts.runtime, opts.precision) or {}
    return sum(source.artifacts.path(f).stat().st_size for f in entry.get("files", [])
               if source.artifacts.path(f).is_file()) / 1e6


def _deterministic(name: str, base: float, cand: float, threshold: float, unit: str) -> dict:
    ratio = cand / base if base else float("inf")
    if ratio > 1 + threshold:
        v = Verdict("regression", f"x{ratio:.3f} > x{1 + threshold:.3f}")
    elif ratio < 1 - threshold:
        v = Verdict("improvement", f"x{ratio:.3f} < x{1 - threshold:.3f}")
    else:
        v = Verdict("no change", f"x{ratio:.3f} within ±{threshold:.0%}")
    return metric(name, "compare", v, baseline=round(base, 3), candidate=round(cand, 3), ratio=round(ratio, 4),
                   ci=None, unit=unit)


def peak_rss(source: Source, opts: GateOptions) -> float:
    """Peak RSS (MB) of a short single-engine measurement process: memory is not noisy, one run is enough."""
    record = benchmark(source.artifacts, opts.runtime,
                       RuntimeOptions(precision=opts.precision, threads=opts.threads, batches=(opts.batch,)),
                       Protocol(5, 0.0, 20, 0.0), Guard(retries=0))
    if record["status"] != "ok":
        raise UsageError(f"{source.role}: memory measurement failed: {record['error']}")
    return record["memory_mb"]["peak"]


def ab_gate(base: Source, cand: Source, opts: GateOptions, status: Status = lambda _m: None) -> dict:
    """A/B: paired ABBA rounds, adaptive; returns the measurement part of the gate record."""
    for s in (base, cand):
        check_engine(s, opts)
    differ = input_differences(base, cand)
    if differ and not opts.allow_different_inputs:
        raise UsageError(f"baseline and candidate take different inputs ({'; '.join(differ)}); "
                         "pass --allow-different-inputs to compare them anyway")
    specs = [engine_spec(s.artifacts, opts.runtime, opts.precision, opts.batch, opts.threads) for s in (base, cand)]
    rounds: list[dict] = []
    target = opts.rounds
    while True:
        while len(rounds) < target:
            status(f"A/B round {len(rounds) + 1}/{target} (max {opts.max_rounds}): {base.model} vs {cand.model}")
            rounds.append(run_round(specs, len(rounds), opts.paired))
        p50 = paired_ratio(group_ratios(rounds))
        verdict = compare_verdict(p50["ratio"], p50["ci"], opts.threshold)
        if verdict.verdict != "inconclusive" or len(rounds) >= opts.max_rounds:
            break
        target = min(len(rounds) + opts.step, opts.max_rounds)
    side = {role: [r["engines"][i]["latency_ms"] for r in rounds] for i, role in enumerate(("baseline", "candidate"))}
    medians = {k: [x["p50"] for x in v] for k, v in side.items()}
    p99 = {k: [x["p99"] for x in v] for k, v in side.items()}
    p99_ratios = [c / b for b, c in zip(p99["baseline"], p99["candidate"])]
    p99_ci = _ci_of(p99_ratios)
    tail = compare_verdict(float(np.median(p99_ratios)), p99_ci, opts.threshold)
    metrics = [
        metric("latency p50", "compare", verdict, baseline=round(float(np.median(medians["baseline"])), 4),
                candidate=round(float(np.median(medians["candidate"])), 4), ratio=round(p50["ratio"], 4),
                ci=[round(x, 4) for x in p50["ci"]], unit="ms", statistic=p50["method"], groups=p50["groups"]),
        {**metric("latency p99", "compare", tail, baseline=round(float(np.median(p99["baseline"])), 4),
                   candidate=round(float(np.median(p99["candidate"])), 4), ratio=round(float(np.median(p99_ratios)), 4),
                   ci=[round(x, 4) for x in p99_ci], unit="ms",
                   statistic="median over rounds of the per-round p99 ratio; bootstrap over rounds"),
         "gated": False, "note": "not gated: the tail is noise-dominated on shared runners; set a p99_ms budget"},
        _deterministic("engine size", engine_mb(base, opts), engine_mb(cand, opts), opts.threshold, "MB"),
    ]
    status("peak RSS of each engine (one short process each)")
    metrics.append(_deterministic("peak RSS", peak_rss(base, opts), peak_rss(cand, opts), opts.threshold, "MB"))
    candidate_samples = [samples_mod.decode(r["engines"][1]["samples_ms"]) for r in rounds]
    return {"mode": "ab", "metrics": metrics, "rounds_used": len(rounds), "rounds_started": opts.rounds,
            "adaptive": len(rounds) > opts.rounds, "noise": [round_noise(r) for r in rounds],
            "candidate_latency": {"p50": metrics[0]["candidate"], "p50_ci95": _ci_of(medians["candidate"]),
                                  "p99": metrics[1]["candidate"], "p99_ci95": _ci_of(p99["candidate"]),
                                  "stored_samples": int(sum(len(s) for s in candidate_samples))},
            "candidate_peak_rss_mb": metrics[3]["candidate"], "paired": opts.paired.to_dict(),
            "runtime_version": rounds[0]["engines"][0]["runtime_version"]}


def measure_candidate(cand: Source, opts: GateOptions, status: Status = lambda _m: None) -> dict:
    """The candidate alone: ``opts.rounds`` guarded single-engine processes (the record of `run --rounds`)."""
    check_engine(cand, opts)
    status(f"measuring {cand.model}: {opts.rounds} rounds")
    record = benchmark(cand.artifacts, opts.runtime,
                       RuntimeOptions(precision=opts.precision, threads=opts.threads, batches=(opts.batch,)),
                       Protocol(10, 1.0, 100, opts.paired.min_seconds), replace(opts.guard, rounds=opts.rounds))
    if record["status"] != "ok":
        raise UsageError(f"candidate measurement failed: {record['error']}")
    return record


def history_gate(cand: Source, opts: GateOptions, db: Path, status: Status = lambda _m: None) -> tuple[dict, dict]:
    """The candidate against the last ``opts.last`` history records on the same host fingerprint."""
    here = {"host": host.host_info(),
            "runtime": {"name": opts.runtime, "version": runtime_class(opts.runtime).availability().version}}
    fp = host.fingerprint(here)
    key = host.fingerprint_key(fp)
    found = history.query(db, model=cand.model, runtime=opts.runtime, precision=opts.precision, batch=opts.batch,
                          threads=opts.threads)
    same = [r for r in found if host.fingerprint_key(host.fingerprint(r)) == key][-opts.last:]
    other_host = False
    if not same and found:  # refused before measuring anything
        differ = host.differences(host.fingerprint(found[-1]), fp)
        if not opts.allow_other_host:
            raise UsageError(f"history has {len(found)} record(s) of {cand.model} on {opts.runtime} {opts.precision} "
                             f"batch {opts.batch}, {opts.threads} threads, all from another host or runtime "
                             f"({'; '.join(differ)}); pass --allow-other-host to compare anyway")
        same, other_host = found[-opts.last:], True
    record = measure_candidate(cand, opts, status)
    rounds = [r["p50"] for r in record.get("rounds") or []] or [record["latency_ms"]["p50"]]
    cand_p50 = record["latency_ms"]["p50"]
    if len(same) < MIN_HISTORY:
        v = Verdict("inconclusive", f"{len(same)} history record(s) on this host, {MIN_HISTORY} needed: "
                                    "record more with `edgebench run --rounds K` on the baseline")
        latency = metric("latency p50", "history", v, baseline=None, candidate=round(cand_p50, 4), ratio=None, ci=None,
                         unit="ms", history_records=len(same))
    else:
        base = [r["latency_ms"]["p50"] for r in same]
        u = unpaired_ratio(np.asarray(base), np.asarray(rounds))
        v = compare_verdict(u["ratio"], u["ci"], opts.threshold, p_value=u["mann_whitney_p"])
        latency = metric("latency p50", "history", v, baseline=round(float(np.median(base)), 4),
                         candidate=round(float(np.median(rounds)), 4), ratio=round(u["ratio"], 4),
                         ci=[round(x, 4) for x in u["ci"]], unit="ms", statistic=u["method"],
                         mann_whitney_p=u["mann_whitney_p"], history_records=len(same),
                         history_ids=[r["id"] for r in same])
    lat = record["latency_ms"]
    per_round_p99 = [r["p99"] for r in record.get("rounds") or []] or [lat["p99"]]
    return {"mode": "history", "metrics": [latency], "rounds_used": len(rounds), "rounds_started": opts.rounds,
            "adaptive": False, "other_host": other_host, "history_last": opts.last,
            "noise": [{"stability": r.get("stability"), "seen": r.get("seen")} for r in record.get("rounds") or []],
            "candidate_latency": {"p50": lat["p50"], "p50_ci95": lat["p50_ci95"],
                                  "p99": float(np.median(per_round_p99)), "p99_ci95": _ci_of(per_round_p99)},
            "candidate_peak_rss_mb": record["memory_mb"]["peak"],
            "runtime_version": record["runtime"]["version"]}, record


def budget_only(cand: Source, opts: GateOptions, status: Status = lambda _m: None) -> tuple[dict, dict]:
    record = measure_candidate(cand, opts, status)
    lat = record["latency_ms"]
    per_round_p99 = [r["p99"] for r in record.get("rounds") or []] or [lat["p99"]]
    return {"mode": "budget", "metrics": [], "rounds_used": opts.rounds, "rounds_started": opts.rounds,
            "adaptive": False, "noise": [{"stability": r.get("stability"), "seen": r.get("seen")}
                                         for r in record.get("rounds") or []],
            "candidate_latency": {"p50": lat["p50"], "p50_ci95": lat["p50_ci95"],
                                  "p99": float(np.median(per_round_p99)), "p99_ci95": _ci_of(per_round_p99)},
            "candidate_peak_rss_mb": record["memory_mb"]["peak"],
            "runtime_version": record["runtime"]["version"]}, record
