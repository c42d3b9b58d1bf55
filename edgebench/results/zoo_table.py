"""One table from a results file: the models grouped by family, their runtimes and precisions.

:func:`zoo_rows` is the wide form (a row per model, a column per runtime and precision: Markdown, the
HTML page); :func:`zoo_table` prints it as a line per model x runtime, the precisions side by side.

For each (model, runtime, device, precision, batch, threads) the newest record wins; a
failed record never hides an older good number of the same key, it is shown beside it, and
another device or thread count is another column. INT8 accuracy records
(``sweep --accuracy-images``, ``run --accuracy``, ``eval``) add agreement with FP32,
the top-1 drop (trained weights only; "n/m": not meaningful) and calibration time.
"""

from __future__ import annotations

from collections import defaultdict

from rich.table import Table

from edgebench.models.registry import FAMILIES
from edgebench.results.records import device_of, measurement_key, newest

FAMILY_ORDER = (*FAMILIES, "imported")
PRECISION_ORDER = ("fp32", "fp16", "int8")


def latest_latency(records: list[dict], batch: int = 1, threads: int | None = None) -> dict[tuple, dict]:
    """Newest latency record per (model, runtime, device, precision, threads) at ``batch`` (and ``threads``);
    a failed record never hides an older good one of the same key: the good one is kept, with the newer
    failure under ``newer_failure``."""
    def keep(r: dict) -> bool:
        return r.get("kind") == "latency" and r.get("batch") == batch and (threads is None or r.get("threads") == threads)

    def key(r: dict) -> tuple:
        _kind, model, runtime, device, precision, _batch, thr = measurement_key(r)
        return model, runtime, device, precision, thr

    good = newest(records, key, lambda r: keep(r) and r.get("status") == "ok")
    bad = newest(records, key, lambda r: keep(r) and r.get("status") != "ok")
    latest = {**bad, **good}
    for k, failure in bad.items():
        if k in good and str(failure.get("timestamp", "")) >= str(good[k].get("timestamp", "")):
            latest[k] = {**good[k], "newer_failure": {"error": failure.get("error"),
                                                      "timestamp": failure.get("timestamp")}}
    return latest


def latest_int8_accuracy(records: list[dict], threads: int | None = None) -> dict[tuple, dict]:
    """Newest INT8 accuracy record per (model, runtime)."""
    return newest(records, lambda r: (r["model"]["name"], r["runtime"]["name"]),
                  lambda r: r.get("kind") == "accuracy" and r.get("precision") == "int8" and r.get("status") == "ok"
                  and (threads is None or r.get("threads") == threads))


def column_name(runtime: str, device: str, precision: str, threads: int | None, show_threads: bool) -> str:
    """A report column: ``ort/fp32``; a device other than the runtime's default and, when the records mix
    thread counts, the threads are part of it (``ort:cuda/fp32``, ``ort/fp32@2t``)."""
    default = device_of({"runtime": {"name": runtime}})
    name = f"{runtime}/{precision}" if device == default else f"{runtime}:{device}/{precision}"
    return f"{name}@{threads}t" if show_threads else name


