"""``edgebench gate``: the CI latency regression gate (a thin Click layer over :mod:`edgebench.workflow.gate`).

Exit codes: 0 pass (no change or improvement), 1 regression, 2 usage error, 3 inconclusive
(``--inconclusive pass|fail`` to choose), 70 internal error, 130 interrupted.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgebench.cli.options import build_options, gate_options, json_option, results_option
from edgebench.workflow.gate.run import GateRequest, run_gate
from edgebench.workflow.gate.sources import GateOptions


@click.command("gate")
@click.option("--baseline", metavar="SRC", help="A/B: registry model, ONNX file or artifacts folder.")
@click.option("--candidate", metavar="SRC", required=True, help="Registry model, ONNX file or artifacts folder.")
@click.option("--against", type=click.Choice(["history"]), default=None,
              help="Compare the candidate with the history database instead of a --baseline.")
@click.option("--budget", "budget_file", type=click.Path(dir_okay=False, path_type=Path),
              help="edgebench.toml with [[budget]] tables: p50_ms, p99_ms, peak_rss_mb, engine_mb, "
                   "int8_drop_points, min_int8_speedup per model/runtime/precision/batch.")
@gate_options
@click.option("--inconclusive", type=click.Choice(["pass", "fail"]), default=None,
              help="Exit 0 (pass) or 1 (fail) on an inconclusive verdict [default: exit 3].")
@click.option("--baseline-weights", default=None, help="Weights for a registry --baseline [default: --weights].")
@click.option("--candidate-weights", default=None, help="Weights for a registry --candidate [default: --weights].")
@click.option("--summary", "summary_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Markdown report [default: appended to $GITHUB_STEP_SUMMARY when set].")
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False, path_type=Path), help="JUnit XML report.")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), envvar="EDGEBENCH_DB",
              help="History database [env: EDGEBENCH_DB; default: edgebench.db beside --results].")
@build_options
@results_option
@json_option
def command(baseline: str | None, candidate: str, against: str | None, budget_file: Path | None, gate: GateOptions,
            inconclusive: str | None, baseline_weights: str | None, candidate_weights: str | None,
            summary_file: Path | None, junit_file: Path | None, db: Path | None, weights: str, weights_dir: Path | None,
            out: Path, data: Path | None, results: Path, as_json: bool) -> None:
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
    from edgebench.cli.output import status as spinner
    from edgebench.cli.output import stdout
    from edgebench.results import gate_outputs

    request = GateRequest(gate, candidate, baseline, against, budget_file, inconclusive, weights, candidate_weights,
                          baseline_weights, weights_dir, out, data, results, db, summary_file, junit_file)
    with spinner("gating") as status:
        record = run_gate(request, status)
    if as_json:
        click.echo(json.dumps(record, indent=2, default=str))
    else:
        stdout.print(gate_outputs.table(record))
        if record.get("other_host"):
            click.echo("warning: compared against history from ANOTHER HOST (--allow-other-host)", err=True)
    decision = record["verdict"]
    click.echo(f"gate: {decision['overall']} (exit {decision['exit_code']}); record {record['id']} in {results}",
               err=True)
    raise SystemExit(decision["exit_code"])
