"""One table of FP32 vs INT8 accuracy and speed from ``run --accuracy`` records.

``python -m edgebench.results.accuracy_table [results.jsonl] [--json]`` (``make bench-accuracy``): the newest
INT8 accuracy record of each (model, runtime, INT8 recipe, --max-drop budget) makes one row; with a
budget, "fallback cost" is the INT8 p50 over that of the every-layer INT8 engine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from edgebench.quantize.int8 import accuracy_control, layers_in_float
from edgebench.results.records import newest
from edgebench.results.store import read_records

COLUMNS = ("model", "runtime", "recipe", "eval imgs", "torch fp32", "fp32 top-1", "int8 top-1", "drop ± SE (pt)",
           "agree", "cosine", "fp32 p50 ms", "int8 p50 ms", "speed-up", "calib s", "in float", "max drop",
           "fallback cost")


def _recipe(r: dict) -> dict:
    """The ORT/NNCF recipe record, or a backend's own one-line recipe as its name."""
    recipe = r.get("int8_recipe") or {}
    return {"name": recipe} if isinstance(recipe, str) else recipe


def rows(records: list[dict]) -> list[dict]:
    found = newest(records, lambda r: (r["model"]["name"], r["runtime"]["name"],
                                       _recipe(r).get("name") or "", _budget(r)),
                   lambda r: r.get("kind") == "accuracy" and r.get("precision") == "int8" and bool(r.get("headline"))
                   and bool(r.get("latency")))
    out = []
    for (model, runtime, recipe, budget), r in sorted(found.items(), key=lambda kv: (kv[0][:3], kv[0][3] or -1)):
        h, lat = r["headline"], r.get("latency") or {}
        b = (r.get("batches") or [1])[0]
        p50 = {p: ((lat.get(f"{p}/b{b}") or {}).get("latency_ms") or {}).get("p50") for p in ("fp32", "int8")}
        build = r.get("int8_engine") or {}
        out.append({"model": model, "runtime": runtime, "recipe": recipe or None,
                    "cpu_int8": _recipe(r).get("cpu_int8"), "eval_images": r["accuracy"]["images"],
                    "skipped": r["accuracy"]["skipped"], **h, "fp32_p50_ms": p50["fp32"], "int8_p50_ms": p50["int8"],
                    "speedup": (r.get("speedup_vs_fp32_p50") or {}).get(f"b{b}"),
                    "calibration_seconds": build.get("seconds"), "layers_in_float": len(layers_in_float(build)),
                    "top1_meaningful": r["accuracy"]["top1_meaningful"], "threads": r.get("threads"),
                    "max_drop": budget,
                    "fallback_cost": ((r.get("int8_fallback") or {}).get("latency_cost_p50") or {}).get(f"b{b}")})
    return out


def _budget(record: dict) -> float | None:
    return accuracy_control(record.get("int8_engine") or {}).get("max_drop_points")


def _f(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


def main(argv: list[str]) -> int:
    path = Path(next((a for a in argv if not a.startswith("-")), "results/accuracy.jsonl"))
    found = rows(read_records(path).records)
    if not found:
        print(f"error: no INT8 accuracy records in {path}", file=sys.stderr)
        return 2
    if "--json" in argv:
        print(json.dumps(found, indent=2))
        return 0
    table = Table(title=f"INT8 vs FP32 on the evaluation split ({path})")
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in ("model", "runtime") else "right")
    for r in found:
        drop = "-" if r["drop_points"] is None else f"{r['drop_points']:+.2f} ± {r['drop_se_points']:.2f}"
        table.add_row(r["model"], r["runtime"], r["recipe"] or "-", str(r["eval_images"]), _f(r["torch_fp32_top1"], ".1f"),
                      _f(r["fp32_top1"], ".1f"), _f(r["top1"], ".1f"), drop, _f(r["agreement"], ".3f"),
                      _f(r["cosine_mean"], ".4f"), _f(r["fp32_p50_ms"]), _f(r["int8_p50_ms"]),
                      _f(r["speedup"]), _f(r["calibration_seconds"], ".1f"), str(r["layers_in_float"]),
                      _f(r["max_drop"], ".1f"), _f(r["fallback_cost"]))
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
