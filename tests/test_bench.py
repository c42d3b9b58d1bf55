"""The measurement layer: protocol, statistics, noise probe, records, subprocess isolation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgebench.backends import RuntimeOptions
from edgebench.bench import noise
from edgebench.bench.guarded import Guard, benchmark, run_worker
from edgebench.portable.errors import UsageError
from edgebench.portable.protocol import Protocol, summarize, time_loop
from edgebench.results.records import LatencyRecord
from edgebench.results.store import append_record, read_records


def test_summarize_known_values():
    stats = summarize(np.arange(1, 101, dtype=float), batch=4)
    assert stats["min"] == 1 and stats["max"] == 100
    assert stats["p50"] == pytest.approx(50.5) and stats["p90"] == pytest.approx(90.1)
    assert stats["p99"] == pytest.approx(99.01) and stats["mean"] == pytest.approx(50.5)
    assert stats["std"] == pytest.approx(np.std(np.arange(1, 101), ddof=1))
    assert stats["throughput_ips"] == pytest.approx(4 * 1000 / 50.5)


def test_time_loop_meets_both_minimums():
    calls = []
    times, loop = time_loop(lambda: calls.append(1), Protocol(3, 0.0, 25, 0.05))
    assert len(times) == loop["iterations"] >= 25 and loop["seconds"] >= 0.05
    assert loop["warmup_iterations_run"] >= 3 and len(calls) == loop["iterations"] + loop["warmup_iterations_run"]
    assert not loop["cut_by_max_seconds"]


def test_time_loop_max_seconds_is_recorded():
    import time
    _, loop = time_loop(lambda: time.sleep(0.02), Protocol(0, 0.0, 1000, 0.0, max_seconds=0.1))
    assert loop["cut_by_max_seconds"] and loop["iterations"] < 1000


def test_protocol_rejects_bad_values():
    with pytest.raises(UsageError):
        Protocol(min_iterations=0)


def test_noise_probe_reports_ratio():
    found = noise.probe(threads=2, reps=5)
    assert found["one_thread_ms"] > 0 and found["multi_thread_ms"] > 0
    assert found["ratio"] == pytest.approx(found["multi_thread_ms"] / found["one_thread_ms"], rel=0.01)
    assert found["bad"] == (found["ratio"] > noise.BAD_RATIO)


def test_records_are_appended_never_rewritten(tmp_path):
    path = tmp_path / "r.jsonl"
    measured = {"model": {"name": "m"}, "runtime": {"name": "ort"}, "latency_ms": {"p50": 1.0, "p90": 1.0, "p99": 1.0}}
    first = LatencyRecord(**measured, extra={"value": 1})
    append_record(first, path)
    before = path.read_bytes()
    append_record(LatencyRecord(**measured, extra={"value": 2}).to_dict(), path)
    assert path.read_bytes().startswith(before)
    records = read_records(path).records
    assert [r["value"] for r in records] == [1, 2]
    assert records[0]["host"]["cpu"] and records[0]["edgebench"]["version"] and records[0]["timestamp"]


def test_worker_failure_is_a_failed_result_not_a_crash(tmp_path):
    result = run_worker({"runtime": "ort", "engine": str(tmp_path / "missing.onnx"),
                         "options": {"precision": "fp32", "threads": 1, "device": None, "batches": [1]},
                         "input_shape": [3, 8, 8], "protocol": Protocol().to_dict()}, timeout=120)
    assert result["status"] == "failed" and "missing.onnx" in result["error"]


@pytest.mark.smoke
@pytest.mark.integration
@pytest.mark.parametrize("runtime", ["ort", "openvino", "torch"])
def test_benchmark_record_has_provenance(runtime, artifact_cache):
    artifacts = artifact_cache.export("mobilenet_v3_small")
    record = benchmark(artifacts, runtime, RuntimeOptions(threads=2, batches=(2,)), Protocol(2, 0.0, 10, 0.2),
                       Guard(retries=0))
    assert record["status"] == "ok", record["error"]
    lat = record["latency_ms"]
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"] and lat["std"] >= 0
    assert record["loop"]["iterations"] >= 10 and record["batch"] == 2 and record["threads"] == 2
    assert record["model"]["name"] == "mobilenet_v3_small" and record["model"]["params"] > 2e6
    assert record["weights"]["source"] == "random"
    assert record["runtime"]["version"] and record["runtime"]["settings"]
    assert record["host"]["cpu"] and record["precision"] == record["effective_precision"] == "fp32"
    mem = record["memory_mb"]
    assert 0 < mem["after_import"] <= mem["after_load"] <= mem["peak"]
    assert record["stability"]["verdict"] in ("stable", "unstable", "contended") and record["stability"]["attempts"]
    json.dumps(record)
    if runtime == "ort":  # the measurement process holds onnxruntime, not torch
        assert mem["after_import"] < 200
    # the engine's own memory (issue 23): rises of the peak after a reset, beside the process's figures
    own = record["memory"]
    assert own["method"] == "clear_refs" and "note" not in own
    assert own["load_mb"] > 0 and own["run_mb"] >= 0
    assert own["engine_mb"] == pytest.approx(own["load_mb"] + own["run_mb"], abs=0.15)
    assert own["process_peak_mb"] == mem["peak"] and own["import_mb"] <= mem["after_import"]
    for phase in ("import", "load", "run"):
        assert isinstance(own[f"{phase}_anon_mb"], float) and isinstance(own[f"{phase}_file_mb"], float)
    assert own["import_anon_mb"] + own["import_file_mb"] == pytest.approx(own["import_mb"], abs=1.0)
    assert own["engine_files_mb"] == pytest.approx(record["engine"]["bytes"] / 2**20, abs=0.01)
    # cold start: the build (from the manifest entry; torch builds no engine), the load and the first inference
    assert record["load_seconds"] > 0 and record["first_inference_ms"] > 0
    assert (record["build_seconds"] is None) if runtime == "torch" else record["build_seconds"] > 0
    assert "steal_share" in record["stability"]["attempts"][0]["load"]
