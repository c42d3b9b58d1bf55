"""``edgebench calibrate``: the INT8 engines from one seeded calibration split of --data."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from edgebench.backends import int8_runtimes, runtime_class
from edgebench.cli import output
from edgebench.cli.options import (
    build_options,
    int8_options,
    json_option,
)
from edgebench.portable import strict_json
from edgebench.portable.errors import UsageError
from edgebench.quantize.int8 import Int8Options, layers_in_float
from edgebench.workflow.prepare import BuildRequest, ModelSource, prepare

CPU_INT8_RUNTIMES = [r for r in int8_runtimes() if r != "trt"]  # TensorRT's INT8 plan is built by `export`


def need_data(data: Path | None, what: str) -> Path:
    if data is None:
        raise UsageError(f"{what} needs images: pass --data DIR (or set EDGEBENCH_DATA)")
    return data


@click.command("calibrate")
@click.argument("model")
@click.option("--runtime", type=click.Choice([*CPU_INT8_RUNTIMES, "all"]), default="all", show_default=True,
              help="Which INT8 engines to build.")
@int8_options
@build_options
@json_option
def command(model: str, runtime: str, int8: Int8Options, weights: str, weights_dir: Path | None, out: Path,
            data: Path | None, as_json: bool) -> None:
    """Build INT8 engines for MODEL from --num calibration images of --data (seeded split;
    the other images are kept for `edgebench eval`)."""
    from edgebench.quantize.int8 import calibrate
    data = need_data(data, "calibration")
    runtimes = tuple(r for r in CPU_INT8_RUNTIMES if runtime_class(r).availability().usable) \
        if runtime == "all" else (runtime,)
    with output.status("calibrating") as step:
        artifacts = prepare(ModelSource(model, None, weights, weights_dir), runtimes, "fp32", BuildRequest(out, data),
                            step)
        section = calibrate(artifacts, runtimes, data, **int8.to_dict(), status=step)
    manifest = artifacts.manifest
    engines = {k: v for k, v in manifest["engines"].items() if k.endswith("/int8")}
    if as_json:
        click.echo(strict_json.dumps({"int8": section, "engines": engines}, indent=2))
        return
    cal = section.get("calibration", {})
    table = Table(title=f"{manifest['model']['name']}: INT8 from {cal.get('used')} images "
                        f"(seed {cal.get('seed')}, {cal.get('method')}, set {str(cal.get('calibration_hash'))[:12]})")
    for col in ("engine", "file", "recipe", "seconds", "left in float"):
        table.add_column(col, overflow="fold")
    for key, entry in sorted(engines.items()):
        build = entry["build"]
        if isinstance(build.get("recipe"), str):  # a backend's own INT8 model names its recipe (ExecuTorch's PT2E)
            recipe = build["recipe"]
        else:
            recipe = (f"{build.get('activation_type')}/{build.get('weight_type')}"
                      f"{' 7-bit weights' if build.get('reduce_range') else ''} per-channel QDQ"
                      if "activation_type" in build else f"NNCF {build.get('preset', 'accuracy control')}, "
                                                         f"overflow fix {build.get('overflow_fix', 'first-layer')}")
            if build.get("recipe"):
                recipe += f" ({build['recipe']['name']}, {build['recipe']['chosen_by']}: {build['recipe']['reason']})"
        floats = layers_in_float(build)
        table.add_row(key, entry["files"][0], recipe, str(build.get("seconds")),
                      f"{len(floats)}: {', '.join(floats[:4])}{' ...' if len(floats) > 4 else ''}")
    output.stdout.print(table)
