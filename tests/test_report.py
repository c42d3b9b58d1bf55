"""`edgebench report`: Markdown / CSV against the records, the HTML page in a real headless Chromium,
the op-class table on real ORT and OpenVINO profiles, and bad input.

One small real sweep feeds every test: mobilenet_v3_small (depthwise, SE, hard-swish) and deit_tiny
(attention) with random weights, squeezenet1_1 with its trained weights (top-1), ORT and OpenVINO,
FP32 and INT8, --profile, a few iterations.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, assert_one_line_error, edgebench

MODELS = ("mobilenet_v3_small", "deit_tiny", "squeezenet1_1")
FIGURES = ("pareto", "speedup", "op_classes", "attained", "memory", "latency")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, weights_dir, data_dir, artifact_cache) -> Path:
    """results.jsonl of the small real sweep, plus this machine's GEMM peak. EDGEBENCH_REPORT_RESULTS: the
    results file of this same sweep, run before, to re-check the report without measuring again."""
    if os.environ.get("EDGEBENCH_REPORT_RESULTS"):
        return Path(os.environ["EDGEBENCH_REPORT_RESULTS"])
    work = tmp_path_factory.mktemp("report")
    results = work / "results.jsonl"
    # The session's FP32 exports, cloned (the sweep calibrates): the two models without trained weights get
    # `auto`'s seeded random ones, so the random exports' content key; the sweep rebuilds whatever differs.
    for name in MODELS:
        trained = name == "squeezenet1_1"
        artifact_cache.clone(artifact_cache.export(name, weights="auto" if trained else "random",
                                                   weights_dir=weights_dir if trained else None), work / "artifacts")
    proc = edgebench("sweep", "--models", ",".join(MODELS), "--runtimes", "ort,openvino", "--precisions", "fp32,int8",
                     "--profile", "--threads", "2", "--warmup", "1", "--warmup-seconds", "0", "--iterations", "10",
                     "--min-seconds", "0.2", "--retries", "0", "--num", "16", "--accuracy-images", "40",
                     "--data", str(data_dir), "--out", str(work / "artifacts"), "--results", str(results),
                     cwd=work, env={"EDGEBENCH_WEIGHTS": str(weights_dir)}, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from edgebench.bench.peak import measure_peak
    from edgebench.results.store import append_records
    append_records([measure_peak(2, "fp32", size=512, min_seconds=0.3),
                    measure_peak(2, "int8", size=512, min_seconds=0.3)], results)
    return results


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _newest_latency(records: list[dict]) -> dict[tuple, dict]:
    found: dict[tuple, dict] = {}
    for r in records:
        if r["kind"] == "latency":
            k = (r["model"]["name"], r["runtime"]["name"], r["precision"], r["batch"], r["threads"])
            if k not in found or r["timestamp"] >= found[k]["timestamp"]:
                found[k] = r
    return found


# ---------------------------------------------------------------- formats

@pytest.mark.integration
def test_csv_has_every_measurement_with_the_records_numbers(sweep):
    proc = edgebench("report", "--results", str(sweep), "--format", "csv", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    newest = _newest_latency(_records(sweep))
    assert len(rows) == len(newest) == len(MODELS) * 2 * 2
    accuracy = {(r["model"]["name"], r["runtime"]["name"]): r for r in _records(sweep) if r["kind"] == "accuracy"}
    for row in rows:
        r = newest[(row["model"], row["runtime"], row["precision"], int(row["batch"]), int(row["threads"]))]
        for col, key in (("p50_ms", "p50"), ("p90_ms", "p90"), ("p99_ms", "p99")):
            assert float(row[col]) == r["latency_ms"][key]
        assert float(row["peak_rss_mb"]) == r["memory_mb"]["peak"]
        assert float(row["engine_memory_mb"]) == r["memory"]["engine_mb"]  # the engine's own: load + run
        assert float(row["import_mb"]) == r["memory"]["import_mb"]
        assert float(row["build_s"]) == r["build_seconds"] and float(row["load_s"]) == r["load_seconds"]
        assert float(row["first_inference_ms"]) == r["first_inference_ms"]
        assert row["stability"] == r["stability"]["verdict"] and row["record_id"] == r["id"]
        assert float(row["gmacs"]) == r["model"]["gmacs"]
        head = accuracy[(row["model"], row["runtime"])]["headline"]
        if row["precision"] == "int8":
            assert float(row["agreement"]) == head["agreement"]
            fp32 = newest[(row["model"], row["runtime"], "fp32", 1, 2)]
            paired = [x for x in _records(sweep) if x["kind"] == "speedup" and x["model"]["name"] == row["model"]
                      and x["runtime"]["name"] == row["runtime"]]  # sweep fp32,int8: interleaved rounds win
            want = paired[-1]["speedup"] if paired else fp32["latency_ms"]["p50"] / r["latency_ms"]["p50"]
            assert float(row["int8_speedup"]) == pytest.approx(want)
        if row["model"] == "squeezenet1_1":  # trained weights: top-1 and the drop
            assert row["weights"] != "random"
            assert float(row["top1"]) == head["top1" if row["precision"] == "int8" else "fp32_top1"]
        else:
            assert row["weights"] == "random" and row["top1"] == ""


@pytest.mark.integration
def test_markdown_has_the_tables_rows_and_numbers(sweep):
    proc = edgebench("report", "--results", str(sweep), "--format", "markdown", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split("|")[1].strip(): line for line in proc.stdout.splitlines() if line.startswith("| ")}
    newest = _newest_latency(_records(sweep))
    for model in MODELS:
        cells = [c.strip() for c in lines[model].split("|")[1:-1]]
        for rt in ("openvino", "ort"):
            for p in ("fp32", "int8"):
                r = newest[(model, rt, p, 1, 2)]
                want = f"{r['latency_ms']['p50']:.2f} / {r['memory']['engine_mb']:.0f}"  # the engine's own memory
                want += "" if r["stability"]["verdict"] == "stable" else f" {r['stability']['verdict']}"
                assert want in cells, (model, rt, p, want, cells)


@pytest.mark.integration
def test_table_is_todays_table(sweep):
    """`report` without --format prints exactly what bench.report's zoo table prints."""
    from rich.console import Console

    from edgebench.results.zoo_table import slower_int8, zoo_rows, zoo_table
    proc = edgebench("report", "--results", str(sweep), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    console = Console(width=200, file=io.StringIO())
    rows, columns = zoo_rows(_records(sweep), 1, None)
    console.print(zoo_table(rows, columns, f"{sweep} (batch 1)"))
    for sentence in slower_int8(rows, columns):
        console.print(sentence, style="bold", markup=False)
    assert proc.stdout == console.file.getvalue()


def test_an_int8_engine_slower_than_fp32_is_said_plainly():
    """Issue 12: where the accurate recipe is slower than FP32, the report says so (a CI that reaches 1: not)."""
    from edgebench.results.reports.formats import markdown
    from edgebench.results.zoo_table import slower_int8
    columns = [(rt, "cpu", p, 2, f"{rt}/{p}") for rt in ("ort", "openvino") for p in ("fp32", "int8")]
    rows = [{"model": "tf_efficientnet_lite0", "family": "mobile-cnn", "ort/int8_speedup": 0.18,
             "ort/int8_speedup_ci95": [0.15, 0.20], "openvino/int8_speedup": 1.51},
            {"model": "mobilenet_v2", "family": "mobile-cnn", "ort/int8_speedup": 0.97,
             "ort/int8_speedup_ci95": [0.90, 1.05], "openvino/int8_speedup": 0.9}]
    said = slower_int8(rows, columns)
    assert said == ["INT8 is slower than FP32 here: tf_efficientnet_lite0 on ort, 0.18x [0.15, 0.20] of FP32's speed",
                    "INT8 is slower than FP32 here: mobilenet_v2 on openvino, 0.90x of FP32's speed"]
    assert all(f"- **{s}**" in markdown(rows, columns, "t") for s in said)


# ---------------------------------------------------------------- op classes on real profiles

def _profiles(sweep, runtime: str, model: str) -> dict[str, list[dict]]:
    newest = _newest_latency(_records(sweep))
    return {p: newest[(model, runtime, p, 1, 2)]["runtime"]["settings"]["layer_profile"] for p in ("fp32", "int8")}


@pytest.mark.integration
def test_op_classes_on_real_ort_profiles(sweep):
    from edgebench.portable.layer_profile import ATTN, DENSE, DW, LINEAR, NORM, QDQ, SE, SOFTMAX
    from edgebench.results.reports.op_classes import class_shares, classify, se_scopes
    mbv3 = _profiles(sweep, "ort", "mobilenet_v3_small")
    ov = _profiles(sweep, "openvino", "mobilenet_v3_small")
    for p, rows in mbv3.items():
        scopes = se_scopes([r["layer"] for r in rows])
        dw = [r for r in rows if classify("ort", r, scopes) == DW]
        # every depthwise conv ORT ran is one OpenVINO ran as a GroupConvolution
        assert len(dw) == sum(r["op"] == "GroupConvolution" for r in ov[p]) > 0, p
        assert all(r["conv_group"] > 1 and r["channels_per_group"] == 1 for r in dw)
        shares = class_shares("ort", rows)
        assert shares.get(DENSE) and shares.get(SE), (p, shares)
    assert class_shares("ort", mbv3["int8"]).get(QDQ) and not class_shares("ort", mbv3["fp32"]).get(QDQ)
    for p, rows in _profiles(sweep, "ort", "deit_tiny").items():
        shares = class_shares("ort", rows)
        assert shares.get(ATTN) and shares.get(SOFTMAX) and shares.get(NORM) and shares.get(LINEAR), (p, shares)
        for r in rows:  # QK^T and AV are attention, the qkv / proj / mlp matmuls linear layers
            if r["op"] in ("MatMul", "QLinearMatMul"):
                want = LINEAR if re.search(r"/(qkv|proj|fc1|fc2)/", r["layer"]) else ATTN
                assert classify("ort", r) == want, r


@pytest.mark.integration
def test_op_classes_on_real_openvino_profiles(sweep):
    from edgebench.portable.layer_profile import ATTN, DW, LINEAR, NORM, OTHER, SE
    from edgebench.results.reports.op_classes import classify, se_scopes
    for p, rows in _profiles(sweep, "openvino", "mobilenet_v3_small").items():
        scopes = se_scopes([r["layer"] for r in rows])
        found = {r["layer"]: classify("openvino", r, scopes) for r in rows}
        assert {found[r["layer"]] for r in rows if r["op"] == "GroupConvolution"} == {DW}
        assert any(c == SE for c in found.values()) and any("scale_activation" in k for k in found)
        assert all(c == SE for k, c in found.items() if "scale_activation" in k)
    for p, rows in _profiles(sweep, "openvino", "deit_tiny").items():
        classes = {classify("openvino", r) for r in rows}
        assert {ATTN, NORM, LINEAR} <= classes, (p, classes)
        assert all(classify("openvino", r) == LINEAR for r in rows if r["op"].startswith("FullyConnected"))
        unknown = [r for r in rows if classify("openvino", r) == OTHER and r["share"] > 0.02  # a residual add is
                   and not r["layer"].rsplit("/", 1)[-1].startswith(("Add", "Sub", "Div"))]  # "other" by design
        assert not unknown, unknown


def test_op_classes_executorch_operator_names():
    """ExecuTorch rows as its profile writes them (real ETDump rows are checked in tests/test_executorch.py): XNNPACK's
    "Fully Connected" is a dense conv, SE or linear by the build's operator map, and its own class without one."""
    from edgebench.portable.layer_profile import DENSE, DW, LINEAR, MOVE, NORM, QDQ, SE, UNMAPPED
    from edgebench.results.reports.op_classes import classify
    fc = {"op": "Fully Connected", "kernel": "NC, QS8, QC8W GEMM"}
    assert [classify("executorch", {**fc, **extra}) for extra in (
        {"source": "conv 1x1"}, {"source": "conv 1x1 on a 1x1 map"}, {"source": "linear"}, {})] == [
        DENSE, SE, LINEAR, UNMAPPED]
    assert classify("executorch", {"op": "Convolution", "kernel": "NHWC, QC8 DWConv"}) == DW
    assert classify("executorch", {"op": "Convolution", "kernel": "NHWC, F32 IGEMM"}) == DENSE
    assert classify("executorch", {"op": "Convert", "kernel": "NC"}) == QDQ
    assert classify("executorch", {"op": "native_layer_norm.out", "kernel": "portable"}) == NORM
    assert classify("executorch", {"op": "Constant Pad", "kernel": "ND, X32"}) == MOVE


def test_op_classes_tensorrt_layer_names():
    """TensorRT: no GPU here, so not a real profile: layer names in TensorRT's own conventions (fused
    ``A + B`` layers, reformatting copies, Myelin foreign nodes, Q/DQ layers)."""
    from edgebench.portable.layer_profile import ACT, ATTN, DENSE, DW, LINEAR, MOVE, QDQ, SE, SOFTMAX
    from edgebench.results.reports.op_classes import classify, se_scopes
    names = {
        "/features/features.0/features.0.0/Conv + /features/features.0/features.0.2/HardSigmoid": DENSE,
        "/blocks/blocks.1/blocks.1.0/conv_dw/Conv + /blocks/blocks.1/blocks.1.0/bn1/act/Relu": DW,
        "Reformatting CopyNode for Input Tensor 0 to /features/features.1/block/block.0/block.0.0/Conv": MOVE,
        "/features/features.1/block/block.1/scale_activation/HardSigmoid": SE,
        "QuantizeLinear_7": QDQ, "/blocks/blocks.0/attn/qkv/MatMul": LINEAR, "/blocks/blocks.0/attn/MatMul_1": ATTN,
        "{ForeignNode[/blocks/blocks.0/attn/Transpose.../blocks/blocks.0/attn/Softmax]}": ATTN,
        "/blocks/blocks.0/attn/Softmax": SOFTMAX, "PWN(/blocks/blocks.0/mlp/act/Erf, /blocks/blocks.0/mlp/act/Mul)": ACT,
    }
    scopes = se_scopes(list(names))
    for name, want in names.items():
        assert classify("trt", {"layer": name, "op": "", "kernel": ""}, scopes) == want, name


# ---------------------------------------------------------------- the page in a real browser

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr",
                  "--v=0")
