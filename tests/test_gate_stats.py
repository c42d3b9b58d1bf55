"""The gate's statistics and the in-loop detectors, on synthetic seeded samples (deterministic, no timing)."""

from __future__ import annotations

import numpy as np
import pytest

from edgebench.bench import phases, samples, stats
from edgebench.bench.rounds import combine


def _paired_rounds(ratio: float, rounds: int, groups: int, cv: float, seed: int) -> list[np.ndarray]:
    """Block medians of A and B in ABBA order, with a machine-wide slowdown shared by neighbouring blocks."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(rounds):
        phase = np.exp(rng.normal(0, 0.3, groups * 2))  # slow/fast phases, shared by the A and B block of a pair
        a = 5.0 * phase * np.exp(rng.normal(0, cv, groups * 2))
        b = 5.0 * ratio * phase * np.exp(rng.normal(0, cv, groups * 2))
        out.append(stats.abba_ratios(a, b))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_aa_is_no_change(seed):
    found = stats.paired_ratio(_paired_rounds(1.0, 5, 8, 0.05, seed))
    assert stats.compare_verdict(found["ratio"], found["ci"], 0.05).verdict == "no change"


def test_clear_shift_is_regression_and_improvement():
    slow = stats.paired_ratio(_paired_rounds(1.15, 5, 8, 0.05, 1))
    fast = stats.paired_ratio(_paired_rounds(0.85, 5, 8, 0.05, 1))
    assert stats.compare_verdict(slow["ratio"], slow["ci"], 0.05).verdict == "regression"
    assert stats.compare_verdict(fast["ratio"], fast["ci"], 0.05).verdict == "improvement"
    assert slow["ci"][0] > 1 > fast["ci"][1]


def test_pure_noise_is_inconclusive_and_more_rounds_decide():
    few = stats.paired_ratio(_paired_rounds(1.0, 2, 2, 0.4, 3))
    assert stats.compare_verdict(few["ratio"], few["ci"], 0.05).verdict == "inconclusive"
    many = stats.paired_ratio(_paired_rounds(1.0, 30, 8, 0.05, 3))
    assert stats.compare_verdict(many["ratio"], many["ci"], 0.05).verdict == "no change"


def test_paired_ratio_is_deterministic_and_cancels_shared_phases():
    rounds = _paired_rounds(1.0, 5, 8, 0.0, 0)  # no engine noise: the shared phases cancel exactly
    first, second = stats.paired_ratio(rounds), stats.paired_ratio(rounds)
    assert first == second and first["ratio"] == pytest.approx(1.0) and first["ci"] == pytest.approx([1.0, 1.0])


def test_abba_ratio_cancels_a_linear_drift():
    t = np.arange(8, dtype=float)
    drift = 1 + 0.1 * t  # run order A B B A A B B A
    a = np.array([drift[0], drift[3], drift[4], drift[7]])
    b = 1.2 * np.array([drift[1], drift[2], drift[5], drift[6]])
    assert stats.abba_ratios(a, b) == pytest.approx([1.2, 1.2], rel=0.02)


def test_median_ci_order_statistics():
    x = np.arange(1, 101, dtype=float)
    lo, hi = stats.median_ci(x)
    assert lo < 50.5 < hi and (lo, hi) == (40.0, 61.0)
    assert stats.median_ci_coverage(100) >= 0.95
    assert stats.median_ci(np.array([3.0, 1.0, 2.0])) == (1.0, 3.0)
    assert stats.median_ci_coverage(5) == pytest.approx(1 - 2 ** -4)


def test_median_ci_covers_the_true_median():
    rng = np.random.default_rng(0)
    true = np.exp(0.0)  # median of lognormal(0, 0.5)
    hits = sum(lo <= true <= hi for lo, hi in (stats.median_ci(rng.lognormal(0, 0.5, 60)) for _ in range(1000)))
    assert hits / 1000 >= 0.94


def test_unpaired_needs_mann_whitney_too():
    rng = np.random.default_rng(0)
    base = rng.normal(5, 0.2, 10)
    slower = stats.unpaired_ratio(base, rng.normal(6, 0.2, 5))
    assert slower["mann_whitney_p"] < 0.01
    assert stats.compare_verdict(slower["ratio"], slower["ci"], 0.05, slower["mann_whitney_p"]).verdict == "regression"
    same = stats.unpaired_ratio(base, rng.normal(5, 0.2, 5))
    assert stats.compare_verdict(same["ratio"], same["ci"], 0.05, same["mann_whitney_p"]).verdict != "regression"


def test_budget_verdicts_and_overall():
    assert stats.budget_verdict(5.0, (4.9, 5.1), 0.001).verdict == "regression"
    assert stats.budget_verdict(5.0, (4.9, 5.1), 10).verdict == "no change"
    assert stats.budget_verdict(5.0, (4.9, 5.1), 5.0).verdict == "inconclusive"
    assert stats.budget_verdict(1.5, (1.4, 1.6), 2.0, higher_is_better=True).verdict == "regression"
    assert stats.budget_verdict(120, None, 100).verdict == "regression"
    assert stats.overall(["no change", "improvement", "inconclusive"]) == "inconclusive"
    assert stats.overall(["inconclusive", "regression"]) == "regression"
    assert stats.overall(["no change", "improvement"]) == "improvement"


@pytest.mark.parametrize("seed", range(10))
def test_no_slow_phase_in_stationary_noise(seed):
    x = np.random.default_rng(seed).lognormal(np.log(5), 0.15, 1000)
    assert not phases.slow_phase(x)["slow_phase"]


def test_slow_phase_halfway_and_short_burst_are_found():
    rng = np.random.default_rng(1)
    halfway = np.concatenate([rng.lognormal(np.log(6), 0.1, 500), rng.lognormal(np.log(23), 0.1, 500)])
    found = phases.slow_phase(halfway)
    assert found["slow_phase"] and found["worst_window"] >= 5
    early = np.concatenate([rng.lognormal(np.log(9.6), 0.1, 100), rng.lognormal(np.log(17), 0.1, 900)])
    assert phases.slow_phase(early)["slow_phase"]  # a load for most of the loop: slow windows are the typical ones
    burst = rng.lognormal(np.log(5), 0.1, 1000)
    burst[300:400] *= 3
    assert phases.slow_phase(burst)["slow_phase"]


def test_a_small_drift_or_a_short_loop_is_not_a_slow_phase():
    rng = np.random.default_rng(2)
    drift = rng.lognormal(np.log(5), 0.1, 2000) * np.linspace(1.0, 1.1, 2000)
    assert not phases.slow_phase(drift)["slow_phase"]
    assert phases.slow_phase(np.array([1.0, 9.0, 9.0]))["reason"].startswith("too few")


def test_contention_share():
    busy = phases.contention(machine_busy_s=10.0, own_cpu_s=5.0, wall_s=5.0, cores=2)
    assert busy["contended"] and busy["other_share"] == 0.5
    quiet = phases.contention(machine_busy_s=10.2, own_cpu_s=10.0, wall_s=5.0, cores=2)
    assert not quiet["contended"] and quiet["own_cores"] == 2.0


def test_load_meter_reads_proc_stat():
    with phases.LoadMeter() as meter:
        sum(i * i for i in range(200_000))
    assert set(meter.result) >= {"contended"} and meter.result.get("cores", 1) >= 1


def test_samples_round_trip_and_bound():
    x = np.random.default_rng(0).lognormal(1, 0.2, 10_000)
    blob = samples.encode(x)
    back = samples.decode(blob)
    assert blob["of"] == 10_000 and blob["n"] == len(back) <= samples.MAX_SAMPLES and blob["stride"] == 3
    assert back == pytest.approx(x[::3], rel=1e-6)
    assert len(samples.decode(None)) == 0


def test_rounds_combine_median_of_round_medians():
    rng = np.random.default_rng(0)
    results = []
    for p50 in (5.0, 6.0, 5.5, 7.0, 5.2):
        t = rng.normal(p50, 0.1, 200)
        results.append({"status": "ok", "latency_ms": {"p50": float(np.median(t)), "p90": 0, "p99": 0},
                        "samples_ms": samples.encode(t), "memory_mb": {"peak": 100.0}, "loop": {"iterations": 200}})
    stab = [{"verdict": v, "attempts": [], "seen": []} for v in ("stable", "stable", "contended", "stable", "stable")]
    result, stability = combine(results, stab, 1)
    assert result["latency_ms"]["p50"] == pytest.approx(np.median([r["latency_ms"]["p50"] for r in results]))
    lo, hi = result["latency_ms"]["p50_ci95"]
    assert 5.0 <= lo <= result["latency_ms"]["p50"] <= hi <= 7.1
    assert stability["verdict"] == "contended" and len(result["rounds"]) == 5
