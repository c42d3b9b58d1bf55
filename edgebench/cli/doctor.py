"""``edgebench doctor``: which runtimes and devices are usable here, and why not."""

from __future__ import annotations

import json

import click
from rich.markup import escape
from rich.table import Table

from edgebench import __version__
from edgebench.cli.options import json_option
from edgebench.cli.output import stdout


@click.command("doctor")
@json_option
def command(as_json: bool) -> None:
    """Say which runtimes and devices are usable here, with versions and reasons, and the CPU's INT8 class
    with the INT8 recipes it gets."""
    from edgebench.backends import RUNTIMES, runtime_class
    from edgebench.portable import host
    from edgebench.portable.cpu_int8 import detect
    from edgebench.quantize.recipes import select
    found = [runtime_class(name).availability().to_dict() for name in RUNTIMES]
    recipes = {name: select(name, detect()) for name in ("ort", "openvino")}
    report = {"host": host.host_info(), "edgebench": host.edgebench_info(), "runtimes": found,
              "int8_recipes": {name: r.to_dict() for name, r in recipes.items()}}
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    table = Table(title=f"edgebench {__version__} on {report['host']['cpu']} ({report['host']['cpu_count']} cores)")
    for col in ("runtime", "usable", "version", "devices", "reason"):
        table.add_column(col, overflow="fold")
    for a in found:
        table.add_row(a["name"], "yes" if a["usable"] else "no", a["version"] or "-", ", ".join(a["devices"]) or "-",
                      escape(a["reason"]))
    stdout.print(table)
    stdout.print(f"CPU INT8 class: {escape(detect().describe())}. INT8 recipes (auto; --int8-recipe and "
                 f"--overflow-fix override them):")
    for name, recipe in recipes.items():
        stdout.print(f"  {name}: {recipe.name}: {escape(recipe.reason)}")
