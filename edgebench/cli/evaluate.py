"""``edgebench eval``: top-1/top-5 of the real engines on the evaluation split."""

from __future__ import annotations

from pathlib import Path

import click

from edgebench.cli import output
from edgebench.cli.calibrate import need_data
from edgebench.cli.options import (
    build_options,
    json_option,
    open_results,
    results_option,
    threads_option,
)
from edgebench.portable import strict_json
from edgebench.workflow.accuracy import evaluate
from edgebench.workflow.prepare import BuildRequest, ModelSource, prepare


@click.command("eval")
@click.argument("model")
@click.option("--runtime", type=click.Choice(["ort", "openvino", "torch"]), default="ort", show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "int8"]), default="fp32", show_default=True)
@threads_option
@click.option("--limit", type=click.IntRange(1), default=None, help="Evaluate only the first N evaluation images.")
@build_options
@results_option
@json_option
def command(model: str, runtime: str, precision: str, threads: int | None, limit: int | None, weights: str,
            weights_dir: Path | None, out: Path, data: Path | None, results: Path, as_json: bool) -> None:
    """Top-1/top-5 of PyTorch FP32, the runtime's FP32 and (int8) INT8 engine on the evaluation split."""
    data = need_data(data, "evaluation")
    results = open_results(results)
    with output.status("evaluating") as step:
        artifacts = prepare(ModelSource(model, None, weights, weights_dir),
                            (runtime,) if runtime != "torch" else ("ort",), precision, BuildRequest(out, data), step)
        record, summary = evaluate(artifacts, runtime, precision, data, threads, results, limit=limit, status=step)
    if as_json:
        click.echo(strict_json.dumps(record.to_dict(), indent=2))
        return
    output.accuracy(summary, f"{artifacts.manifest['model']['name']} on {runtime}: {summary['images']} "
                             f"evaluation images; record appended to {results}")
