"""``edgebench export``: ONNX, verified against PyTorch, and the runtimes' engines."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from edgebench.backends import engine_runtimes
from edgebench.cli.options import (
    NonEmptyPath,
    build_options,
    command_runtimes,
    int8_options,
    json_option,
    parse_batches,
    trt_build_options,
)
from edgebench.cli.output import status, stdout
from edgebench.portable import strict_json
from edgebench.portable.tensorrt.rules import TrtBuildOptions
from edgebench.quantize.int8 import Int8Options
from edgebench.workflow.prepare import BuildRequest, ModelSource, prepare


@click.command("export")
@click.argument("model", required=False)
@click.option("--runtime", type=click.Choice([*engine_runtimes(), "all"]), default="all", show_default=True,
              help="Which engines to build ('all': every runtime usable here).")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True,
              help="Engine precision; int8 calibrates on --data first.")
@click.option("--onnx", "onnx_file", type=NonEmptyPath(path_type=Path),
              help="Import this ONNX file instead of exporting a registry model.")
@click.option("--opset", type=click.IntRange(17, 23), default=17, show_default=True, help="ONNX opset.")
@click.option("--batch", "batches", default="1", show_default=True, callback=parse_batches,
              help="TensorRT: batch sizes the plan's optimisation profile covers (min = smallest, opt = first "
                   "listed, max = largest), e.g. 1,8,32; use the same list as `run --batch`.")
@trt_build_options(also=("batches",))
@int8_options
@build_options
@json_option
def command(model: str | None, runtime: str, precision: str, onnx_file: Path | None, opset: int,
            batches: tuple[int, ...], trt_build: TrtBuildOptions, int8: Int8Options, weights: str,
            weights_dir: Path | None, out: Path, data: Path | None, as_json: bool) -> None:
    """Export MODEL to ONNX, verify it against PyTorch, and build runtime engines."""
    runtimes = command_runtimes({"runtime": runtime})
    source = ModelSource(model, onnx_file, weights, weights_dir)
    with status("preparing") as step:
        artifacts = prepare(source, runtimes, precision, BuildRequest(out, data, opset, int8, {"trt": trt_build}), step)
    manifest = artifacts.manifest
    if as_json:
        click.echo(strict_json.dumps(manifest, indent=2))
        return
    table = Table(title=f"{manifest['model']['name']}: {artifacts.root}")
    for col in ("engine", "file", "rel. error", "cosine", "top-1 agree", "effective"):
        table.add_column(col)
    for key, entry in sorted(manifest["engines"].items()):
        figures = manifest["verification"].get(key, {})
        table.add_row(key, entry["files"][0], f"{figures.get('rel_err', float('nan')):.2e}",
                      f"{figures.get('cosine_min', float('nan')):.6f}", f"{figures.get('top1_agreement', float('nan')):.2f}",
                      str(figures.get("effective_precision", "")))
    stdout.print(table)
