"""``edgebench gate``: the CI latency regression gate (thin Click layer over :mod:`edgebench.workflow.gate`).

Exit codes: 0 pass (no change or improvement), 1 regression, 2 usage error, 3 inconclusive
(``--inconclusive pass|fail`` to choose), 70 internal error, 130 interrupted.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click

from edgebench.bench.guarded import Guard
from edgebench.cli.options import FiniteFloat
from edgebench.portable.errors import UsageError


def _known_model(name: str, sources: set[str]) -> bool:
    from edgebench.models import get_spec
    if name in sources:
        return True
    try:
        get_spec(name)
        return True
    except Exception:  # noqa: BLE001 - get_spec raises UsageError for unknown names
        return False


@click.command("gate")
@click.option("--baseline", metavar="SRC", help="A/B: registry model, ONNX file or artifacts folder.")
@click.option("--candidate", metavar="SRC", required=True, help="Registry model, ONNX file or artifacts folder.")
@click.option("--against", type=click.Choice(["history"]), default=None,
              help="Compare the candidate with the history database instead of a --baseline.")
@click.option("--last", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="--against history: the newest N records of the same key on the same host.")
@click.option("--budget", "budget_file", type=click.Path(dir_okay=False, path_type=Path),
              help="edgebench.toml with [[budget]] tables: p50_ms, p99_ms, peak_rss_mb, engine_mb, "
                   "int8_drop_points, min_int8_speedup per model/runtime/precision/batch.")
@click.option("--runtime", "runtime_name", required=True,
              help="ort | openvino | trt | executorch (the same for both sides).")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True)
@click.option("--batch", type=click.IntRange(1, 4096), default=1, show_default=True)
@click.option("--threads", type=click.IntRange(1, 1024), default=None, help="CPU threads [default: all cores].")
@click.option("--rounds", type=click.IntRange(1, 100), default=5, show_default=True,
              help="Rounds to start with (A/B: paired processes; otherwise candidate processes).")
@click.option("--max-rounds", type=click.IntRange(1, 200), default=15, show_default=True,
              help="A/B: add rounds while the latency verdict is inconclusive, up to this many.")
@click.option("--round-seconds", type=FiniteFloat(0.1), default=3.0, show_default=True,
              help="Minimum timed seconds per round.")
@click.option("--block", "block_iterations", type=click.IntRange(1, 10000), default=25, show_default=True,
              help="A/B: iterations per ABBA block.")
@click.option("--retries", type=click.IntRange(0, 10), default=1, show_default=True,
              help="History and budgets: re-measure a candidate round the noise probe found noisy, up to N times.")
@click.option("--settle-seconds", type=FiniteFloat(0, 600), default=Guard.settle_seconds, show_default=True,
              help="Seconds to wait before such a re-measurement.")
@click.option("--threshold", type=FiniteFloat(0.001, 10), default=0.05, show_default=True,
              help="Relative change that counts (0.05 = 5%).")
@click.option("--inconclusive", type=click.Choice(["pass", "fail"]), default=None,
              help="Exit 0 (pass) or 1 (fail) on an inconclusive verdict [default: exit 3].")
@click.option("--allow-other-host", is_flag=True, help="--against history: use records of another host fingerprint.")
@click.option("--allow-different-inputs", is_flag=True,
              help="A/B: compare sources whose input shape or preprocessing differ.")
@click.option("--baseline-weights", default=None, help="Weights for a registry --baseline [default: --weights].")
@click.option("--candidate-weights", default=None, help="Weights for a registry --candidate [default: --weights].")
@click.option("--accuracy-images", type=click.IntRange(1), default=200, show_default=True,
              help="int8_drop_points budget: evaluation images.")
@click.option("--summary", "summary_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Markdown report [default: appended to $GITHUB_STEP_SUMMARY when set].")
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False, path_type=Path), help="JUnit XML report.")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), envvar="EDGEBENCH_DB",
              help="History database [env: EDGEBENCH_DB; default: edgebench.db beside --results].")
@click.option("--weights", default="auto", show_default=True, metavar="auto|pretrained|random|PATH",
              help="Weights of registry sources.")
@click.option("--weights-dir", type=click.Path(file_okay=False, path_type=Path), envvar="EDGEBENCH_WEIGHTS")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("artifacts"), show_default=True,
              help="Artifacts folder (cache it between CI runs).")
@click.option("--data", type=click.Path(path_type=Path), envvar="EDGEBENCH_DATA",
              help="Images: INT8 calibration, int8_drop_points [env: EDGEBENCH_DATA].")
@click.option("--results", type=click.Path(dir_okay=False, path_type=Path), default=Path("results/results.jsonl"),
              show_default=True, help="JSON-lines results file; the gate record is appended.")
@click.option("--json", "as_json", is_flag=True, help="Print the gate record as JSON on stdout.")
def command(baseline: str | None, candidate: str, against: str | None, last: int, budget_file: Path | None,
         runtime_name: str, precision: str, batch: int, threads: int | None, rounds: int, max_rounds: int,
         round_seconds: float, block_iterations: int, retries: int, settle_seconds: float, threshold: float,
         inconclusive: str | None, allow_other_host: bool, allow_different_inputs: bool, baseline_weights: str | None,
         candidate_weights: str | None, accuracy_images: int, summary_file: Path | None, junit_file: Path | None,
         db: Path | None, weights: str, weights_dir: Path | None, out: Path, data: Path | None, results: Path,
         as_json: bool) -> None:
    """Decide whether --candidate is slower, bigger or less accurate than --baseline (A/B, the
    recommended CI mode), than its history (--against history), or than --budget limits.

    \b
    Exit codes (each outcome its own, for CI scripts to branch on):
      0    pass: no change or an improvement
      1    regression (or a budget exceeded): only the gate exits 1
      2    usage error: bad option, unknown model, missing or unreadable file
      3    inconclusive (--inconclusive pass|fail maps it to 0 or 1)
      70   internal error (a bug; rerun with -v for the traceback)
      130  interrupted (Ctrl-C or SIGTERM)"""
    from edgebench.backends import canonical, require
    from edgebench.bench.paired import PairedSettings
    from edgebench.build.artifacts import ensure_writable
    from edgebench.cli.output import status as spinner
    from edgebench.cli.output import stdout
    from edgebench.results import gate_outputs, history
    from edgebench.results.store import append_record
    from edgebench.workflow import gate

    started = time.monotonic()
    if baseline and against:
        raise UsageError("give --baseline SRC (A/B) or --against history, not both")
    if not baseline and not against and not budget_file:
        raise UsageError("nothing to compare with: give --baseline SRC, --against history or --budget FILE")
    if max_rounds < rounds:
        raise UsageError(f"--max-rounds {max_rounds} is below --rounds {rounds}")
    runtime = canonical(runtime_name)
    if runtime == "torch":
        raise UsageError("the gate measures exported engines: use --runtime ort, openvino, trt or executorch")
    if allow_other_host and against != "history":
        raise UsageError("--allow-other-host applies to --against history only")
    ensure_writable(results.parent)
    db_file = history.db_path(results, db)
    if against == "history" and db_file is None:
        raise UsageError("--against history needs a history database (EDGEBENCH_DB is 'off')")
    opts = gate.GateOptions(runtime=runtime, precision=precision, batch=batch, threads=threads or os.cpu_count() or 1,
                         rounds=rounds, max_rounds=max_rounds, threshold=threshold, last=last,
                         allow_other_host=allow_other_host, allow_different_inputs=allow_different_inputs,
                         paired=PairedSettings(block_iterations=block_iterations, min_seconds=round_seconds),
                         accuracy_images=accuracy_images,
                         guard=Guard(retries=retries, settle_seconds=settle_seconds))
    budget_path = budget_file
    if budget_path is not None and not budget_path.is_file():
        raise UsageError(f"budget file {budget_path} not found")
    require(runtime)
    cand = gate.resolve_source("candidate", candidate, candidate_weights or weights, opts, weights_dir, out, data)
    base = gate.resolve_source("baseline", baseline, baseline_weights or weights, opts, weights_dir, out, data) \
        if baseline else None
    names = {cand.model, base.model if base else cand.model}
    budgets = gate.load_budgets(budget_path, lambda m: _known_model(m, names)) if budget_path else []
    limits = gate.budgets_for(budgets, cand.model, opts)
    if budget_path and not limits and not baseline and not against:
        raise UsageError(f"budget file {budget_path} has no limit for {cand.model} on {runtime} {precision} "
                         f"batch {batch}")
    sources = {"candidate": cand.describe(opts)}
    extra = {}
    with spinner("gating") as status:
        if base is not None:
            sources["baseline"] = base.describe(opts)
            measured = gate.ab_gate(base, cand, opts, status)
        elif against == "history":
            measured, record = gate.history_gate(cand, opts, db_file, status)
            extra["candidate_record"] = {k: record.get(k) for k in ("id", "latency_ms", "rounds", "stability")}
        else:
            measured, record = gate.budget_only(cand, opts, status)
            extra["candidate_record"] = {k: record.get(k) for k in ("id", "latency_ms", "rounds", "stability")}
        metrics = measured["metrics"] + gate.budget_metrics(cand, opts, limits, measured, data, status)
    if budget_path:
        extra["budget"] = {"file": str(budget_path), "limits": limits}
    decision = gate.decide(metrics, inconclusive)
    record = gate.gate_record(measured, metrics, decision, opts, sources, started, extra)
    append_record(record, results, db_file if db_file is not None else "off")
    summary_path = summary_file or (Path(os.environ["GITHUB_STEP_SUMMARY"]) if os.environ.get("GITHUB_STEP_SUMMARY")
                                    else None)
    for path, text, mode in ((summary_path, gate_outputs.markdown(record) if summary_path else "", "a"),
                             (junit_file, gate_outputs.junit(record) if junit_file else "", "w")):
        if path is None:
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, mode) as f:
                f.write(text)
        except OSError as exc:
            raise UsageError(f"cannot write {path} ({exc.strerror or exc}); the gate record is in {results}") from None
    if as_json:
        click.echo(json.dumps(record, indent=2, default=str))
    else:
        stdout.print(gate_outputs.table(record))
        if record.get("other_host"):
            click.echo("warning: compared against history from ANOTHER HOST (--allow-other-host)", err=True)
    click.echo(f"gate: {decision['overall']} (exit {decision['exit_code']}); record {record['id']} in {results}",
               err=True)
    sys.exit(decision["exit_code"])
