"""Text formats of a report: Markdown (the terminal table's rows, for a PR comment or a README),
CSV (one row per measurement, timm results-CSV style) and JSON (the table's rows, as ``report --json``)."""

from __future__ import annotations

import csv
import io
import json

from edgebench.results.escape import csv_cell, md_text
from edgebench.results.zoo_table import MEMORY_HEADING, _cell, _quality, int8_speedup, slower_int8, speedup_columns

from .rows import COLUMNS


def _md(text: str) -> str:
    """A Markdown cell: the user's names (models, runtimes, errors) shown, never rendered as HTML."""
    return md_text(text)


def markdown(rows: list[dict], columns: list[tuple], title: str) -> str:
    """The rows of ``zoo_rows`` as a Markdown table, the terminal table's columns: p50 ms / the engine's own memory
    (load + run; ``proc``: an older record's process peak) per
    runtime, device, precision and threads; a failed cell says ``failed: reason``, an unstable one ``unstable``."""
    runtimes = sorted({c[0] for c in columns})
    speedups = speedup_columns(columns)
    quality = [rt for rt in runtimes if any(f"{rt}/int8_quality" in row for row in rows)]
    head = ["model", "family", "params M", "GMACs", "ONNX MB",
            *(f"{name.replace('/', ' ')} {MEMORY_HEADING}" for *_key, name in columns),
            *(f"{name.replace('/int8', '').replace('/', ' ')} int8 speed-up" for name in speedups),
            *(f"{rt} int8: agreement / drop pt / calibration" for rt in quality)]
    lines = [f"### {_md(title)}", "", "| " + " | ".join(_md(h) for h in head) + " |",
             "|" + "|".join("---" if i < 2 else "---:" for i in range(len(head))) + "|"]
    for row in rows:
        cells = [row["model"], row["family"], f"{row['params'] / 1e6:.2f}" if row.get("params") else "-",
                 f"{row['gmacs']:.3f}" if row.get("gmacs") is not None else "-",
                 f"{row['onnx_mb']:.1f}" if row.get("onnx_mb") else "-"]
        cells += [_cell(row.get(name)) for *_key, name in columns]
        for name in speedups:
            speed, _ci = int8_speedup(row, name)
            cells.append(f"{speed:.2f}x" if speed else "-")
        cells += [_quality(row.get(f"{rt}/int8_quality")) for rt in quality]
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    slower = slower_int8(rows, columns)
    lines += ["", *(f"- **{_md(sentence)}**" for sentence in slower)] if slower else []
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict]) -> str:
    """One line per measurement with :data:`records.COLUMNS`; empty where a record has no such figure."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else csv_cell(row[k]) for k in COLUMNS})
    return out.getvalue()


def to_json(rows: list[dict]) -> str:
    return json.dumps(rows, indent=2, default=str)
