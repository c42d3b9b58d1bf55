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
* :class:`LoadMeter` compares the machine's busy CPU time (``/proc/stat``) with this process's
  own CPU time over the loop; when other processes used more than ``CONTENDED_SHARE`` of the
  cores, the measurement is ``contended``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from scipy import stats as _st

WINDOWS = 10
MIN_PER_WINDOW = 10
SLOW_FACTOR = 1.3
SLOW_ALPHA = 1e-3
CONTENDED_SHARE = 0.25  # of all cores' time, used by other processes during the loop
_BUSY_FIELDS = (0, 1, 2, 5, 6)  # user, nice, system, irq, softirq (idle, iowait, steal, guest excluded)


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


def _proc_stat_busy() -> tuple[float, int] | None:
    """(busy seconds of all cores, cores) from the aggregate ``cpu`` line of /proc/stat."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    fields = [int(v) for v in lines[0].split()[1:]]
    cores = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return sum(fields[i] for i in _BUSY_FIELDS if i < len(fields)) / hz, cores


def contention(machine_busy_s: float, own_cpu_s: float, wall_s: float, cores: int,
               share: float = CONTENDED_SHARE) -> dict:
    """Other processes' share of all cores over ``wall_s``: (machine busy - own CPU) / (cores x wall)."""
    other = max(machine_busy_s - own_cpu_s, 0.0)
    other_share = other / (cores * wall_s) if wall_s > 0 and cores else 0.0
    return {"contended": other_share > share, "other_share": round(other_share, 3),
            "own_cores": round(own_cpu_s / wall_s, 3) if wall_s > 0 else None,
            "machine_busy_cores": round(machine_busy_s / wall_s, 3) if wall_s > 0 else None,
            "cores": cores, "wall_s": round(wall_s, 3), "threshold_share": share}


class LoadMeter:
    """``with LoadMeter() as m: <timed loop>``; then ``m.result`` is :func:`contention`'s dict
    (``{"contended": False, "available": False}`` where /proc/stat is missing)."""

    def __enter__(self) -> LoadMeter:
        self._busy = _proc_stat_busy()
        t = os.times()
        self._own = t.user + t.system
        self._wall = time.perf_counter()
        self.result: dict = {}
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._wall
        t = os.times()
        own = t.user + t.system - self._own
        busy = _proc_stat_busy()
        if self._busy is None or busy is None:
            self.result = {"contended": False, "available": False}
            return
        self.result = contention(busy[0] - self._busy[0], own, wall, busy[1])


def noise_seen(attempt: dict) -> list[str]:
    """Short names of what went wrong in one measurement attempt (for verdicts and summaries)."""
    seen = []
    if attempt.get("bad_phase"):
        seen.append("probe: slow phase before/after")
    if (attempt.get("phases") or {}).get("slow_phase"):
        seen.append(f"slow phase in the loop (window x{attempt['phases']['worst_ratio']})")
    if (attempt.get("load") or {}).get("contended"):
        seen.append(f"contended: other processes used {attempt['load']['other_share']:.0%} of the cores")
    return seen
