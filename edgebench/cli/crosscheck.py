"""``edgebench crosscheck``: edgebench's OpenVINO median against benchmark_app on the same IR."""

from __future__ import annotations

import statistics
from pathlib import Path

import click
from rich.table import Table

from edgebench.bench.crosscheck import crosscheck_openvino
from edgebench.cli import output
from edgebench.cli.options import (
    FiniteFloat,
    artifacts_option,
    json_option,
    open_results,
    results_option,
    weights_dir_option,
    weights_option,
)
from edgebench.portable import strict_json
from edgebench.workflow.prepare import BuildRequest, ModelSource, prepare


@click.command("crosscheck")
@click.argument("model")
@click.option("--rounds", type=click.IntRange(1, 20), default=3, show_default=True,
              help="Alternating rounds of edgebench and benchmark_app.")
@click.option("--seconds", type=FiniteFloat(1), default=10, show_default=True, help="Seconds per measurement.")
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True, help="Batch size.")
@weights_option
@weights_dir_option
@artifacts_option
@results_option
@json_option
def command(model: str, rounds: int, seconds: float, batch: int, weights: str, weights_dir: Path | None,
            out: Path, results: Path, as_json: bool) -> None:
    """Compare edgebench's OpenVINO median with `benchmark_app -hint latency` on the same IR,
    alternating rounds in one session; prints both and their ratio."""
    results = open_results(results)
    with output.status("cross-checking") as step:
        artifacts = prepare(ModelSource(model, None, weights, weights_dir), ("openvino",), "fp32", BuildRequest(out),
                            step)
        summary = crosscheck_openvino(artifacts, rounds, seconds, batch, results, step)
    if as_json:
        click.echo(strict_json.dumps(summary, indent=2))
        return
    ours, medians = summary["edgebench_p50_ms"], summary["benchmark_app_median_ms"]
    table = Table(title=f"{summary['model']['name']}: edgebench vs benchmark_app (OpenVINO "
                        f"{summary['runtime']['version']}, batch {batch}, LATENCY hint)")
    for col in ("round", "edgebench p50 ms", "benchmark_app median ms", "ratio"):
        table.add_column(col, justify="right")
    for i, (a, b) in enumerate(zip(ours, medians), 1):
        table.add_row(str(i), f"{a:.3f}", f"{b:.3f}", f"{a / b:.3f}")
    table.add_row("median", f"{statistics.median(ours):.3f}", f"{statistics.median(medians):.3f}",
                  f"{summary['ratio']:.3f}")
    output.stdout.print(table)
