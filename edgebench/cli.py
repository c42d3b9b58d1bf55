"""The ``edgebench`` command line (Click).

Every problem the user can act on (unknown model, missing runtime, corrupt file,
bad option value) is one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import click
from click.core import ParameterSource
from rich.console import Console
from rich.table import Table

from . import __version__
from .calibration.int8 import Int8Options
from .errors import EdgebenchError, UsageError
from .int8_cli import int8_options
from .runtimes.tensorrt_config import (
    DEFAULT_WORKSPACE_MB,
    HARDWARE_COMPAT_CLI,
    LEGACY_CALIBRATOR_NOTE,
    TrtBuildOptions,
    TrtRunOptions,
)

_WIDTH = None if sys.stdout.isatty() else 200  # rich falls back to 80 columns in pipes and logs
console = Console(stderr=True)
stdout = Console(width=_WIDTH)


class _Group(click.Group):
    """A Click group that turns EdgebenchError into one line and exit code 2, and any other
    failure into one line and exit code 1 (the traceback only with --verbose)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except EdgebenchError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
            if logging.getLogger().isEnabledFor(logging.INFO):
                raise
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            click.echo(f"error: internal error: {type(exc).__name__}: {first} (run with -v for details)", err=True)
            sys.exit(1)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s: %(message)s", stream=sys.stderr)
    for noisy in ("nncf", "torch", "openvino"):
        logging.getLogger(noisy).setLevel(logging.ERROR if not verbose else logging.INFO)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgebench")
@click.option("-v", "--verbose", is_flag=True, help="Log what each step does.")
def main(verbose: bool) -> None:
    """Export image classifiers to ONNX Runtime, OpenVINO and TensorRT engines and
    measure their latency, memory and accuracy with one protocol."""
    _setup_logging(verbose)


# ---------------------------------------------------------------- shared options

