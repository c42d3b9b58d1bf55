"""The CI regression gate: is the candidate slower, bigger or less accurate than the baseline?

Three ways to compare, each combinable with budgets (``--budget edgebench.toml``):

* **A/B** (recommended): baseline and candidate loaded in one measurement process per round and
  alternated in ABBA blocks (:mod:`.bench.paired`); rounds alternate which engine loads first.
  Start with ``rounds``; while the latency verdict is inconclusive, add rounds up to ``max_rounds``.
* **history**: the candidate's rounds against the last N ``latency`` records of the same key
  (model, runtime, precision, batch, threads) on the same host fingerprint. Fewer than
  ``MIN_HISTORY`` records: inconclusive, never pass. Another host: refused unless allowed.
* **budgets** only: absolute limits on the candidate.

Statistics and verdicts are :mod:`.bench.stats`; this module measures and assembles the gate record.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from edgebench.backends import Status
from edgebench.bench import samples as samples_mod
from edgebench.bench.guarded import Guard
from edgebench.bench.paired import PairedSettings, engine_spec, group_ratios, round_noise, run_round
from edgebench.bench.stats import (
    bootstrap_median_ci,
    budget_verdict,
    compare_verdict,
    overall,
    paired_ratio,
    unpaired_ratio,
)
from edgebench.portable import host
from edgebench.portable.errors import EXIT_INCONCLUSIVE, EXIT_OK, EXIT_REGRESSION, UsageError, finite

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MIN_HISTORY = 3
EXIT = {"no change": EXIT_OK, "improvement": EXIT_OK, "regression": EXIT_REGRESSION, "inconclusive": EXIT_INCONCLUSIVE}
BUDGET_MATCH = ("model", "runtime", "precision", "batch")
BUDGET_LIMITS = {"p50_ms": "latency p50 (ms)", "p99_ms": "latency p99 (ms)", "peak_rss_mb": "peak RSS (MB)",
                 "engine_mb": "engine size (MB)", "int8_drop_points": "INT8 top-1 drop (points)",
                 "min_int8_speedup": "INT8 speed-up vs FP32"}



@dataclass(frozen=True)
class GateOptions:
    runtime: str
    precision: str = "fp32"
    batch: int = 1
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    rounds: int = 5
    max_rounds: int = 15
    step: int = 2
    threshold: float = 0.05
    last: int = 10
    allow_other_host: bool = False
    allow_different_inputs: bool = False
    paired: PairedSettings = field(default_factory=PairedSettings)
    accuracy_images: int = 200
    # the candidate's rounds (history, budgets): re-measure once after a noisy round, waiting settle_seconds
    guard: Guard = field(default_factory=lambda: Guard(retries=1))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Source:
    """One side of the comparison: what the user named and the artifacts it resolved to."""

    role: str
    given: str
    artifacts: object  # edgebench.build.artifacts.Artifacts

    @property
    def model(self) -> str:
        return self.artifacts.manifest["model"]["name"]

    def engine(self, opts: GateOptions) -> Path:
        return self.artifacts.engine_path(opts.runtime, opts.precision)

    def describe(self, opts: GateOptions) -> dict:
        from edgebench.portable.hashing import sha256_file
        engine = self.engine(opts)
        return {"given": self.given, "model": self.model, "artifacts": str(self.artifacts.root),
                "engine": str(engine), "engine_sha256": sha256_file(engine) if engine.is_file() else None,
                "input_shape": self.artifacts.manifest["input"]["shape"][1:],
                "preprocess": self.artifacts.manifest.get("preprocess"),
                "weights": (self.artifacts.manifest.get("weights") or {}).get("source")}


# ---------------------------------------------------------------- budgets

def load_budgets(path: Path, known_models: Callable[[str], bool]) -> list[dict]:
    """``[[budget]]`` tables of ``edgebench.toml``; an unknown key, model or value is a UsageError naming it."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"budget file {path} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise UsageError(f"cannot read budget file {path} ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"budget file {path} is not valid TOML: {exc}") from None
    unknown = set(data) - {"budget"}
    if unknown:
        raise UsageError(f"budget file {path}: unknown table {min(unknown)!r} (write [[budget]] tables)")
    budgets = data.get("budget", [])
    if not isinstance(budgets, list) or not budgets:
        raise UsageError(f"budget file {path} has no [[budget]] table")
    from edgebench.backends import RUNTIMES, canonical
    for i, b in enumerate(budgets, 1):
        where = f"budget file {path}, [[budget]] #{i}"
        for key in b:
            if key not in BUDGET_MATCH and key not in BUDGET_LIMITS:
                raise UsageError(f"{where}: unknown key {key!r} (limits: {', '.join(BUDGET_LIMITS)}; "
                                 f"match keys: {', '.join(BUDGET_MATCH)})")
        if "model" not in b:
            raise UsageError(f"{where}: 'model' is required")
        if not is_pattern(str(b["model"])) and not known_models(str(b["model"])):
            raise UsageError(f"{where}: unknown model {b['model']!r}")
        if "runtime" in b:
            if str(b["runtime"]).lower() not in {*RUNTIMES, "onnxruntime", "ov", "tensorrt", "pytorch"}:
                raise UsageError(f"{where}: unknown runtime {b['runtime']!r}")
            b["runtime"] = canonical(str(b["runtime"]))
        if "precision" in b and b["precision"] not in ("fp32", "fp16", "int8"):
            raise UsageError(f"{where}: unknown precision {b['precision']!r}")
        if "batch" in b and (not isinstance(b["batch"], int) or b["batch"] < 1):
            raise UsageError(f"{where}: batch must be a positive integer, got {b['batch']!r}")
        limits = [k for k in b if k in BUDGET_LIMITS]
        if not limits:
            raise UsageError(f"{where}: no limit ({', '.join(BUDGET_LIMITS)})")
        for k in limits:
            if finite(b[k], f"{where}: {k}") < 0:
                raise UsageError(f"{where}: {k} must be a non-negative number, got {b[k]!r}")
    return budgets


def is_pattern(name: str) -> bool:
    """A budget's ``model`` with ``*``, ``?`` or ``[...]``: a shell-style pattern of model names."""
    return any(c in name for c in "*?[")


def budgets_for(budgets: list[dict], model: str, opts: GateOptions) -> dict:
    """The limits that apply to ``model`` under ``opts``; later tables override earlier ones. A ``model``
    pattern (``"*"``: any candidate, whatever its file is named) matches by :func:`fnmatch.fnmatchcase`."""
    from edgebench.models import get_spec
    found: dict = {}
    for b in budgets:
        name = str(b["model"])
        if is_pattern(name):
            matched = fnmatch.fnmatchcase(model, name)
        else:
            with contextlib.suppress(UsageError):  # an imported model's own name stays as written
                name = get_spec(name).name
            matched = name == model
        if not matched or b.get("runtime", opts.runtime) != opts.runtime \
                or b.get("precision", opts.precision) != opts.precision or b.get("batch", opts.batch) != opts.batch:
            continue
        found.update({k: v for k, v in b.items() if k in BUDGET_LIMITS})
    return found


# ---------------------------------------------------------------- refusals

def input_differences(a: Source, b: Source) -> list[str]:
    """Input shape and preprocessing differences between two sources."""
    import json  # compare as stored: a fresh manifest holds tuples where a loaded one has lists
    ma, mb = (json.loads(json.dumps(s.artifacts.manifest, default=str)) for s in (a, b))
    found = []
    if ma["input"]["shape"][1:] != mb["input"]["shape"][1:]:
        found.append(f"input shape {ma['input']['shape'][1:]} vs {mb['input']['shape'][1:]}")
    pa, pb = ma.get("preprocess") or {}, mb.get("preprocess") or {}
    for k in sorted(set(pa) | set(pb)):
        if pa.get(k) != pb.get(k):
            found.append(f"preprocess {k} {pa.get(k)!r} vs {pb.get(k)!r}")
    return found


def check_engine(source: Source, opts: GateOptions) -> None:
    if source.artifacts.engine_entry(opts.runtime, opts.precision) is None:
        engines = ", ".join(source.artifacts.manifest["engines"]) or "none"
        raise UsageError(f"{source.role} {source.given}: no {opts.runtime} {opts.precision} engine in "
                         f"{source.artifacts.root} (its engines: {engines}); "
                         f"export it with --runtime {opts.runtime} --precision {opts.precision}")


# ---------------------------------------------------------------- metrics

def _metric(name: str, kind: str, verdict, **figures) -> dict:
    return {"metric": name, "kind": kind, "verdict": verdict.verdict, "reason": verdict.reason, "gated": True,
            **figures}


def _ci_of(values: list[float]) -> list[float]:
    return list(bootstrap_median_ci(np.asarray(values))) if len(values) >= 3 else [min(values), max(values)]


def _engine_mb(source: Source, opts: GateOptions) -> float:
    entry = source.artifacts.engine_entry(opts.runtime, opts.precision) or {}
    return sum(source.artifacts.path(f).stat().st_size for f in entry.get("files", [])
               if source.artifacts.path(f).is_file()) / 1e6


def _deterministic(name: str, base: float, cand: float, threshold: float, unit: str) -> dict:
    from edgebench.bench.stats import Verdict
    ratio = cand / base if base else float("inf")
    if ratio > 1 + threshold:
        v = Verdict("regression", f"x{ratio:.3f} > x{1 + threshold:.3f}")
    elif ratio < 1 - threshold:
        v = Verdict("improvement", f"x{ratio:.3f} < x{1 - threshold:.3f}")
    else:
        v = Verdict("no change", f"x{ratio:.3f} within ±{threshold:.0%}")
    return _metric(name, "compare", v, baseline=round(base, 3), candidate=round(cand, 3), ratio=round(ratio, 4),
                   ci=None, unit=unit)


def peak_rss(source: Source, opts: GateOptions) -> float:
    """Peak RSS (MB) of a short single-engine measurement process: memory is not noisy, one run is enough."""
    from edgebench.backends import RuntimeOptions
    from edgebench.bench.guarded import benchmark
    from edgebench.portable.protocol import Protocol
    record = benchmark(source.artifacts, opts.runtime,
                       RuntimeOptions(precision=opts.precision, threads=opts.threads, batches=(opts.batch,)),
                       Protocol(5, 0.0, 20, 0.0), Guard(retries=0))
    if record["status"] != "ok":
        raise UsageError(f"{source.role}: memory measurement failed: {record['error']}")
    return record["memory_mb"]["peak"]


# ---------------------------------------------------------------- modes

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
        _metric("latency p50", "compare", verdict, baseline=round(float(np.median(medians["baseline"])), 4),
                candidate=round(float(np.median(medians["candidate"])), 4), ratio=round(p50["ratio"], 4),
                ci=[round(x, 4) for x in p50["ci"]], unit="ms", statistic=p50["method"], groups=p50["groups"]),
        {**_metric("latency p99", "compare", tail, baseline=round(float(np.median(p99["baseline"])), 4),
                   candidate=round(float(np.median(p99["candidate"])), 4), ratio=round(float(np.median(p99_ratios)), 4),
                   ci=[round(x, 4) for x in p99_ci], unit="ms",
                   statistic="median over rounds of the per-round p99 ratio; bootstrap over rounds"),
         "gated": False, "note": "not gated: the tail is noise-dominated on shared runners; set a p99_ms budget"},
        _deterministic("engine size", _engine_mb(base, opts), _engine_mb(cand, opts), opts.threshold, "MB"),
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
    from edgebench.backends import RuntimeOptions
    from edgebench.bench.guarded import benchmark
    from edgebench.portable.protocol import Protocol
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
    from edgebench.backends import runtime_class
    from edgebench.results import history
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
        from edgebench.bench.stats import Verdict
        v = Verdict("inconclusive", f"{len(same)} history record(s) on this host, {MIN_HISTORY} needed: "
                                    "record more with `edgebench run --rounds K` on the baseline")
        metric = _metric("latency p50", "history", v, baseline=None, candidate=round(cand_p50, 4), ratio=None, ci=None,
                         unit="ms", history_records=len(same))
    else:
        base = [r["latency_ms"]["p50"] for r in same]
        u = unpaired_ratio(np.asarray(base), np.asarray(rounds))
        v = compare_verdict(u["ratio"], u["ci"], opts.threshold, p_value=u["mann_whitney_p"])
        metric = _metric("latency p50", "history", v, baseline=round(float(np.median(base)), 4),
                         candidate=round(float(np.median(rounds)), 4), ratio=round(u["ratio"], 4),
                         ci=[round(x, 4) for x in u["ci"]], unit="ms", statistic=u["method"],
                         mann_whitney_p=u["mann_whitney_p"], history_records=len(same),
                         history_ids=[r["id"] for r in same])
    lat = record["latency_ms"]
    per_round_p99 = [r["p99"] for r in record.get("rounds") or []] or [lat["p99"]]
    return {"mode": "history", "metrics": [metric], "rounds_used": len(rounds), "rounds_started": opts.rounds,
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


def budget_metrics(cand: Source, opts: GateOptions, limits: dict, measured: dict, data: Path | None,
                   status: Status = lambda _m: None) -> list[dict]:
    """One metric per budget limit on the candidate, from ``measured`` (the mode's candidate figures)."""
    out = []
    lat = measured["candidate_latency"]
    for key, limit in limits.items():
        label = BUDGET_LIMITS[key]
        if key == "p50_ms":
            v, value, ci = budget_verdict(lat["p50"], lat["p50_ci95"], limit), lat["p50"], lat["p50_ci95"]
        elif key == "p99_ms":
            v, value, ci = budget_verdict(lat["p99"], lat["p99_ci95"], limit), lat["p99"], lat["p99_ci95"]
        elif key == "peak_rss_mb":
            value, ci = measured["candidate_peak_rss_mb"], None
            v = budget_verdict(value, None, limit)
        elif key == "engine_mb":
            value, ci = _engine_mb(cand, opts), None
            v = budget_verdict(value, None, limit)
        elif key == "min_int8_speedup":
            if opts.precision != "int8":
                raise UsageError("budget min_int8_speedup applies to --precision int8 only")
            from edgebench.bench.paired import speedup
            status("paired FP32 vs INT8 rounds of the candidate (min_int8_speedup)")
            found = speedup(cand.artifacts, opts.runtime, opts.batch, opts.threads, max(3, min(opts.rounds, 5)),
                            opts.paired)
            value, ci = found["speedup"], found["ci95"]
            v = budget_verdict(value, ci, limit, higher_is_better=True)
        else:  # int8_drop_points
            value, ci, v = _int8_drop(cand, opts, limit, data, status)
        out.append(_metric(label, "budget", v, candidate=None if value is None else round(value, 4),
                           limit=limit, ci=None if ci is None else [round(x, 4) for x in ci], budget_key=key))
    return out


def _int8_drop(cand: Source, opts: GateOptions, limit: float, data: Path | None, status: Status):
    if opts.precision != "int8":
        raise UsageError("budget int8_drop_points applies to --precision int8 only")
    if data is None:
        raise UsageError("budget int8_drop_points needs labelled images: pass --data DIR (or set EDGEBENCH_DATA)")
    if (cand.artifacts.manifest.get("weights") or {}).get("trained") is False:
        raise UsageError("budget int8_drop_points: the candidate has random weights, its top-1 drop means nothing")
    from edgebench.bench.accuracy import evaluate_model, headline
    status(f"INT8 vs FP32 accuracy on {opts.accuracy_images} evaluation images")
    summary = evaluate_model(cand.artifacts, opts.runtime, "int8", data, opts.threads, limit=opts.accuracy_images)
    h = headline(summary, opts.runtime, "int8")
    if h["drop_points"] is None:
        raise UsageError(f"budget int8_drop_points: no top-1 drop measured ({summary.get('top1_reason')})")
    half = 1.96 * h["drop_se_points"]
    ci = (h["drop_points"] - half, h["drop_points"] + half)
    return h["drop_points"], ci, budget_verdict(h["drop_points"], ci, limit)


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
    from edgebench.results.records import GateRecord
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


def resolve_source(role: str, given: str, weights: str, opts, weights_dir: Path | None, out: Path, data: Path | None):
    """A registry model name, an ONNX file, or an artifacts folder (with manifest.json) -> a gate Source."""
    from edgebench.build.artifacts import Artifacts
    from edgebench.workflow.prepare import BuildRequest, ModelSource, prepare
    path = Path(given)
    if path.is_dir():
        if not (path / "manifest.json").is_file():
            raise UsageError(f"--{role} {given}: a folder without manifest.json (give an artifacts/<model> folder)")
        artifacts = Artifacts.open(path)
        if not artifacts.manifest.get("model"):
            raise UsageError(f"--{role} {given}: manifest.json is not an edgebench manifest of this version")
        return Source(role, given, artifacts)
    if path.suffix.lower() == ".onnx" or path.exists():
        if not path.is_file():
            raise UsageError(f"--{role} {given}: no such file")
        # own folder per side: two ONNX files named model.onnx must not share artifacts/model/
        return Source(role, given, prepare(ModelSource(None, path, weights, weights_dir), (opts.runtime,),
                                           opts.precision, BuildRequest(out / f"gate-{role}", data)))
    from edgebench.models import get_spec
    try:
        get_spec(given)
    except UsageError as exc:
        if any(sep and sep in given for sep in ("/", os.sep, os.altsep)) or given.startswith((".", "~")):
            raise UsageError(f"--{role} {given}: no such file or folder") from None
        raise UsageError(f"--{role} {given}: no such file or folder, and {exc}") from None
    return Source(role, given, prepare(ModelSource(given, None, weights, weights_dir), (opts.runtime,), opts.precision,
                                       BuildRequest(out, data)))
