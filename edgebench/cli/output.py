"""The CLI's one console (stderr: spinners, warnings) and stdout, and every table it prints."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

_WIDTH = None if sys.stdout.isatty() else 200  # rich falls back to 80 columns in pipes and logs
console = Console(stderr=True)
stdout = Console(width=_WIDTH)


@contextmanager
def status(message: str) -> Iterator:
    """A spinner on stderr whose text follows the steps of a long operation."""
    with console.status(message) as spinner:
        yield lambda msg: spinner.update(msg)


def fmt(value, spec: str = ".2f", none: str = "-") -> str:
    return none if value is None else format(value, spec)


def latency_table(records: list[dict], results: Path) -> None:
    """One row per record: latency (ms), the engine's own memory (load + run, MB) beside the whole measuring
    process's peak RSS, and the cold start (load s, first inference ms)."""
    table = Table(title=f"latency (ms); records appended to {results}")
    for col in ("model", "runtime", "precision", "batch", "thr", "p50", "p90", "p99", "min", "max", "std",
                "img/s", "engine MB", "peak RSS MB", "load s", "1st ms", "stability"):
        table.add_column(col, justify="right" if col not in ("model", "runtime", "stability") else "left")
    for r in records:
        lat = r.get("latency_ms") or {}
        mem = r.get("memory_mb") or {}
        own = r.get("memory") or {}
        precision = r["precision"] if r.get("effective_precision") in (None, r["precision"]) else \
            f"{r['precision']} (runs {r['effective_precision']})"
        cell = (lambda k, lat=lat: f"{lat[k]:.2f}" if k in lat else "-")
        table.add_row(r["model"]["name"], f"{r['runtime']['name']} {r['runtime'].get('version') or ''}", precision,
                      str(r["batch"]), str(r["threads"]), cell("p50"), cell("p90"), cell("p99"), cell("min"),
                      cell("max"), cell("std"), f"{lat['throughput_ips']:.1f}" if lat else "-",
                      fmt(own.get("engine_mb"), ".1f"), str(mem.get("peak", "-")), fmt(r.get("load_seconds"), ".3f"),
                      fmt(r.get("first_inference_ms"), ".1f"),
                      r["stability"]["verdict"] if r["status"] == "ok" else f"failed: {r['error']}")
    stdout.print(table)


def layer_profiles(records: dict[str, dict], top: int = 12) -> None:
    """Per-layer profiles (``--profile``) folded by operation: one table per record that has one."""
    from edgebench.portable.layer_profile import by_op
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


def zoo(records: list[dict], batch: int, threads: int | None, title: str) -> None:
    from edgebench.results.zoo_table import zoo_rows, zoo_table
    rows, columns = zoo_rows(records, batch, threads)
    stdout.print(zoo_table(rows, columns, title))


def _drop(pair: dict) -> str:
    if pair.get("drop_top1_points") is None:
        return "-"
    return f"{pair['drop_top1_points']:+.2f} ± {pair['drop_top1_se_points']:.2f}"


def accuracy(summary: dict, title: str) -> None:
    table = Table(title=title)
    for col in ("engine", "images", "top-1 %", "top-5 %"):
        table.add_column(col, justify="left" if col == "engine" else "right")
    for key, row in summary["engines"].items():
        table.add_row(key, str(row["n"]), fmt(row["top1"]), fmt(row["top5"]))
    stdout.print(table)
    table = Table(title="paired comparison (drop in points ± paired SE)")
    for col in ("pair", "top-1 drop", "top-1 agreement", "mean cosine", "min cosine"):
        table.add_column(col, justify="left" if col == "pair" else "right")
    for key, pair in summary["comparisons"].items():
        table.add_row(key, _drop(pair), fmt(pair["top1_agreement"], ".4f"), fmt(pair["cosine_mean"], ".5f"),
                      fmt(pair["cosine_min"], ".5f"))
    stdout.print(table)
    if summary.get("top1_reason"):
        click.echo(f"note: {summary['top1_reason']}", err=True)


def paired_latency(latency: dict, paired: dict, threads: int, results: Path) -> None:
    """``run --accuracy``'s latencies: p50/p90 per precision and batch, and the speed-up over FP32 (the paired
    one with its CI where interleaved rounds measured it)."""
    from edgebench.workflow.measure import speedup_ratio
    table = Table(title=f"latency p50 (ms), {threads} threads; one record appended to {results}")
    for col in ("precision", "batch", "p50", "p90", "speed-up vs fp32", "stability"):
        table.add_column(col)
    for key, rec in latency.items():
        p, b = key.split("/b")
        lat = rec.get("latency_ms") or {}
        pair = paired.get(f"b{b}") if p != "fp32" and not p.endswith("every-layer") else None
        table.add_row(p, b, fmt(lat.get("p50")), fmt(lat.get("p90")),
                      f"{pair['speedup']:.2f} [{pair['ci95'][0]:.2f}, {pair['ci95'][1]:.2f}] paired" if pair
                      else fmt(speedup_ratio(latency, f"fp32/b{b}", key)),
                      rec["stability"]["verdict"] if rec["status"] == "ok" else f"failed: {rec['error']}")
    stdout.print(table)