def _parse_batches(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        batches = tuple(int(b) for b in value.split(",") if b.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers") from None
    if not batches or any(b < 1 or b > 4096 for b in batches):
        raise click.BadParameter(f"batch sizes must be integers from 1 to 4096, got {value!r}")
    return tuple(dict.fromkeys(batches))


weights_option = click.option(
    "--weights", default="auto", show_default=True, metavar="auto|pretrained|random|PATH",
    help="auto: local file, else hub cache, else random (with a warning); pretrained: download; "
         "random: seeded init; PATH: .safetensors or .pth.")
weights_dir_option = click.option(
    "--weights-dir", type=click.Path(file_okay=False, path_type=Path), envvar="EDGEBENCH_WEIGHTS",
    help="Folder of local weights files, looked up by model name [env: EDGEBENCH_WEIGHTS].")
artifacts_option = click.option(
    "--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("artifacts"),
    show_default=True, help="Artifacts folder; each model gets <out>/<model>/.")
data_option = click.option(
    "--data", type=click.Path(path_type=Path), envvar="EDGEBENCH_DATA",
    help="Image folder (labels.csv, ImageFolder, or unlabelled) used to verify exports [env: EDGEBENCH_DATA].")
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")


def protocol_options(command):
    """The latency protocol's options, shared by every measuring command."""
    options = [
        click.option("--warmup", type=click.IntRange(0), default=10, show_default=True, help="Warm-up iterations."),
        click.option("--warmup-seconds", type=click.FloatRange(0), default=1.0, show_default=True,
                     help="Minimum warm-up time."),
        click.option("--iterations", type=click.IntRange(1), default=100, show_default=True,
                     help="Minimum timed iterations."),
        click.option("--min-seconds", type=click.FloatRange(0), default=5.0, show_default=True,
                     help="Minimum timed seconds."),
        click.option("--retries", type=click.IntRange(0, 10), default=2, show_default=True,
                     help="Re-measurements when the noise probe shows a bad phase."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def trt_build_options(command):
    """TensorRT build options (export and run); each needs TensorRT among the runtimes."""
    options = [
        click.option("--trt-workspace", type=click.IntRange(1), default=DEFAULT_WORKSPACE_MB, show_default=True,
                     metavar="MiB", help="TensorRT: builder workspace memory-pool limit, in MiB."),
        click.option("--trt-hw-compat", type=click.Choice(list(HARDWARE_COMPAT_CLI)), default="none",
                     show_default=True,
                     help="TensorRT: hardware-compatible plan; ampere+ runs on any Ampere or newer GPU, "
                          "same-compute-capability on GPUs of the builder's compute capability (discrete GPUs "
                          "only, not Jetson; may be slower)."),
        click.option("--trt-timing-cache", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="TensorRT: timing cache read before and updated after every build, e.g. one file "
                          "shared by all models [default: <out>/<model>/trt.timing-cache]."),
        click.option("--trt-legacy-calibrator", is_flag=True,
                     help="TensorRT INT8 by implicit calibration (IInt8EntropyCalibrator2) instead of the Q/DQ "
                          "ONNX. DEPRECATED since TensorRT 10.1, removed in 11.x; for JetPack 5 (TensorRT 8.5)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


TRT_BUILD_PARAMS = ("trt_workspace", "trt_hw_compat", "trt_timing_cache", "trt_legacy_calibrator")
TRT_RUN_PARAMS = ("cuda_graph",)


def _trt_build_options(ctx: click.Context, runtimes: tuple[str, ...], batches: tuple[int, ...], precision: str,
                       trt_only: tuple[str, ...] = TRT_BUILD_PARAMS + TRT_RUN_PARAMS) -> TrtBuildOptions:
    """The TensorRT build options from the command line; UsageError when any of ``trt_only``
    is given but TensorRT is not among ``runtimes``."""
    flags = {p.name: p.opts[0] for p in ctx.command.params}
    given = [flags[n] for n in trt_only if n in ctx.params and ctx.get_parameter_source(n) is not ParameterSource.DEFAULT]
    if given and "trt" not in runtimes:
        raise UsageError(f"{', '.join(given)}: TensorRT options, but the runtime is {', '.join(runtimes) or 'none'} "
                         "(use --runtime trt)")
    p = ctx.params
    if p["trt_legacy_calibrator"]:
        if precision != "int8":
            raise UsageError("--trt-legacy-calibrator applies to --precision int8 only")
        click.echo(f"warning: {LEGACY_CALIBRATOR_NOTE}", err=True)
    return TrtBuildOptions(batches=batches, workspace_mb=p["trt_workspace"],
                           hardware_compatibility=HARDWARE_COMPAT_CLI[p["trt_hw_compat"]],
                           timing_cache=str(p["trt_timing_cache"]) if p["trt_timing_cache"] else None,
                           legacy_calibrator=p["trt_legacy_calibrator"])


results_option = click.option(
    "--results", type=click.Path(dir_okay=False, path_type=Path), default=Path("results/results.jsonl"),
    show_default=True, help="JSON-lines results file (records are appended, never rewritten).")


@contextmanager
def _status(message: str) -> Iterator:
    """A spinner on stderr whose text follows the steps of a long operation."""
    with console.status(message) as status:
        yield lambda msg: status.update(msg)


# ---------------------------------------------------------------- models

@main.command()
@click.option("--family", type=click.Choice(["mobile-cnn", "cnn", "transformer", "hybrid", "mlp"]),
              help="Only models of this family.")
@weights_dir_option
@json_option
def models(family: str | None, weights_dir: Path | None, as_json: bool) -> None:
    """List the registered models with their computed params and GMACs."""
    from .models import list_models
    from .models.catalog import describe

    rows = [describe(spec, weights_dir) for spec in list_models(family)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"edgebench models ({len(rows)})")
    for col in ("model", "family", "input", "params (M)", "GMACs", "weights", "not supported", "description"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(row["name"], row["family"], str(row["input_shape"][1]), f"{row['params_m']:.2f}",
                      f"{row['gmacs']:.3f}", row["weights_available"],
                      "; ".join(f"{k}: {v}" for k, v in row["unsupported"].items()), row["description"])
    stdout.print(table)


# ---------------------------------------------------------------- export

RUNTIME_CHOICES = ["ort", "openvino", "trt", "all"]


def _export_runtimes(runtime: str) -> tuple[str, ...]:
    from .export import ENGINE_BUILDERS
    from .runtimes import runtime_class
    if runtime != "all":
        return (runtime,)
    return tuple(rt for rt in ENGINE_BUILDERS if runtime_class(rt).availability().usable)


@main.command()
@click.argument("model", required=False)
@click.option("--runtime", type=click.Choice(RUNTIME_CHOICES), default="all", show_default=True,
              help="Which engines to build ('all': every runtime usable here).")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True,
              help="Engine precision; int8 calibrates on --data first.")
@click.option("--onnx", "onnx_file", type=click.Path(path_type=Path),
              help="Import this ONNX file instead of exporting a registry model.")
@click.option("--opset", type=click.IntRange(17, 23), default=17, show_default=True, help="ONNX opset.")
@click.option("--batch", "batches", default="1", show_default=True, callback=_parse_batches,
              help="TensorRT: batch sizes the plan's optimisation profile covers (min = smallest, opt = first "
                   "listed, max = largest), e.g. 1,8,32; use the same list as `run --batch`.")
@trt_build_options
@int8_options
@weights_option
@weights_dir_option
@artifacts_option
@data_option
@json_option
@click.pass_context
def export(ctx: click.Context, model: str | None, runtime: str, precision: str, onnx_file: Path | None, opset: int,
           batches: tuple[int, ...], trt_workspace: int, trt_hw_compat: str, trt_timing_cache: Path | None,
           trt_legacy_calibrator: bool, int8: Int8Options, weights: str, weights_dir: Path | None, out: Path,
           data: Path | None, as_json: bool) -> None:
    """Export MODEL to ONNX, verify it against PyTorch, and build runtime engines."""
    runtimes = _export_runtimes(runtime)
    trt = _trt_build_options(ctx, runtimes, batches, precision, ("batches", *TRT_BUILD_PARAMS))
    artifacts = _prepare(model, onnx_file, runtimes, precision, weights, weights_dir, out, data, opset, trt=trt,
                         int8=int8)
    manifest = artifacts.manifest
    if as_json:
        click.echo(json.dumps(manifest, indent=2, default=str))
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


def _prepare(model: str | None, onnx_file: Path | None, runtimes: tuple[str, ...], precision: str, weights: str,
             weights_dir: Path | None, out: Path, data: Path | None, opset: int = 17,
             trt: TrtBuildOptions | None = None, int8: Int8Options | None = None):
    """Export (or import) and build engines for ``runtimes``; reuse what is current.

    ``trt``: the TensorRT build options (profile batches, workspace, ...); default: batch 1.
    ``int8``: how --precision int8 calibrates (--num, --method, --seed, --max-drop).
    """
    from .export.pipeline import export_model, import_onnx
    if (model is None) == (onnx_file is None):
        raise UsageError("give either a MODEL name or --onnx FILE")

    def build(runtimes: tuple[str, ...], build_precision: str):
        with _status("preparing") as status:
            if onnx_file is not None:
                return import_onnx(onnx_file, runtimes, build_precision, out, data, status=status, trt=trt)
            return export_model(model, runtimes, build_precision, weights, str(weights_dir) if weights_dir else None,
                                out, data, opset, status=status, trt=trt)

    artifacts = build(runtimes, "fp32" if precision == "int8" else precision)
    if precision == "int8":
        from .calibration.int8 import ensure_int8
        artifacts = ensure_int8(artifacts, runtimes, data, int8 or Int8Options())
        if "trt" in runtimes:  # the TensorRT INT8 plan is built from the Q/DQ ONNX that calibration stores
            artifacts = build(("trt",), "int8")
    return artifacts


# ---------------------------------------------------------------- run

@main.command()
@click.option("--runtime", "runtime_name", required=True, help="ort | openvino | torch | trt.")
@click.option("--model", help="Registry model name or alias (see `edgebench models`).")
@click.option("--onnx", "onnx_file", type=click.Path(path_type=Path), help="Benchmark this ONNX file instead.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True,
              help="Engine precision (int8 calibrates on --data).")
@click.option("--batch", "batches", default="1", show_default=True, callback=_parse_batches,
              help="Comma-separated batch sizes, one measurement each, e.g. 1,8.")
@click.option("--threads", type=click.IntRange(1, 1024), default=None,
              help="CPU threads for the runtime [default: all cores].")
@click.option("--device", default=None, help="Runtime device (ORT: cpu|cuda|tensorrt|auto; OpenVINO: CPU|GPU|NPU).")
@trt_build_options
@click.option("--cuda-graph", is_flag=True,
              help="TensorRT: capture execute_async_v3 once as a CUDA graph and replay it in the timed loop.")
@click.option("--profile", is_flag=True,
              help="Per-layer times on 10 runs after the timed loop, in the record's runtime.settings.layer_profile "
                   "and as a table by operation: ORT session profiling, OpenVINO PERF_COUNT (with each layer's "
                   "kernel and precision), TensorRT trt.IProfiler. Not for torch.")
@int8_options
@protocol_options
@weights_option
@weights_dir_option
@artifacts_option
@data_option
@results_option
@click.option("--accuracy", is_flag=True,
              help="Also measure accuracy on --data; with int8, FP32 and INT8 latency too: one combined record.")
@json_option
@click.pass_context
def run(ctx: click.Context, runtime_name: str, model: str | None, onnx_file: Path | None, precision: str,
        batches: tuple[int, ...], threads: int | None, device: str | None, trt_workspace: int, trt_hw_compat: str,
        trt_timing_cache: Path | None, trt_legacy_calibrator: bool, cuda_graph: bool, profile: bool,
        int8: Int8Options, warmup: int,
        warmup_seconds: float, iterations: int, min_seconds: float, retries: int, weights: str,
        weights_dir: Path | None, out: Path, data: Path | None, results: Path, as_json: bool,
        accuracy: bool = False) -> None:
    """Export if needed, then measure latency and memory, one subprocess per batch size.

    With --runtime trt the plan's optimisation profile covers every --batch (min = smallest,
    opt = first listed, max = largest); a different list rebuilds the plan.
    """
    import os

    from .runtimes import canonical, require

    runtime = canonical(runtime_name)
    trt_build = _trt_build_options(ctx, (runtime,), batches, precision)
    trt_run = TrtRunOptions(cuda_graph=cuda_graph)
    if profile and runtime == "torch":
        raise UsageError("--profile: per-layer times exist for ort, openvino and trt, not torch")
    if accuracy or (precision == "int8" and data is not None):
        from .int8_cli import run_accuracy
        run_accuracy(runtime_name, model, onnx_file, precision, batches, threads, device, warmup, warmup_seconds,
                     iterations, min_seconds, retries, weights, weights_dir, out, data, results, as_json,
                     trt_build=trt_build, trt_run=trt_run, int8=int8, profile=profile)
        return

    from .bench import Protocol
    from .export.artifacts import ensure_writable

    require(runtime)
    ensure_writable(results.parent)
    protocol = Protocol(warmup, warmup_seconds, iterations, min_seconds)
    artifacts = _prepare(model, onnx_file, (runtime,), precision, weights, weights_dir, out, data, trt=trt_build,
                         int8=int8)
    records = _measure(artifacts, runtime, precision, batches, threads or os.cpu_count(), device, protocol,
                       retries, results, trt_run, profile)
    if as_json:
        click.echo(json.dumps(records, indent=2, default=str))
    else:
        _print_latency(records, results)
        print_layer_profiles({f"{r['precision']} b{r['batch']}": r for r in records})
    failed = [r for r in records if r["status"] != "ok"]
    for record in failed:
        click.echo(f"error: batch {record['batch']} on {runtime}: {record['error']}", err=True)
    if failed:
        sys.exit(1)


def _measure(artifacts, runtime: str, precision: str, batches: tuple[int, ...], threads: int, device: str | None,
             protocol, retries: int, results: Path, trt: TrtRunOptions | None = None,
             profile: bool = False) -> list[dict]:
    """One guarded measurement per batch size; each record is appended as soon as it exists."""
    from .bench import append_record
    from .bench.runner import Guard, benchmark
    from .runtimes import RuntimeOptions
    records = []
    with _status("measuring") as status:
        for batch in batches:
            status(f"measuring {artifacts.manifest['model']['name']} on {runtime} {precision}, batch {batch}")
            options = RuntimeOptions(precision=precision, threads=threads, device=device, batches=(batch,),
                                     profile=profile, trt=trt or TrtRunOptions())
            record = benchmark(artifacts, runtime, options, protocol, Guard(retries=retries))
            append_record(record, results)  # saved before the next measurement starts
            records.append(record)
    return records


def print_layer_profiles(records: dict[str, dict], top: int = 12) -> None:
    """Per-layer profiles (``--profile``) folded by operation: one table per record that has one."""
    from .runtimes.layer_profile import by_op
    for title, record in records.items():
        rows = ((record.get("runtime") or {}).get("settings") or {}).get("layer_profile")
        if not rows:
            continue
        table = Table(title=f"{title}: time by operation over {len(rows)} layers (profiled runs, outside the timed loop)")
        for col in ("op", "kernel", "layers", "mean ms", "share %"):
            table.add_column(col, justify="right" if col in ("layers", "mean ms", "share %") else "left")
        for g in by_op(rows)[:top]:
            table.add_row(g["op"], g["kernel"], str(g["layers"]), f"{g['mean_ms']:.3f}", f"{100 * g['share']:.1f}")
        stdout.print(table)


def _print_latency(records: list[dict], results: Path) -> None:
    table = Table(title=f"latency (ms); records appended to {results}")
    for col in ("model", "runtime", "precision", "batch", "thr", "p50", "p90", "p99", "min", "max", "std",
                "img/s", "peak RSS MB", "stability"):
        table.add_column(col, justify="right" if col not in ("model", "runtime", "stability") else "left")
    for r in records:
        lat = r.get("latency_ms") or {}
        mem = r.get("memory_mb") or {}
        precision = r["precision"] if r.get("effective_precision") in (None, r["precision"]) else \
            f"{r['precision']} (runs {r['effective_precision']})"
        fmt = (lambda k, lat=lat: f"{lat[k]:.2f}" if k in lat else "-")
        table.add_row(r["model"]["name"], f"{r['runtime']['name']} {r['runtime'].get('version') or ''}", precision,
                      str(r["batch"]), str(r["threads"]), fmt("p50"), fmt("p90"), fmt("p99"), fmt("min"), fmt("max"),
                      fmt("std"), f"{lat['throughput_ips']:.1f}" if lat else "-", str(mem.get("peak", "-")),
                      r["stability"]["verdict"] if r["status"] == "ok" else f"failed: {r['error']}")
    stdout.print(table)



# ---------------------------------------------------------------- sweep, report, crosscheck

def _split(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


@main.command()
@click.option("--models", "model_names", default="all", show_default=True,
              help="Comma-separated model names, or 'all'.")
@click.option("--family", type=click.Choice(["mobile-cnn", "cnn", "transformer", "hybrid", "mlp"]),
              help="Only models of this family.")
@click.option("--runtimes", "runtime_names", default="ort,openvino", show_default=True,
              help="Comma-separated runtimes.")
@click.option("--precisions", default="fp32", show_default=True, help="Comma-separated precisions (fp32,fp16,int8).")
@click.option("--batch", "batches", default="1", show_default=True, callback=_parse_batches,
              help="Comma-separated batch sizes.")
@click.option("--threads", type=click.IntRange(1, 1024), default=None, help="CPU threads [default: all cores].")
@click.option("--skip-slow", is_flag=True, help="Leave out the big models (VGG, ResNet-152, ViT-B, Mixer-B, ...).")
@click.option("--accuracy-images", type=click.IntRange(0), default=0, show_default=True, metavar="N",
              help="With int8 and --data: also compare INT8 with FP32 on the first N evaluation images "
                   "(agreement and cosine; top-1 drop where the weights are trained).")
@click.option("--profile", is_flag=True, help="Per-layer times in each record, as `run --profile` (not for torch).")
@int8_options
@protocol_options
@weights_option
@weights_dir_option
@artifacts_option
@data_option
@results_option
def sweep(model_names: str, family: str | None, runtime_names: str, precisions: str, batches: tuple[int, ...],
          threads: int | None, skip_slow: bool, accuracy_images: int, profile: bool, int8: Int8Options, warmup: int,
          warmup_seconds: float, iterations: int,
          min_seconds: float, retries: int, weights: str, weights_dir: Path | None, out: Path, data: Path | None,
          results: Path) -> None:
    """Measure many models x runtimes x precisions; a model that cannot go through a runtime
    gets a failed record with the precise reason, and the sweep goes on. Ends with `report`."""
    import os

    from .bench import Protocol, append_record, new_record, read_records
    from .export.artifacts import ensure_writable
    from .models import get_spec, list_models
    from .models.catalog import complexity_of
    from .runtimes import canonical

    specs = list_models(family) if model_names == "all" else [get_spec(n) for n in _split(model_names)]
    specs = [s for s in specs if not (skip_slow and s.slow)]
    runtimes = tuple(canonical(r) for r in _split(runtime_names))
    wanted = _split(precisions)
    if not set(wanted) <= {"fp32", "fp16", "int8"}:
        raise UsageError(f"--precisions takes fp32, fp16, int8; got {precisions!r}")
    ensure_writable(results.parent)
    protocol = Protocol(warmup, warmup_seconds, iterations, min_seconds)
    threads = threads or os.cpu_count()
    start = len(read_records(results))
    for spec in specs:
        for runtime in runtimes:
            for precision in wanted:
                try:
                    if runtime in spec.unsupported:
                        raise UsageError(f"{spec.name} cannot run on {runtime}: {spec.unsupported[runtime]}")
                    artifacts = _prepare(spec.name, None, (runtime,), precision, weights, weights_dir, out, data,
                                         trt=TrtBuildOptions(batches=batches), int8=int8)
                    _measure(artifacts, runtime, precision, batches, threads, None, protocol, retries, results,
                             profile=profile and runtime != "torch")
                    if precision == "int8" and accuracy_images and data is not None:
                        from .int8_cli import sweep_accuracy
                        sweep_accuracy(artifacts, runtime, data, threads, accuracy_images, results)
                except Exception as exc:  # noqa: BLE001 - one model's failure must not stop the sweep
                    if not isinstance(exc, EdgebenchError):
                        exc = EdgebenchError(f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}")
                    click.echo(f"error: {spec.name} on {runtime} {precision}: {exc}", err=True)
                    found = complexity_of(spec)
                    for batch in batches:
                        append_record(new_record(
                            "latency", status="failed", error=str(exc), precision=precision, batch=batch,
                            threads=threads, runtime={"name": runtime},
                            model={"name": spec.name, "family": spec.family, "params": found.params,
                                   "gmacs": round(found.gmacs, 4)},
                            stability={"verdict": "not measured"}), results)
    _print_report(read_records(results)[start:], batches[0], threads, f"sweep: {len(specs)} models; {results}")


def _print_report(records: list[dict], batch: int, threads: int | None, title: str) -> None:
    from .bench.report import zoo_rows, zoo_table
    rows, columns = zoo_rows(records, batch, threads)
    stdout.print(zoo_table(rows, columns, title))


@main.command()
@click.option("--results", "results", type=click.Path(dir_okay=False, path_type=Path), multiple=True,
              default=[Path("results/results.jsonl")], show_default=True,
              help="JSON-lines results file; repeat to read several.")
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True, help="Batch size to show.")
@click.option("--threads", type=click.IntRange(1), default=None, help="Only records measured with this many threads.")
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "csv", "json", "html"]), default="table",
              show_default=True, help="table: the terminal table; markdown: its rows; csv: one row per measurement; "
                                      "html: one self-contained page with the figures.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the report here [default: stdout].")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Shortcut for --format html --out FILE.")
@click.option("--plots", type=click.Path(file_okay=False, path_type=Path), help="Also write each figure as PNG and SVG.")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), help="Also read the results history database.")
@click.option("--measure-peak", is_flag=True,
              help="First measure this machine's FP32 and INT8 GEMM peak (ONNX Runtime, --threads or all cores) "
                   "and append it to the first --results file, for the attained-compute figure.")
@json_option
def report(results: tuple[Path, ...], batch: int, threads: int | None, fmt: str, out: Path | None,
           html_out: Path | None, plots: Path | None, db: Path | None, measure_peak: bool, as_json: bool) -> None:
    """A report of results files: by default one table, a row per model grouped by family, p50 per runtime and
    precision, INT8 speed-up and peak RSS (the newest record of each kind wins); --html FILE writes one
    self-contained page with the figures (Pareto, INT8 speed-up, time by operator class, attained compute,
    memory, latency distributions) and every record."""
    from .report import make_report
    fmt, out = ("html", html_out) if html_out else ("json" if as_json else fmt, out)
    make_report(list(results), batch=batch, threads=threads, fmt=fmt, out=out, plots=plots, db=db,
                measure_peak=measure_peak, console=stdout)


@main.command()
@click.argument("model")
@click.option("--rounds", type=click.IntRange(1, 20), default=3, show_default=True,
              help="Alternating rounds of edgebench and benchmark_app.")
@click.option("--seconds", type=click.FloatRange(1), default=10, show_default=True, help="Seconds per measurement.")
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True, help="Batch size.")
@weights_option
@weights_dir_option
@artifacts_option
@results_option
@json_option
def crosscheck(model: str, rounds: int, seconds: float, batch: int, weights: str, weights_dir: Path | None,
               out: Path, results: Path, as_json: bool) -> None:
    """Compare edgebench's OpenVINO median with `benchmark_app -hint latency` on the same IR,
    alternating rounds in one session; prints both and their ratio."""
    import os
    import statistics

    from .bench import Protocol, append_record, new_record
    from .bench.crosscheck import run_benchmark_app
    from .bench.runner import Guard, benchmark
    from .runtimes import RuntimeOptions

    artifacts = _prepare(model, None, ("openvino",), "fp32", weights, weights_dir, out, None)
    xml = artifacts.engine_path("openvino", "fp32")
    shape = [batch, *artifacts.manifest["input"]["shape"][1:]]
    options = RuntimeOptions(precision="fp32", threads=os.cpu_count(), batches=(batch,))
    protocol = Protocol(10, 1.0, 100, seconds)
    ours, theirs = [], []
    with _status("cross-checking") as status:
        for i in range(rounds):
            status(f"round {i + 1}/{rounds}: edgebench")
            record = benchmark(artifacts, "openvino", options, protocol, Guard(retries=0))
            if record["status"] != "ok":
                raise UsageError(f"edgebench measurement failed: {record['error']}")
            ours.append(record["latency_ms"]["p50"])
            status(f"round {i + 1}/{rounds}: benchmark_app")
            theirs.append(run_benchmark_app(xml, shape, seconds))
    medians = [t["median"] for t in theirs]
    summary = new_record(
        "crosscheck", status="ok", model={"name": artifacts.manifest["model"]["name"]},
        runtime={"name": "openvino", "version": record["runtime"]["version"]}, batch=batch, precision="fp32",
        edgebench_p50_ms=ours, benchmark_app_median_ms=medians, benchmark_app=theirs,
        ratio_per_round=[a / b for a, b in zip(ours, medians)],
        ratio=statistics.median(ours) / statistics.median(medians))
    append_record(summary, results)
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    table = Table(title=f"{summary['model']['name']}: edgebench vs benchmark_app (OpenVINO {summary['runtime']['version']}, "
                        f"batch {batch}, LATENCY hint)")
    for col in ("round", "edgebench p50 ms", "benchmark_app median ms", "ratio"):
        table.add_column(col, justify="right")
    for i, (a, b) in enumerate(zip(ours, medians), 1):
        table.add_row(str(i), f"{a:.3f}", f"{b:.3f}", f"{a / b:.3f}")
    table.add_row("median", f"{statistics.median(ours):.3f}", f"{statistics.median(medians):.3f}",
                  f"{summary['ratio']:.3f}")
    stdout.print(table)


# ---------------------------------------------------------------- calibrate, eval (INT8)

from .int8_cli import register as _register_int8  # noqa: E402

_register_int8(main, globals())


# ---------------------------------------------------------------- doctor

@main.command()
@json_option
def doctor(as_json: bool) -> None:
    """Say which runtimes and devices are usable here, with versions and reasons."""
    from . import provenance
    from .runtimes import RUNTIMES, runtime_class
    found = [runtime_class(name).availability().to_dict() for name in RUNTIMES]
    report = {"host": provenance.host_info(), "edgebench": provenance.edgebench_info(), "runtimes": found}
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    table = Table(title=f"edgebench {__version__} on {report['host']['cpu']} ({report['host']['cpu_count']} cores)")
    for col in ("runtime", "usable", "version", "devices", "reason"):
        table.add_column(col, overflow="fold")
    for a in found:
        from rich.markup import escape
        table.add_row(a["name"], "yes" if a["usable"] else "no", a["version"] or "-", ", ".join(a["devices"]) or "-",
                      escape(a["reason"]))
    stdout.print(table)


# ---------------------------------------------------------------- deploy

from .deploy.commands import deploy as _deploy  # noqa: E402

main.add_command(_deploy)


if __name__ == "__main__":
    main()
