"""One table from a results file: a row per model, grouped by family, a column per runtime and precision.

For each (model, runtime, precision, batch, threads) the newest record wins; a
failed newest record shows its reason instead of a number. INT8 accuracy records
(``sweep --accuracy-images``, ``run --accuracy``, ``eval``) add agreement with FP32,
the top-1 drop (trained weights only; "n/m": not meaningful) and calibration time.
"""

from __future__ import annotations

from collections import defaultdict

from rich.table import Table

from edgebench.models.registry import FAMILIES
from edgebench.results.records import newest

FAMILY_ORDER = (*FAMILIES, "imported")
PRECISION_ORDER = ("fp32", "fp16", "int8")


def latest_latency(records: list[dict], batch: int = 1, threads: int | None = None) -> dict[tuple, dict]:
    """Newest latency record per (model, runtime, precision) at ``batch`` (and ``threads``)."""
    return newest(records, lambda r: (r["model"]["name"], r["runtime"]["name"], r["precision"]),
                  lambda r: r.get("kind") == "latency" and r.get("batch") == batch
                  and (threads is None or r.get("threads") == threads))


def latest_int8_accuracy(records: list[dict], threads: int | None = None) -> dict[tuple, dict]:
    """Newest INT8 accuracy record per (model, runtime)."""
    return newest(records, lambda r: (r["model"]["name"], r["runtime"]["name"]),
                  lambda r: r.get("kind") == "accuracy" and r.get("precision") == "int8" and r.get("status") == "ok"
                  and (threads is None or r.get("threads") == threads))


def zoo_rows(records: list[dict], batch: int = 1, threads: int | None = None) -> tuple[list[dict], list[tuple]]:
    """Rows (one per model) and the (runtime, precision) columns present."""
    latest = latest_latency(records, batch, threads)
    columns = sorted({(rt, p) for _, rt, p in latest},
                     key=lambda c: (c[0], PRECISION_ORDER.index(c[1]) if c[1] in PRECISION_ORDER else 9))
    models: dict[str, dict] = defaultdict(dict)
    for (model, rt, precision), record in latest.items():
        row = models[model]
        row.setdefault("model", model)
        row.setdefault("family", record["model"].get("family", "?"))
        row.setdefault("params", record["model"].get("params"))
        row.setdefault("gmacs", record["model"].get("gmacs"))
        if record.get("onnx_bytes"):
            row["onnx_mb"] = record["onnx_bytes"] / 1e6
        cell = {"status": record["status"], "error": record.get("error"),
                "stability": record.get("stability", {}).get("verdict")}
        if record["status"] == "ok":
            cell.update(p50=record["latency_ms"]["p50"], p90=record["latency_ms"]["p90"],
                        p99=record["latency_ms"]["p99"], peak_rss_mb=(record.get("memory_mb") or {}).get("peak"))
        row[f"{rt}/{precision}"] = cell
    for (model, rt), record in latest_int8_accuracy(records, threads).items():
        if model in models:
            head = record.get("headline") or {}
            models[model][f"{rt}/int8_quality"] = {
                "agreement": head.get("agreement"), "drop": head.get("drop_points"), "drop_se": head.get("drop_se_points"),
                "images": (record.get("accuracy") or {}).get("images"), "calibration_s": record.get("calibration_seconds")}
    for row in models.values():
        for rt in {c[0] for c in columns}:
            fp32, int8 = row.get(f"{rt}/fp32", {}), row.get(f"{rt}/int8", {})
            if "p50" in fp32 and "p50" in int8:
                row[f"{rt}/int8_speedup"] = fp32["p50"] / int8["p50"]
    paired = newest(records, lambda r: (r["model"]["name"], r["runtime"]["name"]),
                    lambda r: r.get("kind") == "speedup" and r.get("batch") == batch
                    and (threads is None or r.get("threads") == threads))
    for (model, rt), record in paired.items():  # interleaved FP32/INT8 rounds win over two separate medians
        if model in models:
            models[model][f"{rt}/int8_speedup"] = record["speedup"]
            models[model][f"{rt}/int8_speedup_ci95"] = record["ci95"]
    ordered = sorted(models.values(), key=lambda r: (
        FAMILY_ORDER.index(r["family"]) if r["family"] in FAMILY_ORDER else 99, r["gmacs"] or 0, r["model"]))
    return ordered, columns


def _cell(cell: dict | None) -> str:
    if not cell:
        return "-"
    if cell["status"] != "ok":
        return f"failed: {(cell.get('error') or '')[:60]}"
    mark = "" if cell.get("stability") == "stable" else " unstable"
    rss = f" / {cell['peak_rss_mb']:.0f}" if cell.get("peak_rss_mb") else ""
    return f"{cell['p50']:.2f}{rss}{mark}"


def _quality(q: dict | None) -> str:
    """INT8 vs FP32 on the same runtime: agreement, drop ± SE (trained weights only), calibration seconds."""
    if not q:
        return "-"
    parts = [f"{q['agreement']:.3f}" if q.get("agreement") is not None else "-"]
    parts.append(f"{q['drop']:+.1f}±{q['drop_se']:.1f}" if q.get("drop") is not None else "n/m")
    parts.append(f"{q['calibration_s']:.0f}s" if q.get("calibration_s") is not None else "-")
    return " / ".join(parts)


def zoo_table(rows: list[dict], columns: list[tuple], title: str) -> Table:
    table = Table(title=title)
    for col in ("model", "family", "params M", "GMACs", "ONNX MB"):
        table.add_column(col, justify="left" if col in ("model", "family") else "right")
    runtimes = sorted({rt for rt, _ in columns})
    for rt, precision in columns:
        table.add_column(f"{rt} {precision}\np50 ms / peak RSS MB", justify="right")
    for rt in runtimes:
        if (rt, "int8") in columns and (rt, "fp32") in columns:
            table.add_column(f"{rt} int8 speed-up", justify="right")
    quality = [rt for rt in runtimes if any(f"{rt}/int8_quality" in row for row in rows)]
    for rt in quality:
        table.add_column(f"{rt} int8: top-1 agreement / drop pt / calibration", justify="right")
    family = None
    for row in rows:
        if family is not None and row["family"] != family:
            table.add_section()
        family = row["family"]
        cells = [row["model"], row["family"], f"{row['params'] / 1e6:.2f}" if row.get("params") else "-",
                 f"{row['gmacs']:.3f}" if row.get("gmacs") is not None else "-",
                 f"{row['onnx_mb']:.1f}" if row.get("onnx_mb") else "-"]
        cells += [_cell(row.get(f"{rt}/{p}")) for rt, p in columns]
        for rt in runtimes:
            if (rt, "int8") in columns and (rt, "fp32") in columns:
                speed, ci = row.get(f"{rt}/int8_speedup"), row.get(f"{rt}/int8_speedup_ci95")
                cells.append((f"{speed:.2f}x" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")) if speed else "-")
        cells += [_quality(row.get(f"{rt}/int8_quality")) for rt in quality]
        table.add_row(*cells)
    return table
