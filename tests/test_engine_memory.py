"""Issue 23: the memory that belongs to the engine (not the runtime's Python import), stolen CPU time, and the
paired worker's per-engine split. Real processes and real runtimes; the /proc/stat readings are synthetic."""

from __future__ import annotations

import numpy as np
import pytest

from edgebench.portable import cpu_load, memory

MB = 2**20


def _touch(mb: int) -> np.ndarray:
    return np.ones(mb * MB // 8)  # every page written


def test_run_mb_is_an_allocation_after_the_reset_and_nothing_of_the_import():
    spike = _touch(256)  # what an import allocates and frees again: the process peak keeps it
    del spike
    kept = _touch(64)  # what an import keeps
    found = memory.EngineMemory()
    assert found.method == memory.RESET, found.refused
    found.mark("load")
    run = _touch(128)
    found.mark("run")
    result = found.result()
    assert result["run_mb"] == pytest.approx(128, rel=0.05)  # without the reset it would hide under the spike
    assert result["run_anon_mb"] == pytest.approx(128, rel=0.05) and abs(result["run_file_mb"]) < 6
    assert result["engine_mb"] == pytest.approx(128, rel=0.05)  # the 64 MB the import kept are not in it
    assert result["import_mb"] >= 64
    assert result["process_peak_mb"] > result["import_mb"] + 128  # the import's spike stays in the process peak
    assert result["import_anon_mb"] + result["import_file_mb"] == pytest.approx(result["import_mb"], abs=1.0)
    assert kept.sum() and run.sum()


def test_a_refused_reset_falls_back_to_peak_differences_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "CLEAR_REFS", tmp_path / "no" / "clear_refs")
    found = memory.EngineMemory()
    a = _touch(32)
    found.mark("load")
    result = found.result()
    assert result["method"] == memory.DIFFERENCES and "not reset" in result["note"]
    assert result["load_mb"] >= 0 and a.sum()


def test_parse_status_reads_the_kb_fields():
    text = "Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nRssAnon:\t   81920 kB\nRssFile:\t   20480 kB\n"
    assert memory.parse_status(text) == {"VmHWM": 200.0, "VmRSS": 100.0, "RssAnon": 80.0, "RssFile": 20.0}
    assert memory.parse_status("VmHWM:\n") == {}


# ---------------------------------------------------------------- steal

def _stat(user: int, system: int, idle: int, steal: int | None, cores: int = 2) -> str:
    """A /proc/stat text: ``cpu user nice system idle iowait irq softirq steal guest guest_nice`` (ticks)."""
    tail = "" if steal is None else f" {steal} 0 0"
    lines = [f"cpu  {user} 0 {system} {idle} 0 0 0{tail}"]
    lines += [f"cpu{i} 0 0 0 0 0 0 0 0 0 0" for i in range(cores)]
    return "\n".join(lines + ["intr 1 2 3", "ctxt 42", "btime 1700000000", "processes 7"]) + "\n"


def test_parse_proc_stat_reads_busy_steal_and_cores():
    found = cpu_load.parse_proc_stat(_stat(100, 50, 400, 30, cores=4))
    assert found == cpu_load.CpuTimes(busy=150, steal=30, cores=4)
    assert cpu_load.parse_proc_stat(_stat(100, 50, 400, None)).steal == 0  # a kernel without the steal column
    assert cpu_load.parse_proc_stat("intr 1 2 3\n") is None


@pytest.mark.parametrize("steal_ticks, contended", [(0, False), (5, False), (30, True), (150, True)])
def test_a_loop_with_significant_steal_is_contended(steal_ticks, contended):
    """2 cores for 2 s at 100 Hz = 400 ticks; this process used all the busy time, so only steal can count."""
    before = cpu_load.parse_proc_stat(_stat(1000, 100, 5000, 10))
    after = cpu_load.parse_proc_stat(_stat(1000 + 300, 100 + 50, 5000 + 50 - steal_ticks, 10 + steal_ticks))
    found = cpu_load.between(before, after, own_cpu_s=3.5, wall_s=2.0, hz=100)
    assert found["steal_share"] == pytest.approx(steal_ticks / 400, abs=1e-4)
    assert found["other_share"] == 0.0  # steal is not another process's work
    assert found["contended"] is contended and found["steal_contended"] is contended


def test_competing_processes_are_still_contended_without_steal():
    before = cpu_load.parse_proc_stat(_stat(1000, 100, 5000, 0))
    after = cpu_load.parse_proc_stat(_stat(1000 + 350, 100 + 50, 5000, 0))  # 4 s busy, 2 s of it ours
    found = cpu_load.between(before, after, own_cpu_s=2.0, wall_s=2.0, hz=100)
    assert found["contended"] and not found["steal_contended"] and found["other_share"] == 0.5
    assert cpu_load.between(None, after, 1.0, 1.0) == {"contended": False, "available": False}


def test_load_meter_splits_blocks_on_the_real_proc_stat():
    with cpu_load.LoadMeter() as meter:
        blocks = [meter.split() for _ in range(3) if sum(i * i for i in range(50_000)) >= 0]
    assert len(blocks) == 3 and all("steal_share" in b and "contended" in b for b in blocks)
    assert meter.result["cores"] >= 1 and meter.result["steal_share"] >= 0


def test_noise_seen_names_steal():
    from edgebench.bench.phases import noise_seen
    stolen = cpu_load.contention(2.0, 2.0, 1.0, 2, steal_s=0.5)
    assert noise_seen({"load": stolen}) == ["contended: the hypervisor stole 25.0% of the cores' time"]
    busy = cpu_load.contention(2.0, 1.0, 1.0, 2)
    assert noise_seen({"load": busy}) == ["contended: other processes used 50% of the cores"]


