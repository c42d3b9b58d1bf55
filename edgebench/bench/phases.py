"""What happened *during* a timed loop: slow phases in the samples, and competing load on the cores.

The noise probe (:mod:`.noise`) runs before and after a measurement and catches the machine's
slow phases of 2-thread work; it missed one inside a measurement (efficientnet_b0 ORT FP32 at 4x
its normal value, recorded `stable`), and it does not see a second busy process at all
(OpenVINO mobilenet_v3 p50 23.0 ms recorded `stable` beside another job; quiet: ~6 ms).

* :func:`slow_phase` is a pure function of the samples: the loop is cut into time-ordered
  windows; when the slowest window's median exceeds the fastest's by ``SLOW_FACTOR`` and a
  one-sided Mann-Whitney U test says the slowest window is slower (p < ``SLOW_ALPHA``), the
  loop had a slow phase. Slowest against *fastest*, not against the typical window: a load
  that starts early and lasts most of the loop makes the slow windows the typical ones
  (measured: 1 window at 9.6 ms, 9 at 16-18 ms). Both conditions: the factor ignores the
  few-% drifts a test on thousands of samples would call significant; the test ignores one
  unlucky window of a short loop.
* :class:`LoadMeter` (:mod:`edgebench.portable.cpu_load`, so that the device runner has it) compares the
  machine's busy CPU time (``/proc/stat``) with this process's own CPU time over the loop, and reads the
  hypervisor's steal: when other processes used more than ``CONTENDED_SHARE`` of the cores, or steal more
  than ``STEAL_SHARE``, the measurement is ``contended``.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as _st

from edgebench.portable.cpu_load import CONTENDED_SHARE, STEAL_SHARE, LoadMeter, contention

__all__ = ["CONTENDED_SHARE", "STEAL_SHARE", "LoadMeter", "contention", "noise_seen", "slow_phase"]

WINDOWS = 10
MIN_PER_WINDOW = 10
SLOW_FACTOR = 1.3
SLOW_ALPHA = 1e-3


def slow_phase(samples_ms: np.ndarray, windows: int = WINDOWS, factor: float = SLOW_FACTOR,
               alpha: float = SLOW_ALPHA) -> dict:
    """Whether the time-ordered samples contain a slow phase; the window medians and the worst window."""
    x = np.asarray(samples_ms, dtype=np.float64)
    k = min(windows, len(x) // MIN_PER_WINDOW)
    if k < 2:
        return {"slow_phase": False, "windows": k, "reason": f"too few samples ({len(x)}) to split"}
    parts = np.array_split(x, k)
    medians = np.array([np.median(p) for p in parts])
    worst, best = int(np.argmax(medians)), int(np.argmin(medians))
    ratio = float(medians[worst] / medians[best]) if medians[best] > 0 else 1.0
    p = float(_st.mannwhitneyu(parts[worst], parts[best], alternative="greater").pvalue)
    slow = ratio > factor and p < alpha
    return {"slow_phase": bool(slow), "windows": k, "window_medians_ms": [round(float(m), 4) for m in medians],
            "worst_window": worst, "best_window": best, "worst_ratio": round(ratio, 3), "p_value": p,
            "factor": factor, "alpha": alpha}


def noise_seen(attempt: dict) -> list[str]:
    """Short names of what went wrong in one measurement attempt (for verdicts and summaries)."""
    seen = []
    if attempt.get("bad_phase"):
        seen.append("probe: slow phase before/after")
    if (attempt.get("phases") or {}).get("slow_phase"):
        seen.append(f"slow phase in the loop (window x{attempt['phases']['worst_ratio']})")
    load = attempt.get("load") or {}
    if load.get("contended") and load.get("other_share", 0) > load.get("threshold_share", CONTENDED_SHARE):
        seen.append(f"contended: other processes used {load['other_share']:.0%} of the cores")
    if load.get("contended") and load.get("steal_contended"):
        seen.append(f"contended: the hypervisor stole {load['steal_share']:.1%} of the cores' time")
    return seen