def zoo_rows(records: list[dict], batch: int = 1, threads: int | None = None) -> tuple[list[dict], list[tuple]]:
    """Rows (one per model) and the columns present: (runtime, device, precision, threads, name)."""
    latest = latest_latency(records, batch, threads)
    show_threads = len({k[4] for k in latest}) > 1
    keys = sorted({k[1:] for k in latest}, key=lambda c: (c[0], c[1], str(c[3]), PRECISION_ORDER.index(c[2])
                                                          if c[2] in PRECISION_ORDER else 9))
    columns = [(*k, column_name(*k, show_threads)) for k in keys]
    names = {c[:4]: c[4] for c in columns}
    models: dict[str, dict] = defaultdict(dict)
    for (model, *column), record in latest.items():
        row = models[model]
        row.setdefault("model", model)
        row.setdefault("family", record["model"].get("family", "?"))
        row.setdefault("params", record["model"].get("params"))
        row.setdefault("gmacs", record["model"].get("gmacs"))
        if record.get("onnx_bytes"):
            row["onnx_mb"] = record["onnx_bytes"] / 1e6
        cell = {"status": record["status"], "error": record.get("error"),
                "stability": (record.get("stability") or {}).get("verdict"), "device": column[1],
                "threads": record.get("threads")}
        if record["status"] == "ok":
            own = record.get("memory") if isinstance(record.get("memory"), dict) else {}
            cell.update(p50=record["latency_ms"]["p50"], p90=record["latency_ms"]["p90"],
                        p99=record["latency_ms"]["p99"], peak_rss_mb=(record.get("memory_mb") or {}).get("peak"),
                        engine_memory_mb=own.get("engine_mb"), first_inference_ms=record.get("first_inference_ms"),
                        load_seconds=record.get("load_seconds"))
        if "newer_failure" in record:
            cell["newer_failure"] = record["newer_failure"]
        row[names[tuple(column)]] = cell
    for (model, rt), record in latest_int8_accuracy(records, threads).items():
        if model in models:
            head = record.get("headline") or {}
            models[model][f"{rt}/int8_quality"] = {
                "agreement": head.get("agreement"), "drop": head.get("drop_points"), "drop_se": head.get("drop_se_points"),
                "images": (record.get("accuracy") or {}).get("images"), "calibration_s": record.get("calibration_seconds")}
    for row in models.values():
        for rt, device, precision, thr, name in columns:
            if precision == "int8" and (rt, device, "fp32", thr) in names:
                fp32, int8 = row.get(names[(rt, device, "fp32", thr)], {}), row.get(name, {})
                if "p50" in fp32 and "p50" in int8:
                    row[f"{name.replace('/int8', '')}/int8_speedup"] = fp32["p50"] / int8["p50"]
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


MEMORY_HEADING = "p50 ms / engine memory MB"


def memory_text(cell: dict) -> str:
    """`` / <engine's own memory, load + run>``; a record made before that was measured shows its process peak,
    marked ``proc`` (it counts the runtime's Python import, so it is not the same figure)."""
    if cell.get("engine_memory_mb") is not None:
        return f" / {cell['engine_memory_mb']:.0f}"
    return f" / {cell['peak_rss_mb']:.0f} proc" if cell.get("peak_rss_mb") else ""


def _cell(cell: dict | None) -> str:
    if not cell:
        return "-"
    if cell["status"] != "ok":
        return f"failed: {(cell.get('error') or '')[:60]}"
    mark = "" if cell.get("stability") == "stable" else f" {cell.get('stability') or 'unstable'}"
    rss = memory_text(cell)
    failure = cell.get("newer_failure")
    newer = f"; newer attempt failed: {(failure.get('error') or '')[:40]}" if failure else ""
    return f"{cell['p50']:.2f}{rss}{mark}{newer}"


def _quality(q: dict | None) -> str:
    """INT8 vs FP32 on the same runtime: agreement, drop ± SE (trained weights only), calibration seconds."""
    if not q:
        return "-"
    parts = [f"{q['agreement']:.3f}" if q.get("agreement") is not None else "-"]
    parts.append(f"{q['drop']:+.1f}±{q['drop_se']:.1f}" if q.get("drop") is not None else "n/m")
    parts.append(f"{q['calibration_s']:.0f}s" if q.get("calibration_s") is not None else "-")
    return " / ".join(parts)


def speedup_columns(columns: list[tuple]) -> list[str]:
    """The INT8 columns that have an FP32 column of the same runtime, device and threads to be compared with."""
    return [name for rt, device, precision, thr, name in columns if precision == "int8"
            and any(c[:4] == (rt, device, "fp32", thr) for c in columns)]


def int8_speedup(row: dict, name: str) -> tuple[float | None, list[float] | None]:
    """The INT8 speed-up of column ``name`` in ``row`` and its 95% CI (paired rounds only; else None)."""
    base = name.replace("/int8", "")
    return row.get(f"{base}/int8_speedup"), row.get(f"{base}/int8_speedup_ci95")


