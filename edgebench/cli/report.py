"""``edgebench report``: the terminal table, Markdown, CSV, JSON or one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

import click

from edgebench.cli import output
from edgebench.cli.options import json_option


@click.command("report")
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
def command(results: tuple[Path, ...], batch: int, threads: int | None, fmt: str, out: Path | None,
            html_out: Path | None, plots: Path | None, db: Path | None, measure_peak: bool, as_json: bool) -> None:
    """A report of results files: by default one table, a line per model and runtime grouped by family, p50 per
    precision side by side, INT8 speed-up and peak RSS (the newest record of each kind wins); --html FILE writes one
    self-contained page with the figures (Pareto, INT8 speed-up, time by operator class, attained compute,
    memory, latency distributions) and every record."""
    from edgebench.workflow.peaks import report
    fmt, out = ("html", html_out) if html_out else ("json" if as_json else fmt, out)
    report(list(results), batch=batch, threads=threads, fmt=fmt, out=out, plots=plots, db=db,
                measure_peak=measure_peak, console=output.stdout)