PROBE = """<script>window.addEventListener('load',function(){var out=[];
document.querySelectorAll('figure[data-figure]').forEach(function(f){var s=f.querySelector('svg'),
b=s?s.getBoundingClientRect():{width:0,height:0};out.push(f.dataset.figure+':'+Math.round(b.width)+'x'+
Math.round(b.height));});var p=document.createElement('pre');p.id='probe';p.textContent=out.join(' ');
document.body.appendChild(p);});</script>"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("no chromium: `apt-get install -y chromium` (.ci/run does this where apt-get works)")
    return found


def _browse(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                          check=False, capture_output=True, text=True, timeout=180)


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]


@pytest.mark.system
def test_console_errors_are_seen(tmp_path):
    """The console check can fail: a page that logs an error is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body>x<script>console.error('edgebench-probe-error')</script></body></html>")
    proc = _browse(bad, tmp_path / "profile", "--dump-dom")
    assert any("edgebench-probe-error" in line for line in _console_errors(proc.stderr)), proc.stderr[-2000:]


@pytest.mark.system
@pytest.mark.integration
def test_html_report_renders_in_chromium(sweep, tmp_path):
    from PIL import Image
    out, plots = tmp_path / "report.html", tmp_path / "plots"
    proc = edgebench("report", "--results", str(sweep), "--html", str(out), "--plots", str(plots), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert out.stat().st_size < 1_000_000
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|@import|url\(\s*["']?https?:""", text)
    assert {p.name for p in plots.iterdir()} == {f"{f}.{e}" for f in FIGURES for e in ("png", "svg")}

    probed = tmp_path / "probed.html"
    probed.write_text(text.replace("</body>", PROBE + "</body>"))
    dom = _browse(probed, tmp_path / "p1", "--dump-dom", "--window-size=1280,900")
    assert dom.returncode == 0, dom.stderr[-2000:]
    sizes = dict(item.split(":") for item in re.search(r'<pre id="probe">([^<]*)</pre>', dom.stdout).group(1).split())
    assert set(sizes) == set(FIGURES), sizes
    for fig, size in sizes.items():
        w, h = map(int, size.split("x"))
        assert w > 300 and h > 150, (fig, size)
    assert not _console_errors(dom.stderr), _console_errors(dom.stderr)

    shot = tmp_path / "report.png"
    proc = _browse(out, tmp_path / "p2", f"--screenshot={shot}", "--window-size=1280,7000", "--hide-scrollbars")
    assert shot.is_file(), proc.stderr[-2000:]
    assert not _console_errors(proc.stderr), _console_errors(proc.stderr)
    image = Image.open(shot).convert("L")
    ink = sum(image.histogram()[:200]) / (image.width * image.height)
    assert ink > 0.02, f"page looks blank: {ink:.3%} dark pixels"
    print(f"screenshot: {shot}")  # kept in pytest's tmp_path, to look at


# ---------------------------------------------------------------- bad input

@pytest.mark.integration
def test_bad_input_is_one_line_each_and_the_report_is_still_written(sweep, tmp_path):
    good = _records(sweep)
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text(json.dumps(good[0]) + "\n{not json\n" + json.dumps(good[1])[:40] + "\n")
    older = tmp_path / "older.jsonl"
    old = {**good[0], "schema": "edgebench.result/0"}
    del old["latency_ms"]
    older.write_text(json.dumps(old) + "\n")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = tmp_path / "report.html"
    proc = edgebench("report", "--results", str(sweep), "--results", str(tmp_path / "missing.jsonl"),
                     "--results", str(empty), "--results", str(damaged), "--results", str(older),
                     "--html", str(out), "--plots", str(blocker / "plots"), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    for needle in ("missing.jsonl: no such results file", "empty.jsonl: empty results file",
                   "damaged.jsonl that are not readable records", "older.jsonl that are not readable records",
                   "--plots"):  # the older record lacks latency_ms: the tolerant reader's schema check skips it
        assert sum(needle in w for w in warnings) == 1, (needle, warnings)
    page = out.read_text()
    assert "3 damaged lines and 0 older-schema records skipped" in page
    assert all(f'data-figure="{f}"' in page for f in FIGURES)


def test_no_records_at_all_is_an_error(tmp_path):
    proc = edgebench("report", "--results", str(tmp_path / "missing.jsonl"), "--html", str(tmp_path / "r.html"),
                     cwd=ROOT)
    assert_one_line_error(proc, "missing.jsonl does not exist")
    assert not (tmp_path / "r.html").exists()


def test_db_that_does_not_exist(tmp_path):
    proc = edgebench("report", "--db", str(tmp_path / "h.db"), cwd=ROOT)
    assert_one_line_error(proc, "no history database at")
