"""Names a user controls (a model or file name) in what other tools render: the Markdown report and the
gate's step summary (GitHub renders inline HTML in both), the CSV (a spreadsheet runs formulas) and the
HTML page. Each output is rendered by a real Markdown renderer / parsed by the csv module."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from conftest import edgebench
from markdown_it import MarkdownIt

from edgebench.results.escape import md_code
from edgebench.results.records import LatencyRecord

HTML_NAME = '<img src=x onerror="alert(1)">`<b>bold</b>`'
FORMULAS = ('=HYPERLINK("http://evil.example","x")', "+1+2", "-2+3", "@SUM(A1)")


def _render(markdown: str) -> str:
    """What GitHub shows: CommonMark with inline HTML on, plus tables."""
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)


def _results(path: Path, names: tuple[str, ...]) -> Path:
    records = [LatencyRecord(model={"name": n, "family": "cnn"}, runtime={"name": "ort", "version": "1.0"},
                             precision="fp32", batch=1, threads=2,
                             latency_ms={"p50": 1.0 + i, "p90": 1.0 + i, "p99": 1.0 + i},
                             stability={"verdict": "stable"}).to_dict() for i, n in enumerate(names)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_markdown_report_shows_html_in_a_name_as_text(tmp_path):
    results = _results(tmp_path / "r.jsonl", (HTML_NAME, "plain|pipe"))
    proc = edgebench("report", "--results", str(results), "--format", "markdown", cwd=tmp_path,
                     env={"EDGEBENCH_DB": "off"})
    assert proc.returncode == 0, proc.stderr
    rendered = _render(proc.stdout)
    assert "<img" not in rendered and "<b>" not in rendered, rendered
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in rendered  # shown, as text
    rows = [line for line in rendered.splitlines() if line.startswith("<td>")]
    assert "<td>plain|pipe</td>" in rows  # the pipe stays in its cell


def test_csv_cells_that_start_like_a_formula_are_text(tmp_path):
    results = _results(tmp_path / "r.jsonl", FORMULAS)
    proc = edgebench("report", "--results", str(results), "--format", "csv", cwd=tmp_path, env={"EDGEBENCH_DB": "off"})
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert sorted(r["model"] for r in rows) == sorted("'" + n for n in FORMULAS)
    assert all(not r[k].startswith(("=", "+", "-", "@")) for r in rows for k in r)
    assert {float(r["p50_ms"]) for r in rows} == {1.0, 2.0, 3.0, 4.0}  # numbers stay numbers


def test_html_page_escapes_names(tmp_path):
    results = _results(tmp_path / "r.jsonl", (HTML_NAME,))
    out = tmp_path / "report.html"
    proc = edgebench("report", "--results", str(results), "--html", str(out), cwd=tmp_path,
                     env={"EDGEBENCH_DB": "off"})
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    assert "<img src=x" not in page and "<b>bold</b>" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page


@pytest.mark.parametrize("text", ["a`b", "``", "`start", "end`", "x ``` y", "plain", "two\n\nlines|pipe"])
def test_code_spans_survive_backticks(text):
    rendered = _render(f"name {md_code(text)} here")
    code = rendered.split("<code>", 1)[1].split("</code>", 1)[0]
    expected = text.replace("\n", " ").replace("|", "\\|")
    assert code == expected.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    assert rendered.count("<code>") == 1 and "<p>" in rendered and rendered.count("<p>") == 1


def test_gate_summary_shows_a_hostile_file_name_as_code(tmp_path):
    """A real gate (budget only) of an ONNX file whose name holds a backtick and HTML."""
    from tiny_onnx import classifier
    name = "m`<img src=x onerror=alert(1)>`"
    classifier(tmp_path / "tiny.onnx")
    shutil.copy(tmp_path / "tiny.onnx", tmp_path / f"{name}.onnx")
    (tmp_path / "budget.toml").write_text('[[budget]]\nmodel = "*"\np50_ms = 1e6\n')
    summary = tmp_path / "summary.md"
    proc = edgebench("gate", "--candidate", f"{name}.onnx", "--budget", "budget.toml", "--runtime", "ort",
                     "--rounds", "1", "--round-seconds", "0.2", "--summary", str(summary),
                     "--results", str(tmp_path / "r.jsonl"), cwd=tmp_path,
                     env={"GITHUB_STEP_SUMMARY": "", "EDGEBENCH_DB": "off"})
    assert proc.returncode == 0, proc.stderr
    rendered = _render(summary.read_text())
    assert "<img" not in rendered, rendered
    assert f"<code>{name}.onnx</code>".replace("<img", "&lt;img").replace("1)>", "1)&gt;") in rendered


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_manifest_has_the_mode_of_the_engines_beside_it(tmp_path, umask):
    """A shared artifacts cache: manifest.json used to be 0600 (mkstemp) while the engines were 0644."""
    import os
    import stat
    import subprocess
    import sys

    from tiny_onnx import classifier
    classifier(tmp_path / "tiny.onnx")
    proc = subprocess.run([sys.executable, "-m", "edgebench.cli", "export", "--onnx", "tiny.onnx", "--runtime", "ort",
                           "--out", "art"], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
                          preexec_fn=lambda: os.umask(umask))
    assert proc.returncode == 0, proc.stderr
    [folder] = (tmp_path / "art").iterdir()
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*") if p.is_file()}
    assert modes["manifest.json"] == 0o666 & ~umask, modes
    assert set(modes.values()) == {0o666 & ~umask}, modes  # the same as every engine and ONNX file
