"""The terminal table fits a terminal: a line per model x runtime with the precisions side by side, however
many runtimes were measured; the wide form (a column per runtime and precision) stays in Markdown and CSV."""

from __future__ import annotations

import io

from rich.console import Console

from edgebench.results.records import LatencyRecord
from edgebench.results.zoo_table import zoo_rows, zoo_table

MODELS = {"mobilenet_v3_small": ("mobile-cnn", 2.5e6, 0.06), "resnet50": ("classic-cnn", 25.6e6, 4.1),
          "vit_b_16": ("vit", 86.6e6, 17.6)}
RUNTIMES = ("ort", "openvino", "executorch")


def _records() -> list[dict]:
    out = []
    for i, (model, (family, params, gmacs)) in enumerate(MODELS.items()):
        for j, runtime in enumerate(RUNTIMES):
            for k, precision in enumerate(("fp32", "int8")):
                p50 = 10.0 * (i + 1) + j + (0.5 if precision == "int8" else 0.0) + k / 100
                out.append(LatencyRecord(
                    model={"name": model, "family": family, "params": params, "gmacs": gmacs},
                    runtime={"name": runtime}, precision=precision, batch=1, threads=2,
                    latency_ms={"p50": p50, "p90": p50, "p99": p50}, memory_mb={"peak": 100.0 + j},
                    stability={"verdict": "stable"}).to_dict())
    return out


def _render(width: int) -> str:
    rows, columns = zoo_rows(_records())
    console = Console(width=width, file=io.StringIO())
    console.print(zoo_table(rows, columns, "three runtimes"))
    return console.file.getvalue()


def test_three_runtimes_fit_120_columns_with_no_header_cut():
    text = _render(120)
    assert "…" not in text, text
    assert max(len(line) for line in text.splitlines()) <= 120


def test_each_model_and_runtime_has_its_line_with_both_precisions():
    rows, columns = zoo_rows(_records())
    table = zoo_table(rows, columns, "t")
    assert len(table.columns) == 9  # model, family, params, GMACs, ONNX MB, runtime, fp32, int8, int8 speed-up
    text = _render(200)
    lines = [line for line in text.splitlines() if any(f" {rt} " in line for rt in RUNTIMES)]
    assert len(lines) == len(MODELS) * len(RUNTIMES)
    for record in _records():
        p50 = f"{record['latency_ms']['p50']:.2f} / {record['memory_mb']['peak']:.0f}"
        assert sum(p50 in line and f" {record['runtime']['name']} " in line for line in lines) == 1, p50
