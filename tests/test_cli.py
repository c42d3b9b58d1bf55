"""End-to-end CLI runs and every bad-input case: one line, exit code 2, no traceback, no lost results.

The runs are real subprocesses on the session's shared artifacts (each model exported once); the refusals
run in this process (Click's CliRunner), except one per command (run, export) through the real entry point."""

from __future__ import annotations

import json

import pytest
import tiny_onnx
from conftest import assert_one_line_error, edgebench, edgebench_in_process

FAST = ["--warmup", "1", "--warmup-seconds", "0", "--iterations", "5", "--min-seconds", "0.2", "--retries", "0"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("cli")


@pytest.mark.integration
def test_run_openvino_end_to_end(workdir, artifact_cache):
    out = artifact_cache.folder("random")
    proc = edgebench("run", "--runtime", "openvino", "--model", "mobilenet_v3", "--weights", "random", "--threads", "2",
                     "--json", "--out", str(out), *FAST, cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    assert len(records) == 1
    record = records[0]
    assert record["model"]["name"] == "mobilenet_v3_large" and record["runtime"]["name"] == "openvino"
    assert record["runtime"]["settings"]["PERFORMANCE_HINT"] == "LATENCY"
    assert record["runtime"]["settings"]["INFERENCE_NUM_THREADS"] == 2
    assert record["latency_ms"]["p50"] > 0 and record["memory_mb"]["peak"] > 0
    saved = (workdir / "results" / "results.jsonl").read_text().splitlines()
    assert json.loads(saved[-1])["id"] == record["id"]
    assert (out / "mobilenet_v3_large" / "manifest.json").is_file()


@pytest.mark.integration
def test_run_ort_with_real_weights_and_two_batches(workdir, weights_dir, artifact_cache):
    proc = edgebench("run", "--runtime", "ort", "--model", "squeezenet1_1", "--batch", "1,2", "--threads", "2",
                     "--weights-dir", str(weights_dir), "--out", str(artifact_cache.folder("auto", weights_dir)),
                     *FAST, cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "squeezenet1_1" in proc.stdout and "p50" in proc.stdout  # the table
    records = [json.loads(line) for line in (workdir / "results" / "results.jsonl").read_text().splitlines()]
    mine = [r for r in records if r["model"]["name"] == "squeezenet1_1"]
    assert sorted(r["batch"] for r in mine) == [1, 2]
    assert all(r["weights"]["source"] == "local" and r["runtime"]["settings"]["intra_op_num_threads"] == 2
               for r in mine)


@pytest.mark.integration
@pytest.mark.parametrize("runtime,float_op", [("ort", "Conv"), ("openvino", "Convolution")])
def test_run_profile_per_layer(workdir, weights_dir, runtime, float_op, artifact_cache):
    """--profile: every layer's time from the runtime's own profiler, in the record and as a table by operation."""
    proc = edgebench("run", "--runtime", runtime, "--model", "squeezenet1_1", "--threads", "2", "--profile",
                     "--weights-dir", str(weights_dir), "--out", str(artifact_cache.folder("auto", weights_dir)),
                     *FAST, cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "time by operation" in proc.stdout
    record = json.loads((workdir / "results" / "results.jsonl").read_text().splitlines()[-1])
    rows = record["runtime"]["settings"]["layer_profile"]
    convs = [r for r in rows if r["op"] == float_op]
    assert len(convs) == 26, [r["op"] for r in rows]  # SqueezeNet 1.1: 26 convolutions, all FP32 here
    assert all(r["mean_ms"] >= 0 for r in rows) and abs(sum(r["share"] for r in rows) - 1) < 0.01
    assert sum(r["mean_ms"] for r in convs) > 0
    if runtime == "openvino":
        assert all(r["kernel"].lower().endswith("f32") for r in convs), {r["kernel"] for r in convs}


def test_profile_is_refused_for_torch(workdir):
    assert_one_line_error(edgebench_in_process("run", "--runtime", "torch", "--model", "squeezenet1_1", "--profile",
                                               cwd=workdir), "--profile: per-layer times exist for ort, openvino and trt")


@pytest.mark.integration
def test_export_command_prints_verification(workdir, artifact_cache):
    proc = edgebench("export", "mobilenet_v3_small", "--runtime", "ort", "--weights", "random", "--out",
                     str(artifact_cache.folder("random")), cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "ort/fp32" in proc.stdout and "cosine" in proc.stdout


@pytest.mark.integration
def test_run_onnx_file(workdir, artifact_cache):
    onnx_file = artifact_cache.export("mobilenet_v3_small", ("ort",)).path("fp32/model.onnx")
    proc = edgebench("run", "--runtime", "openvino", "--onnx", str(onnx_file), "--json", "--out",
                     str(workdir / "imported"), *FAST, cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["model"]["name"] == "model"


def test_doctor_json(workdir):
    proc = edgebench("doctor", "--json", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    usable = {r["name"]: r for r in report["runtimes"]}
    assert usable["ort"]["usable"] and usable["openvino"]["usable"] and "CPU" in usable["openvino"]["devices"]
    assert report["host"]["cpu"]


@pytest.mark.integration  # builds each of the 15 mobile CNNs to count it (an empty cache)
def test_models_json(workdir, tmp_path):
    proc = edgebench("models", "--family", "mobile-cnn", "--json", cwd=workdir, env={"XDG_CACHE_HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["mobilenet_v3_large"]["params_m"] == pytest.approx(5.48, abs=0.01)
    assert rows["mobilenet_v3_large"]["aliases"] == ["mobilenet_v3"]
    assert all(r["family"] == "mobile-cnn" for r in rows.values())


# ------------------------------------------------------------------ bad input

def test_unknown_model(workdir):
    assert_one_line_error(edgebench("run", "--runtime", "ort", "--model", "mobilenet_v9", cwd=workdir),
                          "unknown model", "did you mean")


def test_runtime_not_installed(workdir):
    proc = edgebench_in_process("run", "--runtime", "trt", "--model", "mobilenet_v3", cwd=workdir)
    assert_one_line_error(proc, "trt")


def test_device_absent(tmp_path):
    results = tmp_path / "results.jsonl"
    results.write_bytes(b"")
    proc = edgebench_in_process("run", "--runtime", "openvino", "--model", "mobilenet_v3", "--weights", "random",
                                "--device", "NPU", "--results", results, *FAST, cwd=tmp_path)
    assert_one_line_error(proc, "openvino has no device 'NPU'", "available: CPU")
    assert results.read_bytes() == b"" and not (tmp_path / "artifacts").exists()  # refused before any work


def test_corrupt_onnx(workdir):
    bad = workdir / "corrupt.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 100)
    assert_one_line_error(edgebench_in_process("run", "--runtime", "ort", "--onnx", bad, cwd=workdir),
                          "not a valid ONNX")


def test_truncated_onnx(workdir):
    """Through the real entry point: the export command's refusal path."""
    good = tiny_onnx.classifier(workdir / "good.onnx").read_bytes()
    bad = workdir / "truncated.onnx"
    bad.write_bytes(good[: len(good) // 3])
    assert_one_line_error(edgebench("export", "--onnx", str(bad), cwd=workdir), "not a valid ONNX")


def test_unwritable_output_dir(workdir):
    blocker = workdir / "a-file"
    blocker.write_text("x")
    assert_one_line_error(edgebench_in_process("export", "mobilenet_v3_small", "--weights", "random", "--out",
                                               blocker / "out", cwd=workdir), "not writable")


def test_weights_that_do_not_fit(workdir, weights_dir):
    proc = edgebench_in_process("export", "resnet18", "--weights", weights_dir / "squeezenet1_1.safetensors",
                                "--out", workdir / "misfit", cwd=workdir)
    assert_one_line_error(proc, "do not fit", "missing", "unexpected")


@pytest.mark.parametrize("option", [["--batch", "0"], ["--batch", "1,x"], ["--threads", "0"], ["--threads", "many"]])
def test_invalid_batch_or_threads(workdir, option):
    assert_one_line_error(edgebench_in_process("run", "--runtime", "ort", "--model", "mobilenet_v3", *option,
                                               cwd=workdir), option[0])
