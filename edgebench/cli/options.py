"""Option groups: each is a decorator that adds its options and hands the command ONE object built
from them (``protocol``/``guard``, ``int8``, ``trt_build``), with defaults read from the dataclass fields."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

import click
from click.core import ParameterSource

from edgebench.backends import RUNTIMES
from edgebench.bench.guarded import Guard
from edgebench.deploy.spec import RunnerSpec
from edgebench.models.registry import FAMILIES
from edgebench.portable.errors import UsageError, finite
from edgebench.portable.protocol import Protocol
from edgebench.portable.tensorrt.rules import (
    DEFAULT_WORKSPACE_MB,
    HARDWARE_COMPAT_CLI,
    LEGACY_CALIBRATOR_NOTE,
    TrtBuildOptions,
)
from edgebench.quantize.int8 import Int8Options
from edgebench.quantize.recipes import ORT_RECIPES, OVERFLOW_FIXES
from edgebench.results.store import ResultsFile

RUNTIME_NAMES = list(RUNTIMES)


def _given(names: tuple[str, ...], ctx: click.Context | None = None) -> list[str]:
    """The options among ``names`` the user set on the command line (as ``--flag``)."""
    ctx = ctx or click.get_current_context()
    flags = {p.name: p.opts[0] for p in ctx.command.params}
    return [flags[n] for n in names if n in ctx.params and ctx.get_parameter_source(n) is not ParameterSource.DEFAULT]


def _group(options: list, params: tuple[str, ...], build: Callable[..., dict]) -> Callable:
    """A decorator adding ``options`` whose values (``params``) ``build(values, kwargs)`` turns into the
    keyword arguments the command gets instead."""
    def decorator(command):
        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            values = {p: kwargs.pop(p) for p in params}
            return command(*args, **build(values, kwargs), **kwargs)
        for option in reversed(options):
            wrapper = option(wrapper)
        return wrapper
    return decorator


class FiniteFloat(click.FloatRange):
    """A float range that refuses NaN and Infinity, which ``float()`` and Click's FloatRange accept: NaN compares
    false with every bound (``--max-drop nan`` would turn accuracy control off) and neither is strict JSON."""

    name = "finite float"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        try:
            return finite(number, "the value")
        except UsageError:
            self.fail(f"{value!r} is not a finite number", param, ctx)


class NonEmptyPath(click.Path):
    """A path that is not the empty string, which Python reads as the current folder (``--out ""``)."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value.strip():
            self.fail("is empty: give a path", param, ctx)
        return super().convert(value, param, ctx)


class CommaList(click.ParamType):
    """A comma-separated list with at least one item (``--models ""`` is refused), optionally from ``choices``."""

    name = "list"

    def __init__(self, choices: tuple[str, ...] | None = None) -> None:
        self.choices = choices

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        items = tuple(dict.fromkeys(split(str(value))))
        if not items:
            self.fail(f"{value!r} names nothing: give a comma-separated list", param, ctx)
        wrong = [v for v in items if self.choices and v not in self.choices]
        if wrong:
            self.fail(f"{', '.join(wrong)}: choose from {', '.join(self.choices or ())}", param, ctx)
        return items


OVERSUBSCRIPTION_LIMIT = 4  # --threads above this many times the cores is refused


class Threads(click.IntRange):
    """Runtime threads: warn above the core count (the record says so), refuse above 4x: 999 threads on 2 cores
    ran for over four minutes and measured the scheduler, not the model."""

    name = "threads"

    def __init__(self) -> None:
        super().__init__(min=1)

    def convert(self, value, param, ctx):
        threads = super().convert(value, param, ctx)
        cores = os.cpu_count() or 1
        if threads > OVERSUBSCRIPTION_LIMIT * cores:
            self.fail(f"{threads} is more than {OVERSUBSCRIPTION_LIMIT}x the {cores} cores here "
                      f"(at most {OVERSUBSCRIPTION_LIMIT * cores})", param, ctx)
        if threads > cores:
            click.echo(f"warning: --threads {threads} is more than the {cores} cores here: the threads share cores, "
                       "and the record is marked oversubscribed", err=True)
        return threads


def open_results(path: Path) -> ResultsFile:
    """Open the results file for append now, before any work (closed when the command ends)."""
    results = ResultsFile(path)
    click.get_current_context().call_on_close(results.close)
    return results


