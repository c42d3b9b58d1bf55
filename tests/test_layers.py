"""The layers contract is strict: every layer is one package or independent siblings (``|``), never a
pair that may import each other (``:``), in the order docs/architecture.md draws."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest brings tomli on 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def _layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    return next(c["layers"] for c in config if c["type"] == "layers")


def test_the_layers_have_no_sibling_pairs():
    assert not [layer for layer in _layers() if ":" in layer]


def test_results_sit_below_bench_and_quantize_above_build():
    order = [name.strip() for layer in _layers() for name in layer.split("|")]
    position = {name.removeprefix("edgebench."): order.index(name) for name in order}  # top first
    assert position["bench"] < position["results"] < position["quantize"] < position["build"]


def test_report_measure_peak_runs_the_measurement_from_the_workflow(tmp_path):
    """``report --measure-peak`` (workflow.peaks hands bench's measurement to results) appends one FP32 and
    one INT8 ``peak`` record, and the report reads them back."""
    from click.testing import CliRunner

    from edgebench.cli import main
    results = tmp_path / "results.jsonl"
    results.write_text("")
    outcome = CliRunner().invoke(main, ["report", "--results", str(results), "--measure-peak", "--threads", "1",
                                       "--format", "csv"])
    assert outcome.exit_code == 0, outcome.output
    peaks = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(p["kind"], p["precision"], p["threads"]) for p in peaks] == [("peak", "fp32", 1), ("peak", "int8", 1)]
    assert all(p["gmacs_per_s"] > 0 for p in peaks)


def test_no_module_imports_itself_through_others():
    """No import circle, function-level imports included (grimp, import-linter's graph, reads both): e.g.
    the results store writes the JSONL file and then the history, and the history reads the JSONL file,
    but neither imports the store."""
    grimp = pytest.importorskip("grimp", reason="import-linter is not installed (pip install -e '.[dev]')")
    graph = grimp.build_graph("edgebench", cache_dir=None)
    circles = [(module, chain) for module in sorted(graph.modules)
               for imported in graph.find_modules_directly_imported_by(module)
               if (chain := graph.find_shortest_chain(importer=imported, imported=module))]
    assert not circles


_NO_TORCH = '''import os
open(os.environ["EDGEBENCH_TORCH_TRIED"], "a").write("torch was imported\\n")
raise ImportError("torch is made unimportable for this test")
'''


def test_run_onnx_measures_with_torch_unimportable(tmp_path):
    """``run --onnx`` on ONNX Runtime is an ONNX-only path: with a ``torch`` that raises on import first on
    the path it still measures, and no module even tried to import torch (the stand-in notes each try)."""
    import tiny_onnx
    blocker = tmp_path / "no-torch"
    (blocker / "torch").mkdir(parents=True)
    (blocker / "torch" / "__init__.py").write_text(_NO_TORCH)
    tried, results = tmp_path / "torch-tried.txt", tmp_path / "results.jsonl"
    onnx = tiny_onnx.classifier(tmp_path / "tiny.onnx")
    path = os.pathsep.join(p for p in (str(blocker), str(ROOT), os.environ.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, "-m", "edgebench.cli", "run", "--onnx", str(onnx), "--runtime", "ort",
                           "--out", str(tmp_path / "art"), "--results", str(results), "--threads", "1",
                           "--warmup", "1", "--warmup-seconds", "0", "--iterations", "3", "--min-seconds", "0",
                           "--retries", "0"],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": path, "EDGEBENCH_TORCH_TRIED": str(tried)},
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not tried.exists(), proc.stderr[-3000:]
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(r["kind"], r["status"]) for r in records] == [("latency", "ok")]
