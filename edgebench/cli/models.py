"""``edgebench models``: the registry with computed params and GMACs."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from edgebench.cli.options import family_option, json_option, weights_dir_option
from edgebench.cli.output import stdout


@click.command("models")
@family_option
@weights_dir_option
@json_option
def command(family: str | None, weights_dir: Path | None, as_json: bool) -> None:
    """List the registered models with their computed params and GMACs."""
    from edgebench.models import list_models
    from edgebench.models.catalog import describe

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