def parse_batches(_ctx: click.Context | None, _param: click.Parameter | None, value: str) -> tuple[int, ...]:
    try:
        batches = tuple(int(b) for b in value.split(",") if b.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers") from None
    if not batches or any(b < 1 or b > 4096 for b in batches):
        raise click.BadParameter(f"batch sizes must be integers from 1 to 4096, got {value!r}")
    return tuple(dict.fromkeys(batches))


def split(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


weights_option = click.option(
    "--weights", default="auto", show_default=True, metavar="auto|pretrained|random|PATH",
    help="auto: local file, else hub cache, else random (with a warning); pretrained: download; "
         "random: seeded init; PATH: .safetensors or .pth.")
weights_dir_option = click.option(
    "--weights-dir", type=NonEmptyPath(file_okay=False, path_type=Path), envvar="EDGEBENCH_WEIGHTS",
    help="Folder of local weights files, looked up by model name [env: EDGEBENCH_WEIGHTS].")
artifacts_option = click.option(
    "--out", "out", type=NonEmptyPath(file_okay=False, path_type=Path), default=Path("artifacts"),
    show_default=True, help="Artifacts folder; each model gets <out>/<model>/.")
data_option = click.option(
    "--data", type=NonEmptyPath(path_type=Path), envvar="EDGEBENCH_DATA",
    help="Image folder (labels.csv, ImageFolder, or unlabelled) used to verify exports [env: EDGEBENCH_DATA].")
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")
results_option = click.option(
    "--results", type=NonEmptyPath(dir_okay=False, path_type=Path), default=Path("results/results.jsonl"),
    show_default=True, help="JSON-lines results file (records are appended, never rewritten).")


def build_options(command):
    """--weights, --weights-dir, --out, --data: where a model's weights come from, where its artifacts go,
    and the images that verify (and calibrate) its engines."""
    for option in reversed((weights_option, weights_dir_option, artifacts_option, data_option)):
        command = option(command)
    return command


family_option = click.option("--family", type=click.Choice(list(FAMILIES)), help="Only models of this family.")
threads_option = click.option("--threads", type=Threads(), default=None,
                              help="CPU threads for the runtime [default: all cores].")

PROTOCOL_PARAMS = ("warmup", "warmup_seconds", "iterations", "min_seconds", "retries", "rounds")


_LOOP_OPTIONS = [
    click.option("--warmup", type=click.IntRange(0), default=Protocol.warmup_iterations, show_default=True,
                 help="Warm-up iterations."),
    click.option("--warmup-seconds", type=FiniteFloat(0), default=Protocol.warmup_seconds, show_default=True,
                 help="Minimum warm-up time."),
    click.option("--iterations", type=click.IntRange(1), default=Protocol.min_iterations, show_default=True,
                 help="Minimum timed iterations."),
    click.option("--min-seconds", type=FiniteFloat(0), default=Protocol.min_seconds, show_default=True,
                 help="Minimum timed seconds.")]
LOOP_PARAMS = ("warmup", "warmup_seconds", "iterations", "min_seconds")


def _protocol(v: dict) -> Protocol:
    return Protocol(v["warmup"], v["warmup_seconds"], v["iterations"], v["min_seconds"])


protocol_options = _group(
    [*_LOOP_OPTIONS,
     click.option("--retries", type=click.IntRange(0, 10), default=Guard.retries, show_default=True,
                  help="Re-measurements when the noise probe shows a bad phase."),
     click.option("--rounds", type=click.IntRange(1, 100), default=Guard.rounds, show_default=True,
                  help="Independent measurement processes of each engine, each a full protocol; the record keeps "
                       "every round and its p50 CI is a bootstrap over the round medians.")],
    PROTOCOL_PARAMS,
    lambda v, _kw: {"protocol": _protocol(v), "guard": Guard(retries=v["retries"], rounds=v["rounds"])})
"""The latency protocol's options, shared by every measuring command: ``protocol`` and ``guard``."""

INT8_PARAMS = ("num", "method", "seed", "max_drop", "int8_recipe", "overflow_fix")


def _int8(values: dict, kwargs: dict) -> dict:
    """On a command with ``--precision`` the INT8 options need ``--precision int8`` (or int8 in ``--precisions``)."""
    given = _given(INT8_PARAMS)
    precision = kwargs.get("precision", kwargs.get("precisions", "int8"))
    if given and "int8" not in precision:
        raise UsageError(f"{', '.join(given)} only {'applies' if len(given) == 1 else 'apply'} to INT8: "
                         "add --precision int8")
    return {"int8": Int8Options(**values)}


int8_options = _group(
    [click.option("--num", type=click.IntRange(1), default=Int8Options.num, show_default=True,
                  help="INT8: calibration images (the rest of --data is the evaluation split)."),
     click.option("--method", type=click.Choice(["auto", "minmax", "entropy", "percentile"]),
                  default=Int8Options.method, show_default=True,
                  help="INT8: how activation ranges are calibrated. auto: minmax for ONNX Runtime, XNNPACK's "
                       "histogram observer for ExecuTorch (minmax lost 11 points of top-1 on "
                       "tf_efficientnet_lite0 there, the histogram 3.7); NNCF uses its own statistics."),
     click.option("--seed", type=int, default=Int8Options.seed, show_default=True,
                  help="INT8: seed of the calibration/evaluation split."),
     click.option("--max-drop", type=FiniteFloat(0, 100), default=None, metavar="POINTS",
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
                       "without VNNI). auto: from the CPU's INT8 class.")],
    INT8_PARAMS, _int8)
"""--num, --method, --seed, --max-drop, --int8-recipe, --overflow-fix, handed to the command as one
``int8: Int8Options``."""

TRT_BUILD_PARAMS = ("trt_workspace", "trt_hw_compat", "trt_timing_cache", "trt_legacy_calibrator")
TRT_RUN_PARAMS = ("cuda_graph",)


def trt_build_from(ctx: click.Context, runtimes: tuple[str, ...], batches: tuple[int, ...], precision: str,
                   trt_only: tuple[str, ...] = TRT_BUILD_PARAMS + TRT_RUN_PARAMS) -> TrtBuildOptions:
    """The TensorRT build options from ``ctx``'s command line; UsageError when any of ``trt_only``
    is given but TensorRT is not among ``runtimes``."""
    values = ctx.params
    given = _given(trt_only, ctx)
    if given and "trt" not in runtimes:
        raise UsageError(f"{', '.join(given)}: TensorRT options, but the runtime is {', '.join(runtimes) or 'none'} "
                         "(use --runtime trt)")
    if values["trt_legacy_calibrator"]:
        if precision != "int8":
            raise UsageError("--trt-legacy-calibrator applies to --precision int8 only")
        click.echo(f"warning: {LEGACY_CALIBRATOR_NOTE}", err=True)
    timing_cache = values["trt_timing_cache"]
    return TrtBuildOptions(batches=batches, workspace_mb=values["trt_workspace"],
                           hardware_compatibility=HARDWARE_COMPAT_CLI[values["trt_hw_compat"]],
                           timing_cache=str(timing_cache) if timing_cache else None,
                           legacy_calibrator=values["trt_legacy_calibrator"])


def command_runtimes(kwargs: dict) -> tuple[str, ...]:
    """The runtimes a command works on: ``run --runtime NAME``, or ``export --runtime NAME|all``
    ('all': every runtime that builds engines and is usable here)."""
    from edgebench.backends import canonical, engine_runtimes, runtime_class
    if "runtime_name" in kwargs:
        return (canonical(kwargs["runtime_name"]),)
    runtime = kwargs.get("runtime", "all")
    if runtime != "all":
        return (runtime,)
    return tuple(rt for rt in engine_runtimes() if runtime_class(rt).availability().usable)


def trt_build_options(also: tuple[str, ...]) -> Callable:
    """TensorRT build options (export and run), handed over as one ``trt_build: TrtBuildOptions``; each
    (and each of ``also``: ``batches`` on export, ``cuda_graph`` on run) needs TensorRT among the runtimes."""
    def build(_values: dict, kwargs: dict) -> dict:
        return {"trt_build": trt_build_from(click.get_current_context(), command_runtimes(kwargs),
                                            kwargs.get("batches", (1,)), kwargs.get("precision", "fp32"),
                                            (*also, *TRT_BUILD_PARAMS))}

    return _group(
        [click.option("--trt-workspace", type=click.IntRange(1), default=DEFAULT_WORKSPACE_MB, show_default=True,
                      metavar="MiB", help="TensorRT: builder workspace memory-pool limit, in MiB."),
         click.option("--trt-hw-compat", type=click.Choice(list(HARDWARE_COMPAT_CLI)), default="none",
                      show_default=True,
                      help="TensorRT: hardware-compatible plan; ampere+ (TensorRT >= 8.6) runs on any Ampere or "
                           "newer GPU, same-compute-capability (TensorRT >= 10.9, built on Turing+) on GPUs of the "
                           "builder's compute capability (discrete GPUs only, not Jetson; may be slower)."),
         click.option("--trt-timing-cache", type=click.Path(dir_okay=False, path_type=Path), default=None,
                      help="TensorRT: timing cache read before and updated after every build, e.g. one file "
                           "shared by all models [default: <out>/<model>/trt.timing-cache]."),
         click.option("--trt-legacy-calibrator", is_flag=True,
                      help="TensorRT INT8 by implicit calibration (IInt8EntropyCalibrator2) instead of the Q/DQ "
                           "ONNX. DEPRECATED since TensorRT 10.1, removed in 11.x; for JetPack 5 (TensorRT 8.5).")],
        TRT_BUILD_PARAMS, build)


RUNNER_PARAMS = (*LOOP_PARAMS, "trt_workspace", "cuda_graph", "profile", "legacy_calibrator", "runner_extra")

runner_options = _group(
    [*_LOOP_OPTIONS,
     click.option("--trt-workspace", type=click.IntRange(1), default=DEFAULT_WORKSPACE_MB, show_default=True,
                  metavar="MiB", help="TensorRT: builder workspace memory-pool limit on the device, in MiB."),
     click.option("--cuda-graph", is_flag=True, help="TensorRT: replay execute_async_v3 as a CUDA graph."),
     click.option("--profile", is_flag=True, help="Per-layer TensorRT times in the records."),
     click.option("--legacy-calibrator", is_flag=True,
                  help="DEPRECATED since TensorRT 10.1: implicit INT8 calibration (TensorRT 8.5 / JetPack 5)."),
     click.option("--runner-arg", "runner_extra", multiple=True,
                  help="Passed to the device runner as it is (e.g. --runner-arg=--max-seconds=60).")],
    RUNNER_PARAMS,
    lambda v, _kw: {"runner": RunnerSpec(_protocol(v), v["trt_workspace"], v["cuda_graph"], v["profile"],
                                         v["legacy_calibrator"], tuple(v["runner_extra"]))})
"""The device runner's options, shared by ``deploy run`` and ``fleet sweep``: one ``runner: RunnerSpec``."""


GATE_PARAMS = ("runtime_name", "precision", "batch", "threads", "rounds", "max_rounds", "round_seconds",
               "block_iterations", "retries", "settle_seconds", "threshold", "last", "allow_other_host",
               "allow_different_inputs", "accuracy_images")


def _gate(v: dict, _kw: dict) -> dict:
    from edgebench.backends import canonical
    from edgebench.bench.paired import PairedSettings
    from edgebench.workflow.gate.sources import GateOptions
    return {"gate": GateOptions(
        runtime=canonical(v["runtime_name"]), precision=v["precision"], batch=v["batch"],
        threads=v["threads"] or os.cpu_count() or 1, rounds=v["rounds"], max_rounds=v["max_rounds"],
        threshold=v["threshold"], last=v["last"], allow_other_host=v["allow_other_host"],
        allow_different_inputs=v["allow_different_inputs"], accuracy_images=v["accuracy_images"],
        paired=PairedSettings(block_iterations=v["block_iterations"], min_seconds=v["round_seconds"]),
        guard=Guard(retries=v["retries"], settle_seconds=v["settle_seconds"]))}


gate_options = _group(
    [click.option("--runtime", "runtime_name", required=True,
                  help="ort | openvino | trt | executorch (the same for both sides)."),
     click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True),
     click.option("--batch", type=click.IntRange(1, 4096), default=1, show_default=True),
     threads_option,
     click.option("--rounds", type=click.IntRange(1, 100), default=5, show_default=True,
                  help="Rounds to start with (A/B: paired processes; otherwise candidate processes)."),
     click.option("--max-rounds", type=click.IntRange(1, 200), default=15, show_default=True,
                  help="A/B: add rounds while the latency verdict is inconclusive, up to this many."),
     click.option("--round-seconds", type=FiniteFloat(0.1), default=3.0, show_default=True,
                  help="Minimum timed seconds per round."),
     click.option("--block", "block_iterations", type=click.IntRange(1, 10000), default=25, show_default=True,
                  help="A/B: iterations per ABBA block."),
     click.option("--retries", type=click.IntRange(0, 10), default=1, show_default=True,
                  help="History and budgets: re-measure a candidate round the noise probe found noisy, up to N "
                       "times."),
     click.option("--settle-seconds", type=FiniteFloat(0, 600), default=Guard.settle_seconds, show_default=True,
                  help="Seconds to wait before such a re-measurement."),
     click.option("--threshold", type=FiniteFloat(0.001, 10), default=0.05, show_default=True,
                  help="Relative change that counts (0.05 = 5%)."),
     click.option("--last", type=click.IntRange(1, 1000), default=10, show_default=True,
                  help="--against history: the newest N records of the same key on the same host."),
     click.option("--allow-other-host", is_flag=True,
                  help="--against history: use records of another host fingerprint."),
     click.option("--allow-different-inputs", is_flag=True,
                  help="A/B: compare sources whose input shape or preprocessing differ."),
     click.option("--accuracy-images", type=click.IntRange(1), default=200, show_default=True,
                  help="int8_drop_points budget: evaluation images.")],
    GATE_PARAMS, _gate)
"""The gate's measuring options, handed to ``gate`` as one ``gate: GateOptions``."""
