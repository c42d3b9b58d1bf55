"""Process memory: current and peak resident set size, in MB.

The peak is ``VmHWM`` from ``/proc/self/status``, which belongs to this process's
address space. ``ru_maxrss`` is not used on Linux: across fork + exec it keeps the
parent's high-water mark, so a measurement process started from a parent that
holds torch would report torch's memory as its own.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def _status_kb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    hwm = _status_kb("VmHWM")
    if hwm is not None:
        return hwm / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux, bytes on macOS
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float:
    """``VmRSS``; without ``/proc`` (macOS) the peak, its upper bound, so that this stays dependency-free."""
    rss = _status_kb("VmRSS")
    return rss / 1024 if rss is not None else peak_rss_mb()


def snapshot() -> dict:
    return {"rss_mb": round(current_rss_mb(), 1), "peak_rss_mb": round(peak_rss_mb(), 1)}
