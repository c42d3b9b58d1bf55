"""``edgebench report``: one table from a results file."""

from __future__ import annotations

from pathlib import Path

import click

from edgebench.cli import output
from edgebench.cli.options import json_option, results_option
from edgebench.portable import strict_json
from edgebench.portable.errors import UsageError
from edgebench.results.store import read_records


@click.command("report")
@results_option
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True, help="Batch size to show.")
@click.option("--threads", type=click.IntRange(1), default=None, help="Only records measured with this many threads.")
@json_option
def command(results: Path, batch: int, threads: int | None, as_json: bool) -> None:
    """One table from a results file: a row per model grouped by family, p50 per runtime and precision,
    INT8 speed-up and peak RSS (the newest record of each kind wins)."""
    from edgebench.results.report import zoo_rows
    if not results.exists():
        raise UsageError(f"results file {results} does not exist")
    read = read_records(results)
    records = read.records
    if not records:
        raise UsageError(f"no records in {results}" + (f" ({read.warning(results)})" if read.skipped else ""))
    if read.skipped:
        click.echo(f"warning: {read.warning(results)}", err=True)
    if as_json:
        rows, _ = zoo_rows(records, batch, threads)
        click.echo(strict_json.dumps(rows, indent=2))
        return
    output.zoo(records, batch, threads, f"{results} (batch {batch})")
