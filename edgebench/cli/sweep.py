"""``edgebench sweep``: many models x runtimes x precisions, one protocol, ending with the report table."""

from __future__ import annotations

from pathlib import Path

import click

from edgebench.bench.guarded import Guard
from edgebench.cli import output
from edgebench.cli.options import (
    CommaList,
    Threads,
    build_options,
    family_option,
    int8_options,
    open_results,
    parse_batches,
    protocol_options,
    results_option,
)
from edgebench.portable.errors import UsageError
from edgebench.portable.protocol import Protocol
from edgebench.quantize.int8 import Int8Options
from edgebench.results.store import read_records
from edgebench.workflow.prepare import BuildRequest
from edgebench.workflow.sweep import SweepRequest, sweep


@click.command("sweep")
@click.option("--models", "model_names", type=CommaList(), default="all", show_default=True,
              help="Comma-separated model names, or 'all'.")
@family_option
@click.option("--runtimes", "runtime_names", type=CommaList(), default="ort,openvino", show_default=True,
              help="Comma-separated runtimes.")
@click.option("--precisions", type=CommaList(("fp32", "fp16", "int8")), default="fp32", show_default=True,
              help="Comma-separated precisions (fp32,fp16,int8).")
@click.option("--batch", "batches", default="1", show_default=True, callback=parse_batches,
              help="Comma-separated batch sizes.")
@click.option("--threads", type=Threads(), default=None, help="CPU threads [default: all cores].")
@click.option("--skip-slow", is_flag=True, help="Leave out the big models (VGG, ResNet-152, ViT-B, Mixer-B, ...).")
@click.option("--accuracy-images", type=click.IntRange(0), default=0, show_default=True, metavar="N",
              help="With int8 and --data: also compare INT8 with FP32 on the first N evaluation images "
                   "(agreement and cosine; top-1 drop where the weights are trained).")
@click.option("--profile", is_flag=True, help="Per-layer times in each record, as `run --profile` (not for torch).")
@int8_options
@protocol_options
@build_options
@results_option
def command(model_names: tuple[str, ...], family: str | None, runtime_names: tuple[str, ...],
            precisions: tuple[str, ...], batches: tuple[int, ...],
            threads: int | None, skip_slow: bool, accuracy_images: int, profile: bool, int8: Int8Options,
            protocol: Protocol,
            guard: Guard, weights: str, weights_dir: Path | None, out: Path, data: Path | None,
            results: Path) -> None:
    """Measure many models x runtimes x precisions; a model that cannot go through a runtime
    gets a failed record with the precise reason, and the sweep goes on. Ends with `report`."""
    import os

    from edgebench.backends import canonical
    from edgebench.models import get_spec, list_models

    specs = list_models(family) if model_names == ("all",) else [get_spec(n) for n in model_names]
    specs = [s for s in specs if not (skip_slow and s.slow)]
    if not specs:
        raise UsageError(f"no models to sweep (--models {','.join(model_names)}"
                         f"{f' --family {family}' if family else ''}{' --skip-slow' if skip_slow else ''})")
    runtimes = tuple(canonical(r) for r in runtime_names)
    if "int8" in precisions and data is None:
        raise UsageError("--precisions int8 needs calibration images: pass --data DIR (or set EDGEBENCH_DATA)")
    results = open_results(results)
    threads = threads or os.cpu_count()
    start = len(read_records(results).records)
    request = SweepRequest(tuple(s.name for s in specs), runtimes, precisions, batches, threads, accuracy_images, weights,
                           weights_dir, protocol, guard, BuildRequest(out, data, int8=int8), results, profile)
    with output.status("sweeping") as step:
        for model, runtime, precision, error in sweep(request, step):
            if error is not None:
                click.echo(f"error: {model} on {runtime} {precision}: {error}", err=True)
    output.zoo(read_records(results).records[start:], batches[0], threads, f"sweep: {len(specs)} models; {results}")
