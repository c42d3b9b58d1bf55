"""Reports people look at: the terminal table, Markdown, CSV, JSON and one self-contained HTML page.

:func:`make_report` is what ``edgebench report`` runs. Bad input (a missing or empty file, damaged
lines, older-schema records, a ``--plots`` folder that cannot be written) is one warning line each,
and the report is still written for the rest; only when no record at all is left is it an error.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import click

from edgebench.portable.errors import UsageError

FORMATS = ("table", "markdown", "csv", "json", "html")


def _history_records(db: Path) -> list[dict]:
    """Every record of the SQLite history (``edgebench.results.history.database_records``)."""
    from edgebench.results import history
    return history.database_records(db)


def _write(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    except OSError as exc:
        raise UsageError(f"cannot write the report to {out} ({exc.strerror or exc})") from None
    click.echo(f"report written to {out} ({out.stat().st_size / 1e3:.0f} kB)", err=True)


def _figures(loaded, rows: list[dict], batch: int) -> tuple[dict, dict]:
    """Every figure that has data: {id: Figure}, and a note per figure (why one is missing)."""
    from edgebench.results.records import latest_peaks

    from . import figures
    at_batch = [r for r in rows if r["batch"] == batch]
    built = {"pareto": figures.pareto(at_batch), "speedup": figures.speedup(at_batch),
             "op_classes": figures.op_classes(loaded.records),
             "attained": figures.attained(at_batch, latest_peaks(loaded.records)),
             "memory": figures.memory(at_batch), "latency": figures.latency_distribution(loaded.records)}
    why = {"pareto": "no accuracy records (sweep --accuracy-images, run --accuracy)",
           "speedup": "no model measured in both FP32 and INT8 on one runtime",
           "op_classes": "no profiled records (run/sweep --profile)",
           "attained": "no peak records for these hosts and thread counts (report --measure-peak)",
           "memory": "no memory figures", "latency": "no successful latency records"}
    return {k: v for k, v in built.items() if v is not None}, {k: why[k] for k, v in built.items() if v is None}


def _write_plots(found: dict, plots: Path) -> None:
    try:
        plots.mkdir(parents=True, exist_ok=True)
        for name, fig in found.items():
            for ext in ("png", "svg"):
                fig.savefig(plots / f"{name}.{ext}", format=ext, bbox_inches="tight", dpi=130)
    except OSError as exc:
        click.echo(f"warning: --plots {plots}: cannot write the figures there ({exc.strerror or exc}); "
                   "the report itself is still written", err=True)
        return
    click.echo(f"figures written to {plots}/ ({len(found)} x PNG + SVG)", err=True)


def make_report(results: list[Path], *, batch: int = 1, threads: int | None = None, fmt: str = "table",
                out: Path | None = None, plots: Path | None = None, db: Path | None = None,
                peaks: Callable[[int], list[dict]] | None = None, console=None) -> None:
    """Read ``results`` (and ``db``), then write the report in ``fmt`` to ``out`` (stdout without it).

    ``peaks`` (the caller's measurement, :func:`edgebench.workflow.peaks.measure_peaks`) is called with
    ``threads`` (all cores without it) and its records appended to the first results file before reading;
    the results layer only reads and writes records, it never measures."""
    from edgebench.results.store import append_records
    from edgebench.results.zoo_table import slower_int8, zoo_rows, zoo_table

    from . import formats
    from .rows import load, measurement_rows

    if len(results) == 1 and not Path(results[0]).exists() and db is None:
        raise UsageError(f"results file {results[0]} does not exist")
    extra = _history_records(db) if db is not None else []
    if peaks is not None:
        append_records(peaks(threads or os.cpu_count() or 1), results[0])
    loaded = load(results, extra)
    for warning in loaded.warnings:
        click.echo(f"warning: {warning}", err=True)
    if not loaded.records:
        raise UsageError(f"no records in {', '.join(str(p) for p in results)}")
    title = f"{results[0] if len(results) == 1 else ', '.join(map(str, results))} (batch {batch})"
    rows, columns = zoo_rows(loaded.records, batch, threads)
    if fmt == "table":
        console.print(zoo_table(rows, columns, title))
        for sentence in slower_int8(rows, columns):
            console.print(sentence, style="bold", markup=False)
    elif fmt == "json":
        _write(formats.to_json(rows), out)
    elif fmt == "markdown":
        _write(formats.markdown(rows, columns, title), out)
    per_measurement = [r for r in measurement_rows(loaded.records) if threads is None or r["threads"] == threads]
    if fmt == "csv":
        _write(formats.to_csv(per_measurement), out)
    if fmt == "html" or plots is not None:
        import matplotlib.pyplot as plt

        from .html import page, svg_of
        found, notes = _figures(loaded, per_measurement, batch)
        if plots is not None:
            _write_plots(found, plots)
        if fmt == "html":
            _write(page(loaded, per_measurement, formats.markdown(rows, columns, title),
                        {k: svg_of(f) for k, f in found.items()}, notes), out)
        for fig in found.values():
            plt.close(fig)
