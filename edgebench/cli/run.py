"""``edgebench run``: export if needed, then measure latency and memory (and with --accuracy, accuracy)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from edgebench.backends import RUNTIMES
from edgebench.bench.guarded import Guard
from edgebench.cli import output
from edgebench.cli.options import (
    NonEmptyPath,
    build_options,
    int8_options,
    json_option,
    open_results,
    parse_batches,
    protocol_options,
    results_option,
    threads_option,
    trt_build_options,
)
from edgebench.portable import strict_json
from edgebench.portable.errors import EXIT_FAILED, UsageError
from edgebench.portable.protocol import Protocol
from edgebench.portable.tensorrt.rules import TrtBuildOptions, TrtRunOptions
from edgebench.quantize.int8 import Int8Options
from edgebench.workflow.measure import MeasureRequest, measure, measure_with_accuracy
from edgebench.workflow.prepare import BuildRequest, ModelSource, prepare, require_runtime


@click.command("run")
@click.option("--runtime", "runtime_name", required=True, help=" | ".join(RUNTIMES) + ".")
@click.option("--model", help="Registry model name or alias (see `edgebench models`).")
@click.option("--onnx", "onnx_file", type=NonEmptyPath(path_type=Path), help="Benchmark this ONNX file instead.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True,
              help="Engine precision (int8 calibrates on --data).")
@click.option("--batch", "batches", default="1", show_default=True, callback=parse_batches,
              help="Comma-separated batch sizes, one measurement each, e.g. 1,8.")
@threads_option
@click.option("--device", default=None, help="Runtime device (ORT: cpu|cuda|tensorrt|auto; OpenVINO: CPU|GPU|NPU).")
@trt_build_options(also=("cuda_graph",))
@click.option("--cuda-graph", is_flag=True,
              help="TensorRT: capture execute_async_v3 once as a CUDA graph and replay it in the timed loop.")
@click.option("--profile", is_flag=True,
              help="Per-layer times on 10 runs after the timed loop, in the record's runtime.settings.layer_profile "
                   "and as a table by operation: ORT session profiling, OpenVINO PERF_COUNT (with each layer's "
                   "kernel and precision), TensorRT trt.IProfiler. Not for torch.")
@int8_options
@protocol_options
@build_options
@results_option
@click.option("--accuracy", is_flag=True,
              help="Also measure accuracy on --data; with int8, FP32 and INT8 latency too: one combined record.")
@json_option
def command(runtime_name: str, model: str | None, onnx_file: Path | None, precision: str, batches: tuple[int, ...],
            threads: int | None, device: str | None, trt_build: TrtBuildOptions, cuda_graph: bool, profile: bool,
            int8: Int8Options, protocol: Protocol, guard: Guard, weights: str, weights_dir: Path | None, out: Path,
            data: Path | None, results: Path, as_json: bool, accuracy: bool = False) -> None:
    """Export if needed, then measure latency and memory, one subprocess per batch size.

    With --runtime trt the plan's optimisation profile covers every --batch (min = smallest,
    opt = first listed, max = largest); a different list rebuilds the plan.
    """
    from edgebench.backends import canonical
    runtime = canonical(runtime_name)
    if profile and runtime == "torch":
        raise UsageError("--profile: per-layer times exist for ort, openvino and trt, not torch")
    if onnx_file is not None and runtime == "torch":
        raise UsageError("--onnx: the torch runtime runs registry models (--model); an ONNX file runs on ort, "
                         "openvino or trt")
    with_accuracy = accuracy or (precision == "int8" and data is not None)
    if with_accuracy and data is None:
        raise UsageError("--accuracy needs images: pass --data DIR (or set EDGEBENCH_DATA)")
    require_runtime(runtime, device)
    results = open_results(results)
    source = ModelSource(model, onnx_file, weights, weights_dir)
    request = MeasureRequest(runtime, precision, batches, threads, device, profile, protocol, guard,
                             TrtRunOptions(cuda_graph=cuda_graph) if runtime == "trt" else None, results)
    with output.status("preparing") as step:
        artifacts = prepare(source, (runtime,), precision, BuildRequest(out, data, int8=int8,
                                                                         backend={"trt": trt_build}), step)
        if with_accuracy:
            record, summary, latency = measure_with_accuracy(artifacts, request, data, step)
        else:
            records = measure(artifacts, request, step)
    if with_accuracy:
        _print_accuracy(artifacts, record.to_dict(), summary, latency, runtime, request, as_json)
        if record.status != "ok":
            sys.exit(EXIT_FAILED)
        return
    if as_json:
        click.echo(strict_json.dumps(records, indent=2))
    else:
        output.latency_table(records, results)
        output.layer_profiles({f"{r['precision']} b{r['batch']}": r for r in records})
    failed = [r for r in records if r["status"] != "ok"]
    for record in failed:
        click.echo(f"error: batch {record['batch']} on {runtime}: {record['error']}", err=True)
    if failed:
        sys.exit(EXIT_FAILED)


def _print_accuracy(artifacts, record: dict, summary: dict, latency: dict, runtime: str, request: MeasureRequest,
                    as_json: bool) -> None:
    if as_json:
        click.echo(strict_json.dumps(record, indent=2))
        return
    import os
    output.accuracy(summary, f"{artifacts.manifest['model']['name']} on {runtime}: {summary['images']} evaluation images")
    output.paired_latency(latency, record.get("speedup_paired") or {}, request.threads or os.cpu_count(),
                          request.results)
    output.layer_profiles({key.replace("/b", " b"): rec for key, rec in latency.items()})
    fallback = record.get("int8_fallback")
    if fallback:
        kept = fallback["restored_to_float"] or []
        click.echo(f"--max-drop kept {len(kept)} layer(s) in float ({', '.join(kept[:6])}"
                   f"{' ...' if len(kept) > 6 else ''}); latency vs every layer in INT8: "
                   + ", ".join(f"{k} x{output.fmt(v)}" for k, v in fallback["latency_cost_p50"].items()))
