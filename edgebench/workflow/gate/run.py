"""One gate, from the request a front end builds to the record on disk: the refusals, the sides, the budgets,
the mode's measurement, the verdict, and the record with its step summary and JUnit file written."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from edgebench.backends import Status, quiet, require
from edgebench.build.artifacts import ensure_writable
from edgebench.models import get_spec
from edgebench.portable.errors import UsageError
from edgebench.results import gate_outputs, history
from edgebench.results.store import append_record
from edgebench.workflow.gate.budgets import budget_metrics, budgets_for, load_budgets
from edgebench.workflow.gate.modes import ab_gate, budget_only, history_gate
from edgebench.workflow.gate.record import decide, gate_record
from edgebench.workflow.gate.sources import GateOptions, resolve_source


@dataclass(frozen=True)
class GateRequest:
    """What to compare (``baseline`` for A/B, ``against="history"``, or ``budget_file`` alone), with which
    options, and where the record, the step summary and the JUnit file go."""

    options: GateOptions
    candidate: str
    baseline: str | None = None
    against: str | None = None
    budget_file: Path | None = None
    inconclusive: str | None = None  # "pass" | "fail" | None (exit 3)
    weights: str = "auto"
    candidate_weights: str | None = None
    baseline_weights: str | None = None
    weights_dir: Path | None = None
    out: Path = Path("artifacts")
    data: Path | None = None
    results: Path = Path("results/results.jsonl")
    db: Path | None = None
    summary_file: Path | None = None  # default: $GITHUB_STEP_SUMMARY when set
    junit_file: Path | None = None


def check(request: GateRequest) -> None:
    """The refusals that need no measurement: each a UsageError naming the fix."""
    opts = request.options
    if request.baseline and request.against:
        raise UsageError("give --baseline SRC (A/B) or --against history, not both")
    if not request.baseline and not request.against and not request.budget_file:
        raise UsageError("nothing to compare with: give --baseline SRC, --against history or --budget FILE")
    if opts.max_rounds < opts.rounds:
        raise UsageError(f"--max-rounds {opts.max_rounds} is below --rounds {opts.rounds}")
    if opts.runtime == "torch":
        raise UsageError("the gate measures exported engines: use --runtime ort, openvino, trt or executorch")
    if opts.allow_other_host and request.against != "history":
        raise UsageError("--allow-other-host applies to --against history only")
    if request.budget_file is not None and not request.budget_file.is_file():
        raise UsageError(f"budget file {request.budget_file} not found")


def known_model(name: str, sources: set[str]) -> bool:
    if name in sources:
        return True
    try:
        get_spec(name)
        return True
    except UsageError:
        return False


def run_gate(request: GateRequest, status: Status = quiet) -> dict:
    """Measure and decide; the gate record (appended to the results and the history), its outputs written."""
    started = time.monotonic()
    check(request)
    opts = request.options
    ensure_writable(request.results.parent)
    db_file = history.db_path(request.results, request.db)
    if request.against == "history" and db_file is None:
        raise UsageError("--against history needs a history database (EDGEBENCH_DB is 'off')")
    require(opts.runtime)
    cand = resolve_source("candidate", request.candidate, request.candidate_weights or request.weights, opts,
                          request.weights_dir, request.out, request.data)
    base = resolve_source("baseline", request.baseline, request.baseline_weights or request.weights, opts,
                          request.weights_dir, request.out, request.data) if request.baseline else None
    names = {cand.model, base.model if base else cand.model}
    budget_path = request.budget_file
    budgets = load_budgets(budget_path, lambda m: known_model(m, names)) if budget_path else []
    limits = budgets_for(budgets, cand.model, opts)
    if budget_path and not limits and not request.baseline and not request.against:
        raise UsageError(f"budget file {budget_path} has no limit for {cand.model} on {opts.runtime} "
                         f"{opts.precision} batch {opts.batch}")
    sources = {"candidate": cand.describe(opts)}
    extra: dict = {}
    if base is not None:
        sources["baseline"] = base.describe(opts)
        measured = ab_gate(base, cand, opts, status)
    else:
        measured, record = (history_gate(cand, opts, db_file, status) if request.against == "history"
                            else budget_only(cand, opts, status))
        extra["candidate_record"] = {k: record.get(k) for k in ("id", "latency_ms", "rounds", "stability")}
    metrics = measured["metrics"] + budget_metrics(cand, opts, limits, measured, request.data, status)
    if budget_path:
        extra["budget"] = {"file": str(budget_path), "limits": limits}
    decision = decide(metrics, request.inconclusive)
    record = gate_record(measured, metrics, decision, opts, sources, started, extra)
    append_record(record, request.results, db_file if db_file is not None else "off")
    write_outputs(record, request)
    return record


def write_outputs(record: dict, request: GateRequest) -> None:
    """The Markdown step summary (appended: a CI job may run several gates) and the JUnit file."""
    summary = request.summary_file or (Path(os.environ["GITHUB_STEP_SUMMARY"])
                                       if os.environ.get("GITHUB_STEP_SUMMARY") else None)
    for path, text, mode in ((summary, gate_outputs.markdown(record) if summary else "", "a"),
                             (request.junit_file, gate_outputs.junit(record) if request.junit_file else "", "w")):
        if path is None:
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, mode) as f:
                f.write(text)
        except OSError as exc:
            raise UsageError(f"cannot write {path} ({exc.strerror or exc}); the gate record is in "
                             f"{request.results}") from None