def slower_int8(rows: list[dict], columns: list[tuple]) -> list[str]:
    """One plain sentence per INT8 engine measured slower than FP32 (upper CI bound below 1 where paired):
    on x86 without VNNI, ORT's accurate U8U8 recipe runs depthwise models at ~0.2x (README, INT8 recipes)."""
    out = []
    for row in rows:
        for name in speedup_columns(columns):
            speed, ci = int8_speedup(row, name)
            if speed and (ci[1] < 1 if ci else speed < 1):
                where = name.replace("/int8", "").replace("/", " ")
                out.append(f"INT8 is slower than FP32 here: {row['model']} on {where}, "
                           f"{speed:.2f}x" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "") + " of FP32's speed")
    return out


def runtime_groups(columns: list[tuple]) -> dict[str, dict[str, str]]:
    """The columns by what the terminal table gives a line each: ``{"ort": {"fp32": "ort/fp32", "int8": ...}}``
    (a device other than the default, or mixed thread counts, make their own line: ``ort:cuda``, ``ort@2t``)."""
    groups: dict[str, dict[str, str]] = {}
    for _rt, _device, precision, _thr, name in columns:
        groups.setdefault(name.replace(f"/{precision}", "", 1), {})[precision] = name
    return groups


def zoo_table(rows: list[dict], columns: list[tuple], title: str) -> Table:
    """The terminal table: a line per model x runtime, its precisions side by side, so that it keeps about ten
    columns however many runtimes there are (one column per runtime and precision made 16 for three
    runtimes, and every header was cut at the usual widths). ``--format markdown`` and ``csv`` keep the
    wide form."""
    table = Table(title=title, caption=f"{MEMORY_HEADING}: median latency / the engine's own memory (load + run; 'proc': an older "
                  "record's process peak)")
    for col in ("model", "family", "params M", "GMACs", "ONNX MB", "runtime"):
        table.add_column(col, justify="left" if col in ("model", "family", "runtime") else "right",
                         no_wrap=col in ("model", "runtime"))
    groups = runtime_groups(columns)
    precisions = [p for p in PRECISION_ORDER if any(p in g for g in groups.values())]
    precisions += sorted({p for g in groups.values() for p in g} - set(precisions))
    for precision in precisions:
        table.add_column(f"{precision}\n{MEMORY_HEADING}", justify="right")
    speedups = set(speedup_columns(columns))
    if speedups:
        table.add_column("int8\nspeed-up", justify="right")
    quality = any(f"{c[0]}/int8_quality" in row for row in rows for c in columns)
    if quality:
        table.add_column("int8: top-1 agreement\n/ drop pt / calibration", justify="right")
    family = None
    for row in rows:
        if family is not None and row["family"] != family:
            table.add_section()
        family = row["family"]
        model = [row["model"], row["family"], f"{row['params'] / 1e6:.2f}" if row.get("params") else "-",
                 f"{row['gmacs']:.3f}" if row.get("gmacs") is not None else "-",
                 f"{row['onnx_mb']:.1f}" if row.get("onnx_mb") else "-"]
        for label, by_precision in groups.items():
            if not any(row.get(name) for name in by_precision.values()):
                continue
            cells = [*model, label, *(_cell(row.get(by_precision[p])) if p in by_precision else "-"
                                      for p in precisions)]
            model = ["", "", "", "", ""]  # the model's figures once, on its first runtime's line
            if speedups:
                speed, ci = int8_speedup(row, by_precision["int8"]) if by_precision.get("int8") in speedups else (
                    None, None)
                cells.append((f"{speed:.2f}x" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")) if speed else "-")
            if quality:
                runtime = next(c[0] for c in columns if c[4] in by_precision.values())
                cells.append(_quality(row.get(f"{runtime}/int8_quality")))
            table.add_row(*cells)
    return table
