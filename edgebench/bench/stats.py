"""Statistics for latency gates: confidence intervals and the four-way verdict. numpy + scipy only.

Measured on this machine kind (2 shared cores): separate processes of the same engine give
p50s with ~20% coefficient of variation, so a 5% threshold cannot be decided from
process-level medians. Two engines loaded in one process and alternated in ABBA blocks of
25 iterations cancel most of it (per-block ratio CV ~12%, median 1.000). Hence the A/B statistic:

* per ABBA group, ``r = sqrt(b1 * b2 / (a1 * a2))`` from the four block medians (the geometric
  mean of the two adjacent ratios cancels a linear drift inside the group);
* the ratio is the median of ``r`` over every group of every round;
* its 95% CI is a two-level (hierarchical) percentile bootstrap: resample rounds, then groups
  within each drawn round, so between-process effects (load order, memory layout) widen the
  interval instead of hiding in it. Seeded: the same samples always give the same verdict.

Unpaired comparisons (a candidate against history records, measured in other jobs) use the
ratio of medians with an independent bootstrap of each side, and additionally require a
two-sided Mann-Whitney U test on the per-round medians (p < ``alpha``), as asv does: history
rounds come from other processes, where a bootstrap over few rounds alone is over-confident.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as _st

from edgebench.portable.protocol import median_ci  # noqa: F401 - the record's CI, re-exported for the gate

CONFIDENCE = 0.95
BOOTSTRAP = 2000
SEED = 0
VERDICTS = ("regression", "improvement", "no change", "inconclusive")


def median_ci_coverage(n: int, confidence: float = CONFIDENCE) -> float:
    """The exact coverage of :func:`median_ci` for ``n`` samples."""
    lo = max(int(_st.binom.ppf((1 - confidence) / 2, n, 0.5)) - 1, 0)
    return float(1 - 2 * _st.binom.cdf(lo, n, 0.5)) if n else 0.0


def bootstrap_median_ci(values: np.ndarray, confidence: float = CONFIDENCE, seed: int = SEED,
                        draws: int = BOOTSTRAP) -> tuple[float, float]:
    """Percentile bootstrap CI of the median of ``values`` (e.g. round medians)."""
    v = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    meds = np.median(v[rng.integers(0, len(v), (draws, len(v)))], axis=1)
    a = (1 - confidence) / 2
    return float(np.quantile(meds, a)), float(np.quantile(meds, 1 - a))


def abba_ratios(a_blocks: np.ndarray, b_blocks: np.ndarray) -> np.ndarray:
    """Per-ABBA-group ratios B/A from block medians in run order (A, B, B, A, A, B, B, A, ...).

    ``a_blocks[i]`` and ``b_blocks[i]`` are the i-th A and B block medians; group g holds
    blocks 2g and 2g+1 of each engine: ``sqrt(b[2g] * b[2g+1] / (a[2g] * a[2g+1]))``."""
    a, b = np.asarray(a_blocks, np.float64), np.asarray(b_blocks, np.float64)
    n = min(len(a), len(b)) // 2 * 2
    if n == 0:
        return np.zeros(0)
    return np.sqrt(b[0:n:2] * b[1:n:2] / (a[0:n:2] * a[1:n:2]))


def paired_ratio(rounds: list[np.ndarray], confidence: float = CONFIDENCE, seed: int = SEED,
                 draws: int = BOOTSTRAP) -> dict:
    """Median of the per-group ratios over all rounds, with its hierarchical-bootstrap CI."""
    rounds = [np.asarray(r, np.float64) for r in rounds if len(r)]
    if not rounds:
        raise ValueError("paired_ratio of no groups")
    pooled = np.concatenate(rounds)
    rng = np.random.default_rng(seed)
    meds = np.empty(draws)
    for d in range(draws):
        picked = rng.integers(0, len(rounds), len(rounds))
        meds[d] = np.median(np.concatenate([rounds[i][rng.integers(0, len(rounds[i]), len(rounds[i]))]
                                            for i in picked]))
    a = (1 - confidence) / 2
    log = np.log(pooled)
    return {"ratio": float(np.median(pooled)), "ci": [float(np.quantile(meds, a)), float(np.quantile(meds, 1 - a))],
            "groups": len(pooled), "rounds": len(rounds),
            "round_ratios": [round(float(np.median(r)), 4) for r in rounds],
            "group_cv": float(np.std(log, ddof=1)) if len(log) > 1 else 0.0,
            "method": "median of ABBA-group ratios; hierarchical bootstrap (rounds, then groups), "
                      f"{draws} draws, seed {seed}"}


def unpaired_ratio(baseline: np.ndarray, candidate: np.ndarray, confidence: float = CONFIDENCE, seed: int = SEED,
                   draws: int = BOOTSTRAP) -> dict:
    """median(candidate) / median(baseline) with an independent bootstrap CI and a Mann-Whitney U p-value."""
    base, cand = np.asarray(baseline, np.float64), np.asarray(candidate, np.float64)
    rng = np.random.default_rng(seed)
    mb = np.median(base[rng.integers(0, len(base), (draws, len(base)))], axis=1)
    mc = np.median(cand[rng.integers(0, len(cand), (draws, len(cand)))], axis=1)
    a = (1 - confidence) / 2
    r = mc / mb
    p = float(_st.mannwhitneyu(cand, base, alternative="two-sided").pvalue) if len(base) and len(cand) else 1.0
    return {"ratio": float(np.median(cand) / np.median(base)), "ci": [float(np.quantile(r, a)),
                                                                      float(np.quantile(r, 1 - a))],
            "mann_whitney_p": p, "baseline_n": len(base), "candidate_n": len(cand),
            "method": f"ratio of medians; independent bootstrap ({draws} draws, seed {seed}) + Mann-Whitney U"}


@dataclass(frozen=True)
class Verdict:
    verdict: str
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def compare_verdict(ratio: float, ci: tuple[float, float] | list[float], threshold: float,
                    p_value: float | None = None, alpha: float = 0.01) -> Verdict:
    """The four-way verdict for a lower-is-better ratio (candidate / baseline).

    regression: ratio > 1 + threshold and the CI excludes 1 (and p < alpha when a p-value is given);
    improvement: the mirror; no change: the whole CI inside [1 - threshold, 1 + threshold];
    inconclusive: anything else (collect more rounds)."""
    lo, hi = ci
    significant = p_value is None or p_value < alpha
    if ratio > 1 + threshold and lo > 1 and significant:
        return Verdict("regression", f"x{ratio:.3f} > x{1 + threshold:.3f}, CI [{lo:.3f}, {hi:.3f}] excludes 1")
    if ratio < 1 - threshold and hi < 1 and significant:
        return Verdict("improvement", f"x{ratio:.3f} < x{1 - threshold:.3f}, CI [{lo:.3f}, {hi:.3f}] excludes 1")
    if lo >= 1 - threshold and hi <= 1 + threshold:
        return Verdict("no change", f"CI [{lo:.3f}, {hi:.3f}] within ±{threshold:.0%}")
    why = f"CI [{lo:.3f}, {hi:.3f}] is wider than ±{threshold:.0%}"
    if p_value is not None and not significant:
        why += f"; Mann-Whitney p = {p_value:.3g} >= {alpha}"
    return Verdict("inconclusive", why + ": run more rounds")


def budget_verdict(value: float, ci: tuple[float, float] | list[float] | None, limit: float,
                   higher_is_better: bool = False) -> Verdict:
    """An absolute limit: over it (whole CI beyond the limit) is a regression, within it (whole CI
    inside) passes as "no change"; a CI straddling the limit is inconclusive. No CI: the value decides."""
    lo, hi = ci if ci is not None else (value, value)
    if higher_is_better:
        if hi < limit:
            return Verdict("regression", f"{value:.4g} below the minimum {limit:g} (CI up to {hi:.4g})")
        if lo >= limit:
            return Verdict("no change", f"{value:.4g} meets the minimum {limit:g} (CI from {lo:.4g})")
    else:
        if lo > limit:
            return Verdict("regression", f"{value:.4g} over the budget {limit:g} (CI from {lo:.4g})")
        if hi <= limit:
            return Verdict("no change", f"{value:.4g} within the budget {limit:g} (CI up to {hi:.4g})")
    return Verdict("inconclusive", f"CI [{lo:.4g}, {hi:.4g}] straddles the limit {limit:g}: run more rounds")


def overall(verdicts: list[str]) -> str:
    """Any regression fails; else any inconclusive; else improvement if any; else no change."""
    for v in ("regression", "inconclusive", "improvement"):
        if v in verdicts:
            return v
    return "no change"
