"""`edgebench gate` through the real CLI: each verdict's exit code, the three outputs, the refusals.

Latency verdicts of real engines are not deterministic, so the exit-code tests use budgets
(p50_ms = 0.001 is always a regression, 1e6 always passes) and an empty history (always
inconclusive); A/B runs assert consistency, not an outcome. The engines are tiny real ONNX
classifiers on ONNX Runtime, plus one mobilenet_v3 (random weights) A/B gate on OpenVINO.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import tiny_onnx
from conftest import assert_one_line_error, edgebench, edgebench_in_process

from edgebench.results import history

FAST = ("--rounds", "1", "--max-rounds", "1", "--round-seconds", "0.2", "--block", "5")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gate")
    tiny_onnx.classifier(root / "tiny.onnx")
    tiny_onnx.classifier(root / "tiny48.onnx", size=48)
    (root / "budget_fail.toml").write_text('[[budget]]\nmodel = "tiny"\nruntime = "ort"\np50_ms = 0.001\n')
    (root / "budget_pass.toml").write_text('[[budget]]\nmodel = "tiny"\np50_ms = 1e6\npeak_rss_mb = 1e6\n'
                                           'engine_mb = 1e3\n')
    return root


def gate(work: Path, *args: str, env: dict | None = None, entry_point: bool = False):
    """The gate on ORT through Click's CliRunner in this process (measurements still in their worker
    processes): a gate subprocess spends about 4 s of CPU importing before it measures anything. Two tests
    take the real entry point (``entry_point``). A noisy candidate round is re-measured at once: the default
    20 s settle waits on every round of a shared 2-core runner, where every round is noisy."""
    run = edgebench if entry_point else edgebench_in_process
    return run("gate", "--runtime", "ort", "--results", str(work / "results.jsonl"), "--settle-seconds", "0",
               *args, cwd=work, env={"GITHUB_STEP_SUMMARY": "", **(env or {})})


def test_budget_regression_exits_1_and_outputs_parse(work):
    proc = gate(work, "--candidate", "tiny.onnx", "--budget", "budget_fail.toml", "--rounds", "1",
                "--round-seconds", "0.2", "--json", "--summary", "s.md", "--junit", "j.xml", entry_point=True)
    assert proc.returncode == 1, proc.stderr
    record = json.loads(proc.stdout)
    assert record["verdict"] == {"overall": "regression", "exit_code": 1, "inconclusive_policy": "exit 3"}
    [metric] = record["metrics"]
    assert metric["budget_key"] == "p50_ms" and metric["verdict"] == "regression" and metric["ci"][0] > 0.001
    md = (work / "s.md").read_text()
    assert md.startswith("## ❌ edgebench gate: REGRESSION") and "| latency p50 (ms) |" in md and "**Host:**" in md
    suite = ET.parse(work / "j.xml").getroot().find("testsuite")
    assert suite.get("failures") == "1" and suite.find("testcase/failure").get("type") == "regression"
    stored = history.query(work / "edgebench.db", model="tiny", runtime="ort", kind="gate")
    assert stored[-1]["id"] == record["id"]


def test_budget_pass_exits_0_and_summary_goes_to_github(work):
    summary = work / "github_summary.md"
    summary.write_text("earlier step\n")
    proc = gate(work, "--candidate", "tiny.onnx", "--budget", "budget_pass.toml", "--rounds", "2",
                "--round-seconds", "0.2", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert proc.returncode == 0, proc.stderr
    text = summary.read_text()
    assert text.startswith("earlier step\n## ✅ edgebench gate: PASS") and "peak RSS (MB)" in text
    assert "edgebench gate" in proc.stdout and "gate: no change (exit 0)" in proc.stderr


def test_empty_history_is_inconclusive_never_pass(work, tmp_path):
    db = tmp_path / "empty.db"
    args = ("--candidate", "tiny.onnx", "--against", "history", "--db", str(db), "--rounds", "1",
            "--round-seconds", "0.2")
    proc = gate(work, *args, "--json")
    assert proc.returncode == 3, proc.stderr
    assert json.loads(proc.stdout)["metrics"][0]["history_records"] == 0
    assert gate(work, *args, "--inconclusive", "pass").returncode == 0
    assert gate(work, *args, "--inconclusive", "fail").returncode == 1


def test_history_gate_compares_same_host_and_refuses_another(work, tmp_path):
    db = tmp_path / "h.db"
    for _ in range(3):  # real history: three `run --rounds 1` records of the same engine on this host
        proc = edgebench("run", "--runtime", "ort", "--onnx", "tiny.onnx", "--min-seconds", "0.2", "--iterations", "20",
                         "--retries", "0", "--results", str(tmp_path / "hist.jsonl"), cwd=work,
                         env={"EDGEBENCH_DB": str(db)})
        assert proc.returncode == 0, proc.stderr
    proc = gate(work, "--candidate", "tiny.onnx", "--against", "history", "--db", str(db), "--rounds", "3",
                "--round-seconds", "0.2", "--json", "--junit", "jh.xml")
    assert proc.returncode in (0, 1, 3), proc.stderr
    metric = json.loads(proc.stdout)["metrics"][0]
    assert metric["history_records"] == 3 and metric["ratio"] > 0 and "mann_whitney_p" in metric
    assert EXIT_OF[metric["verdict"]] == proc.returncode
    # the same records, moved to another CPU: refused, naming what differs, unless allowed
    other = tmp_path / "other.db"
    moved = []
    for r in history.query(db, model="tiny", runtime="ort"):
        r["host"]["cpu"], r["id"] = "Intel Xeon Platinum", r["id"] + "x"
        moved.append(r)
    history.insert(other, moved)
    args = ("--candidate", "tiny.onnx", "--against", "history", "--db", str(other), "--rounds", "1",
            "--round-seconds", "0.2")
    assert_one_line_error(gate(work, *args), "another host", "cpu", "--allow-other-host")
    allowed = gate(work, *args, "--allow-other-host", "--summary", "other.md")
    assert allowed.returncode in (0, 1, 3) and "ANOTHER HOST" in (work / "other.md").read_text()
    assert "ANOTHER HOST" in allowed.stderr


EXIT_OF = {"no change": 0, "improvement": 0, "regression": 1, "inconclusive": 3}


def test_ab_gate_record_is_consistent(work):
    shutil.copy(work / "tiny.onnx", work / "tiny_copy.onnx")
    proc = gate(work, "--baseline", "tiny.onnx", "--candidate", "tiny_copy.onnx", *FAST, "--json")
    assert proc.returncode in (0, 1, 3), proc.stderr
    record = json.loads(proc.stdout)
    assert record["mode"] == "ab" and record["rounds_used"] == 1
    assert proc.returncode == EXIT_OF[record["verdict"]["overall"]]
    names = [m["metric"] for m in record["metrics"]]
    assert names == ["latency p50", "latency p99", "engine size", "peak RSS"]
    assert record["metrics"][2]["ratio"] == 1.0  # byte-identical engines
    assert record["sources"]["baseline"]["engine_sha256"] == record["sources"]["candidate"]["engine_sha256"]
    noise = record["noise"][0]
    assert set(noise) >= {"slow_phase", "contended", "group_ratio_cv"}
    # a budget on the candidate makes the A/B outcome deterministic: regression wins
    (work / "budget_copy.toml").write_text('[[budget]]\nmodel = "tiny_copy"\np50_ms = 0.001\n')
    assert gate(work, "--baseline", "tiny.onnx", "--candidate", "tiny_copy.onnx", *FAST,
                "--budget", "budget_copy.toml").returncode == 1


@pytest.mark.parametrize(("args", "needles"), [
    (("--baseline", "tiny.onnx", "--candidate", "tiny48.onnx", *FAST), ("different inputs", "input shape")),
    (("--candidate", "tiny.onnx", "--budget", "bad_key.toml"), ("unknown key", "p50_msec")),
    (("--candidate", "tiny.onnx", "--budget", "bad_model.toml"), ("unknown model", "no_such_net")),
    (("--candidate", "tiny.onnx", "--budget", "bad_toml.toml"), ("not valid TOML",)),
    (("--candidate", "tiny.onnx", "--budget", "missing.toml"), ("not found",)),
    (("--candidate", "tiny.onnx"), ("nothing to compare",)),
    (("--baseline", "tiny.onnx", "--candidate", "tiny.onnx", "--against", "history"), ("not both",)),
    (("--baseline", "nope.onnx", "--candidate", "tiny.onnx"), ("no such file",)),
    (("--baseline", "no_such_net", "--candidate", "tiny.onnx"), ("unknown model",)),
    (("--candidate", "tiny.onnx", "--against", "history", "--allow-other-host", "--rounds", "3", "--max-rounds", "2"),
     ("--max-rounds",)),
])
def test_refusals_are_one_line_exit_2(work, args, needles):
    (work / "bad_key.toml").write_text('[[budget]]\nmodel = "tiny"\np50_msec = 3\n')
    (work / "bad_model.toml").write_text('[[budget]]\nmodel = "no_such_net"\np50_ms = 3\n')
    (work / "bad_toml.toml").write_text('[[budget]\nmodel = "tiny"\n')
    assert_one_line_error(gate(work, *args), *needles)


def test_a_refusal_through_the_real_entry_point(work):
    assert_one_line_error(gate(work, "--baseline", "nope.onnx", "--candidate", "tiny.onnx", entry_point=True),
                          "no such file")


def test_different_inputs_allowed_when_asked(work):
    proc = gate(work, "--baseline", "tiny.onnx", "--candidate", "tiny48.onnx", *FAST, "--allow-different-inputs",
                "--json")
    assert proc.returncode in (0, 1, 3), proc.stderr
    assert json.loads(proc.stdout)["sources"]["candidate"]["input_shape"] == [3, 48, 48]


@pytest.mark.integration
def test_real_model_ab_gate_openvino(artifact_cache, tmp_path):
    """mobilenet_v3 (random weights) against a byte-identical copy of its artifacts, on OpenVINO."""
    shared_artifacts = artifact_cache.folder("random")
    first = edgebench("export", "mobilenet_v3", "--runtime", "openvino", "--weights", "random", "--out",
                      str(shared_artifacts), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    copy = tmp_path / "copy"
    shutil.copytree(shared_artifacts / "mobilenet_v3_large", copy)
    proc = edgebench("gate", "--baseline", "mobilenet_v3", "--weights", "random", "--out", str(shared_artifacts),
                     "--candidate", str(copy), "--runtime", "openvino", "--rounds", "2", "--max-rounds", "2",
                     "--round-seconds", "1", "--json", "--results", str(tmp_path / "r.jsonl"), cwd=tmp_path)
    assert proc.returncode in (0, 3), proc.stderr  # A/A: never a regression of the byte-identical copy... by design
    record = json.loads(proc.stdout)
    p50 = record["metrics"][0]
    assert p50["ci"][0] <= p50["ratio"] <= p50["ci"][1] and record["rounds_used"] == 2
    assert {n["b_first"] for n in record["noise"]} == {False, True}  # load order alternates


def test_a_missing_candidate_folder_is_a_missing_path_not_an_unknown_model(work):
    for given in ("artifacts/no_such_folder", "./gone"):
        proc = gate(work, "--candidate", given, "--budget", "budget_pass.toml")
        assert_one_line_error(proc, f"--candidate {given}: no such file or folder")
        assert "unknown model" not in proc.stderr
    # a bare word is either: both are said
    assert_one_line_error(gate(work, "--candidate", "no_such_net", "--budget", "budget_pass.toml"),
                          "no such file or folder", "unknown model")


def test_the_ci_example_budget_matches_a_candidate_of_any_name():
    """examples/ci/edgebench.toml used to match only a candidate file named model.onnx."""
    from conftest import ROOT

    from edgebench.workflow.gate.budgets import budgets_for, load_budgets
    from edgebench.workflow.gate.run import known_model
    from edgebench.workflow.gate.sources import GateOptions
    budgets = load_budgets(ROOT / "examples" / "ci" / "edgebench.toml", lambda m: known_model(m, set()))
    opts = GateOptions(runtime="openvino", precision="fp32", batch=1)
    for name in ("model", "pr", "resnet_candidate"):
        assert budgets_for(budgets, name, opts) == {"p50_ms": 12.0, "p99_ms": 30.0, "peak_rss_mb": 400,
                                                    "engine_mb": 30}
    assert budgets_for(budgets, "pr", GateOptions(runtime="ort", precision="fp32", batch=1)) == {}
    int8 = GateOptions(runtime="openvino", precision="int8", batch=1)
    assert budgets_for(budgets, "mobilenet_v3_large", int8) == {"int8_drop_points": 1.0, "min_int8_speedup": 1.2}
