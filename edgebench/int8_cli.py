"""The INT8 commands of the CLI: ``calibrate``, ``eval``, and ``run --accuracy``.

Registered on the main group by :mod:`edgebench.cli` (kept apart so the INT8 work
does not grow cli.py).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click
from click.core import ParameterSource
from rich.table import Table

from .calibration.int8 import Int8Options, accuracy_control, layers_in_float
from .calibration.recipes import ORT_RECIPES, OVERFLOW_FIXES
from .errors import UsageError

INT8_RUNTIME_CHOICES = ["ort", "openvino", "all"]


def _fmt(value, spec: str = ".2f", none: str = "-") -> str:
    return none if value is None else format(value, spec)


def _drop(pair: dict) -> str:
    if pair.get("drop_top1_points") is None:
        return "-"
    return f"{pair['drop_top1_points']:+.2f} ± {pair['drop_top1_se_points']:.2f}"


INT8_PARAMS = ("num", "method", "seed", "max_drop", "int8_recipe", "overflow_fix")


def int8_options(command):
    """--num, --method, --seed, --max-drop, --int8-recipe, --overflow-fix, handed to the command as one
    ``int8: Int8Options``.

    On a command with ``--precision`` they need ``--precision int8`` (or ``--precisions`` with int8).
    """
    options = [
        click.option("--num", type=click.IntRange(1), default=Int8Options.num, show_default=True,
                     help="INT8: calibration images (the rest of --data is the evaluation split)."),
        click.option("--method", type=click.Choice(["minmax", "entropy", "percentile"]), default=Int8Options.method,
                     show_default=True, help="INT8: ONNX Runtime calibration method (NNCF uses its own statistics)."),
        click.option("--seed", type=int, default=Int8Options.seed, show_default=True,
                     help="INT8: seed of the calibration/evaluation split."),
        click.option("--max-drop", type=click.FloatRange(0, 100), default=None, metavar="POINTS",
                     help="INT8, accuracy-aware: keep the most sensitive layers in float until top-1 (on the labelled "
                          "calibration images) drops at most POINTS."),
        click.option("--int8-recipe", type=click.Choice(["auto", *ORT_RECIPES]), default=Int8Options.int8_recipe,
                     show_default=True,
                     help="INT8, ONNX Runtime: activation/weight types (u8s8-7bit: reduce_range). auto: from the CPU's "
                          "INT8 class (see `edgebench doctor`): u8s8 with VNNI/AMX or on ARM, where u8s8 saturates "
                          "(x86 without VNNI) the measured accurate one."),
        click.option("--overflow-fix", type=click.Choice(["auto", *OVERFLOW_FIXES]), default=Int8Options.overflow_fix,
                     show_default=True,
                     help="INT8, OpenVINO: NNCF's overflow fix (7-bit weights against the saturation of x86 CPUs "
                          "without VNNI). auto: from the CPU's INT8 class."),
    ]

    @functools.wraps(command)
    def wrapper(*args, num: int, method: str, seed: int, max_drop: float | None, int8_recipe: str, overflow_fix: str,
                **kwargs):
        ctx = click.get_current_context()
        given = [f"--{n.replace('_', '-')}" for n in INT8_PARAMS
                 if ctx.get_parameter_source(n) is not ParameterSource.DEFAULT]
        precision = kwargs.get("precision", kwargs.get("precisions", "int8"))
        if given and "int8" not in precision:
            raise UsageError(f"{', '.join(given)} only {'applies' if len(given) == 1 else 'apply'} to INT8: add --precision int8")
        return command(*args, int8=Int8Options(num, method, seed, max_drop, int8_recipe, overflow_fix), **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def _int8_runtimes(runtime: str) -> tuple[str, ...]:
    return ("ort", "openvino") if runtime == "all" else (runtime,)


def _need_data(data: Path | None, what: str) -> Path:
    if data is None:
        raise UsageError(f"{what} needs images: pass --data DIR (or set EDGEBENCH_DATA)")
    return data


def _print_warnings(*groups: list[str]) -> None:
    for group in groups:
        for line in group or []:
            click.echo(f"warning: {line}", err=True)


def print_accuracy(summary: dict, title: str) -> None:
    from .cli import stdout
    table = Table(title=title)
    for col in ("engine", "images", "top-1 %", "top-5 %"):
        table.add_column(col, justify="left" if col == "engine" else "right")
    for key, row in summary["engines"].items():
        table.add_row(key, str(row["n"]), _fmt(row["top1"]), _fmt(row["top5"]))
    stdout.print(table)
    table = Table(title="paired comparison (drop in points ± paired SE)")
    for col in ("pair", "top-1 drop", "top-1 agreement", "mean cosine", "min cosine"):
        table.add_column(col, justify="left" if col == "pair" else "right")
    for key, pair in summary["comparisons"].items():
        table.add_row(key, _drop(pair), _fmt(pair["top1_agreement"], ".4f"), _fmt(pair["cosine_mean"], ".5f"),
                      _fmt(pair["cosine_min"], ".5f"))
    stdout.print(table)
    if summary.get("top1_reason"):
        click.echo(f"note: {summary['top1_reason']}", err=True)
    if summary.get("skipped"):
        click.echo(f"warning: {summary['skipped']} unreadable image(s) skipped, e.g. {summary['skipped_examples'][0]}",
                   err=True)


def _model_fields(manifest: dict) -> dict:
    return {"model": {"name": manifest["model"]["name"], "family": manifest["model"]["family"],
                      **manifest.get("complexity", {})},
            "weights": manifest.get("weights")}


def register(main: click.Group, cli: dict) -> None:
    """Add ``calibrate`` and ``eval`` to the main group (``cli`` is cli.py's namespace, for shared options)."""
    weights_option, weights_dir_option = cli["weights_option"], cli["weights_dir_option"]
    artifacts_option, data_option, json_option = cli["artifacts_option"], cli["data_option"], cli["json_option"]
    results_option = cli.get("results_option") or click.option(
        "--results", type=click.Path(dir_okay=False, path_type=Path), default=Path("results/results.jsonl"),
        show_default=True, help="JSON-lines results file.")

    @main.command()
    @click.argument("model")
    @click.option("--runtime", type=click.Choice(INT8_RUNTIME_CHOICES), default="all", show_default=True,
                  help="Which INT8 engines to build.")
    @int8_options
    @weights_option
    @weights_dir_option
    @artifacts_option
    @data_option
    @json_option
    def calibrate(model: str, runtime: str, int8: Int8Options, weights: str, weights_dir: Path | None, out: Path,
                  data: Path | None, as_json: bool) -> None:
        """Build INT8 engines for MODEL from --num calibration images of --data (seeded split;
        the other images are kept for `edgebench eval`)."""
        from .calibration.int8 import calibrate as do_calibrate
        data = _need_data(data, "calibration")
        runtimes = _int8_runtimes(runtime)
        artifacts = cli["_prepare"](model, None, runtimes, "fp32", weights, weights_dir, out, data)
        with cli["_status"]("calibrating") as status:
            section = do_calibrate(artifacts, runtimes, data, **int8.to_dict(), status=status)
        manifest = artifacts.manifest
        engines = {k: v for k, v in manifest["engines"].items() if k.endswith("/int8")}
        if as_json:
            click.echo(json.dumps({"int8": section, "engines": engines}, indent=2, default=str))
            return
        cal = section.get("calibration", {})
        _print_warnings(cal.get("warnings"))
        if cal.get("skipped"):
            click.echo(f"warning: {cal['skipped']} unreadable calibration image(s) skipped", err=True)
        table = Table(title=f"{manifest['model']['name']}: INT8 from {cal.get('used')} images "
                            f"(seed {cal.get('seed')}, {cal.get('method')}, set {str(cal.get('calibration_hash'))[:12]})")
        for col in ("engine", "file", "recipe", "seconds", "left in float"):
            table.add_column(col, overflow="fold")
        for key, entry in sorted(engines.items()):
            build = entry["build"]
            recipe = (f"{build.get('activation_type')}/{build.get('weight_type')}"
                      f"{' 7-bit weights' if build.get('reduce_range') else ''} per-channel QDQ"
                      if "activation_type" in build else f"NNCF {build.get('preset', 'accuracy control')}, "
                                                         f"overflow fix {build.get('overflow_fix', 'first-layer')}")
            if build.get("recipe"):
                recipe += f" ({build['recipe']['name']}, {build['recipe']['chosen_by']}: {build['recipe']['reason']})"
            floats = layers_in_float(build)
            table.add_row(key, entry["files"][0], recipe, str(build.get("seconds")),
                          f"{len(floats)}: {', '.join(floats[:4])}{' ...' if len(floats) > 4 else ''}")
        from .cli import stdout
        stdout.print(table)

    @main.command(name="eval")
    @click.argument("model")
    @click.option("--runtime", type=click.Choice(["ort", "openvino", "torch"]), default="ort", show_default=True)
    @click.option("--precision", type=click.Choice(["fp32", "int8"]), default="fp32", show_default=True)
    @click.option("--threads", type=click.IntRange(1, 1024), default=None, help="CPU threads [default: all cores].")
    @click.option("--limit", type=click.IntRange(1), default=None, help="Evaluate only the first N evaluation images.")
    @weights_option
    @weights_dir_option
    @artifacts_option
    @data_option
    @results_option
    @json_option
    def eval_(model: str, runtime: str, precision: str, threads: int | None, limit: int | None, weights: str,
              weights_dir: Path | None, out: Path, data: Path | None, results: Path, as_json: bool) -> None:
        """Top-1/top-5 of PyTorch FP32, the runtime's FP32 and (int8) INT8 engine on the evaluation split."""
        from .bench import append_record
        from .bench.accuracy import evaluate_model
        from .export.artifacts import ensure_writable
        data = _need_data(data, "evaluation")
        ensure_writable(results.parent)
        artifacts = cli["_prepare"](model, None, (runtime,) if runtime != "torch" else ("ort",), precision, weights,
                                    weights_dir, out, data)
        with cli["_status"]("evaluating") as status:
            summary = evaluate_model(artifacts, runtime, precision, data, threads, limit=limit, status=status)
        record = accuracy_record(artifacts, runtime, precision, threads or os.cpu_count(), summary)
        append_record(record, results)
        if as_json:
            click.echo(json.dumps(record, indent=2, default=str))
            return
        _print_warnings(summary.get("dataset_warnings"), summary.get("split_warnings"))
        print_accuracy(summary, f"{artifacts.manifest['model']['name']} on {runtime}: {summary['images']} "
                                f"evaluation images; record appended to {results}")


def accuracy_record(artifacts, runtime: str, precision: str, threads: int, summary: dict, /, **fields) -> dict:
    """An ``accuracy`` record: the summary, the headline figures and (int8) the calibration;
    ``fields`` add to or override these (``run --accuracy`` adds its latencies)."""
    from .bench import new_record
    from .bench.accuracy import headline
    int8 = artifacts.manifest.get("int8", {}) if precision == "int8" else {}
    return new_record("accuracy", **{
        **_model_fields(artifacts.manifest), "runtime": {"name": runtime}, "precision": precision,
        "threads": threads, "accuracy": summary, "headline": headline(summary, runtime, precision),
        "int8": int8.get("calibration"), "calibration_seconds": (int8.get("seconds") or {}).get(runtime),
        "int8_recipe": ((artifacts.engine_entry(runtime, "int8") or {}).get("build") or {}).get("recipe") if int8 else None,
        "status": "ok", **fields})


def sweep_accuracy(artifacts, runtime: str, data: Path, threads: int, images: int, results: Path) -> None:
    """``sweep --accuracy-images N``: FP32 vs INT8 of ``runtime`` on the first N evaluation images."""
    from .bench import append_record
    from .bench.accuracy import evaluate_model
    summary = evaluate_model(artifacts, runtime, "int8", data, threads, limit=images)
    append_record(accuracy_record(artifacts, runtime, "int8", threads, summary), results)


def run_accuracy(runtime_name, model, onnx_file, precision, batches, threads, device, warmup, warmup_seconds,
                 iterations, min_seconds, retries, weights, weights_dir, out, data, results, as_json,
                 trt_build=None, trt_run=None, int8: Int8Options | None = None, profile: bool = False) -> None:
    """``run --accuracy`` / ``run --precision int8 --data``: one record with FP32 (and INT8) latency and
    accuracy on the evaluation split, the drop ± SE, agreement and the INT8 speed-up.
    ``trt_build`` / ``trt_run``: TensorRT build and run options (see ``cli.run``); ``int8``: calibration;
    ``profile``: per-layer times of every engine measured.
    When --max-drop kept layers in float, the every-layer INT8 engine is measured too: the fallback's cost."""
    from . import cli
    from .bench import Protocol, append_record
    from .bench.accuracy import evaluate_model
    from .bench.runner import Guard, benchmark
    from .export.artifacts import ensure_writable
    from .runtimes import RuntimeOptions, canonical, require

    data = _need_data(data, "--accuracy")
    runtime = canonical(runtime_name)
    require(runtime)
    ensure_writable(results.parent)
    artifacts = cli._prepare(model, onnx_file, (runtime,), precision, weights, weights_dir, out, data, trt=trt_build,
                             int8=int8)
    threads = threads or os.cpu_count()
    protocol = Protocol(warmup, warmup_seconds, iterations, min_seconds)
    engine_build = (artifacts.engine_entry(runtime, "int8") or {}).get("build") if precision == "int8" else None
    every_layer = (engine_build or {}).get("every_layer_int8_file")
    engines = {p: None for p in (["fp32", precision] if precision != "fp32" else ["fp32"])}
    if every_layer and artifacts.file_intact(every_layer):
        engines[EVERY_LAYER] = artifacts.path(every_layer)
    latency: dict[str, dict] = {}
    with cli._status("measuring") as status:
        for batch in batches:
            for p, engine in engines.items():
                status(f"measuring {artifacts.manifest['model']['name']} on {runtime} {p}, batch {batch}")
                options = RuntimeOptions(precision="int8" if engine else p, threads=threads, device=device,
                                         batches=(batch,), profile=profile, **({"trt": trt_run} if trt_run else {}))
                rec = benchmark(artifacts, runtime, options, protocol, Guard(retries=retries), engine)
                latency[f"{p}/b{batch}"] = {k: rec.get(k) for k in ("status", "error", "latency_ms", "memory_mb",
                                                                    "effective_precision", "stability", "engine",
                                                                    "load_seconds", "batch")}
                latency[f"{p}/b{batch}"]["runtime"] = rec.get("runtime")
        summary = evaluate_model(artifacts, runtime, precision, data, threads, status=status)
    speedup = {f"b{b}": _ratio(latency, f"fp32/b{b}", f"{precision}/b{b}") for b in batches} \
        if precision != "fp32" else {}
    fallback = None
    if EVERY_LAYER in engines:
        fallback = {"restored_to_float": accuracy_control(engine_build).get("restored_to_float"),
                    "latency_cost_p50": {f"b{b}": _ratio(latency, f"int8/b{b}", f"{EVERY_LAYER}/b{b}") for b in batches},
                    "every_layer_speedup_vs_fp32_p50": {f"b{b}": _ratio(latency, f"fp32/b{b}", f"{EVERY_LAYER}/b{b}")
                                                        for b in batches}}
    ok = all(v["status"] == "ok" for v in latency.values())
    record = accuracy_record(artifacts, runtime, precision, threads, summary,
                             runtime={"name": runtime, "device": device}, batches=list(batches), latency=latency,
                             speedup_vs_fp32_p50=speedup or None, int8_engine=engine_build, int8_fallback=fallback,
                             protocol=protocol.to_dict(), status="ok" if ok else "failed")
    append_record(record, results)
    if as_json:
        click.echo(json.dumps(record, indent=2, default=str))
    else:
        _print_warnings(summary.get("dataset_warnings"), summary.get("split_warnings"))
        print_accuracy(summary, f"{artifacts.manifest['model']['name']} on {runtime}: {summary['images']} evaluation images")
        table = Table(title=f"latency p50 (ms), {threads} threads; one record appended to {results}")
        for col in ("precision", "batch", "p50", "p90", "speed-up vs fp32", "stability"):
            table.add_column(col)
        for key, rec in latency.items():
            p, b = key.split("/b")
            lat = rec.get("latency_ms") or {}
            table.add_row(p, b, _fmt(lat.get("p50")), _fmt(lat.get("p90")),
                          _fmt(_ratio(latency, f"fp32/b{b}", key)),
                          rec["stability"]["verdict"] if rec["status"] == "ok" else f"failed: {rec['error']}")
        cli.stdout.print(table)
        cli.print_layer_profiles({key.replace("/b", " b"): rec for key, rec in latency.items()})
        if fallback:
            kept = fallback["restored_to_float"] or []
            click.echo(f"--max-drop kept {len(kept)} layer(s) in float ({', '.join(kept[:6])}"
                       f"{' ...' if len(kept) > 6 else ''}); latency vs every layer in INT8: "
                       + ", ".join(f"{k} x{_fmt(v)}" for k, v in fallback["latency_cost_p50"].items()))
    if not ok:
        sys.exit(1)


EVERY_LAYER = "int8-every-layer"


def _ratio(latency: dict, slow: str, fast: str) -> float | None:
    """p50 of ``slow`` over p50 of ``fast`` (a speed-up), when both were measured."""
    a, b = ((latency.get(k) or {}).get("latency_ms") or {} for k in (slow, fast))
    return round(a["p50"] / b["p50"], 3) if a.get("p50") and b.get("p50") else None