# ---------------------------------------------------------------- the paired worker

@pytest.mark.integration
def test_paired_worker_splits_memory_per_engine(artifact_cache):
    """ORT and OpenVINO in one process, loaded A-first and B-first: each engine's load and warm-up are its own,
    and each ABBA block carries its steal and competing load."""
    from edgebench.bench.paired import PairedSettings, engine_spec, round_noise, run_round
    artifacts = artifact_cache.export("mobilenet_v3_small")
    specs = [engine_spec(artifacts, "ort", "fp32", 1, 1), engine_spec(artifacts, "openvino", "fp32", 1, 1)]
    settings = PairedSettings(block_iterations=3, min_groups=2, min_seconds=0.0, warmup_iterations=2)
    rounds = [run_round(specs, i, settings) for i in (0, 1)]
    for r in rounds:
        assert r["memory"]["method"] == "clear_refs" and r["memory"]["import_mb"] > 0
        assert r["memory"]["process_peak_mb"] == r["peak_rss_mb"] >= r["memory"]["import_mb"]
        for e in r["engines"]:
            m = e["memory"]
            assert m["load_mb"] > 0 and m["run_mb"] >= 0
            assert m["engine_mb"] == pytest.approx(m["load_mb"] + m["run_mb"], abs=0.15)
            blocks = e["block_load"]
            assert len(blocks["steal_share"]) == len(blocks["contended"]) == len(e["block_medians_ms"]) >= 4
        assert "steal_share" in r["load"] and round_noise(r)["blocks"] == 2 * len(r["engines"][0]["block_medians_ms"])
    load = {(r["b_first"], i): r["engines"][i]["memory"]["load_mb"] for r in rounds for i in (0, 1)}
    for i in (0, 1):  # loaded second, an engine's load is its own: the first engine's is not in it
        first, second = load[(i == 1, i)], load[(i == 0, i)]  # round 0 loads A (0) first, round 1 B (1) first
        other = min(load[(False, 1 - i)], load[(True, 1 - i)])
        assert second < first + 0.5 * other, (i, load)


# ---------------------------------------------------------------- records and the report

def _latency(p50: float, memory_split: dict | None, peak: float = 900.0) -> dict:
    from edgebench.results.records import LatencyRecord
    return LatencyRecord(model={"name": "m", "family": "mobile-cnn", "params": 1e6, "gmacs": 0.1},
                         runtime={"name": "ort", "version": "1"}, precision="fp32", batch=1, threads=2,
                         latency_ms={"p50": p50, "p90": p50, "p99": p50}, memory_mb={"peak": peak},
                         memory=memory_split, build_seconds=1.5, load_seconds=0.25, first_inference_ms=12.0,
                         stability={"verdict": "stable"}, engine={"bytes": 5_000_000}).to_dict()


SPLIT = {"import_mb": 800.0, "load_mb": 40.0, "run_mb": 12.0, "engine_mb": 52.0, "load_file_mb": 30.0,
         "run_file_mb": 1.0, "process_peak_mb": 900.0, "method": "clear_refs"}


def test_the_schema_reads_old_records_and_the_new_split_and_refuses_a_bad_one():
    from edgebench.results.schema import problem
    assert problem(_latency(5.0, None)) is None  # an older record: no engine memory
    assert problem(_latency(5.0, SPLIT)) is None
    assert problem(_latency(5.0, {**SPLIT, "method": "peak differences", "note": "refused"})) is None
    assert problem(_latency(5.0, {**SPLIT, "engine_mb": "a lot"})) == "memory.engine_mb is a string"


def test_the_report_shows_the_engines_memory_and_marks_an_older_records_process_peak():
    from edgebench.results.reports.rows import measurement_rows
    from edgebench.results.zoo_table import _cell, zoo_rows
    new, old = _latency(5.0, SPLIT), {**_latency(6.0, None), "model": {"name": "old", "family": "mobile-cnn"}}
    rows, columns = zoo_rows([new, old])
    cells = {row["model"]: _cell(row[columns[0][4]]) for row in rows}
    assert cells == {"m": "5.00 / 52", "old": "6.00 / 900 proc"}
    found = {r["model"]: r for r in measurement_rows([new, old])}
    assert found["m"]["engine_memory_mb"] == 52.0 and found["m"]["engine_memory_file_mb"] == 31.0
    assert found["m"]["peak_rss_mb"] == 900.0 and found["m"]["import_mb"] == 800.0
    assert (found["m"]["build_s"], found["m"]["load_s"], found["m"]["first_inference_ms"]) == (1.5, 0.25, 12.0)
    assert found["old"]["engine_memory_mb"] is None and found["old"]["peak_rss_mb"] == 900.0


def test_the_memory_figure_draws_the_engines_memory_not_the_process_peak():
    from edgebench.results.reports import figures
    from edgebench.results.reports.html import FIGURES
    from edgebench.results.reports.rows import measurement_rows
    fig = figures.memory(measurement_rows([_latency(5.0, SPLIT)]))
    heights = sorted(round(p.get_height(), 1) for p in fig.axes[0].patches)
    assert heights == [52.0] and "engine's own memory" in fig.axes[0].get_ylabel()
    caption = dict((f, c) for f, _h, c in FIGURES)["memory"]
    assert "engine's own memory" in caption and "peak_rss_mb" in caption and "import_mb" in caption
