"""The latency protocol: warm-up, then at least N iterations and at least T seconds.

The defaults here are the only ones: the CLI options and the device runner read them
from the :class:`Protocol` fields.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from .errors import UsageError


@dataclass(frozen=True)
class Protocol:
    warmup_iterations: int = 10
    warmup_seconds: float = 1.0
    min_iterations: int = 100
    min_seconds: float = 5.0
    max_seconds: float = 120.0  # a hard stop for very slow models; recorded when it cuts the run

    def __post_init__(self) -> None:
        if self.warmup_iterations < 0 or self.min_iterations < 1:
            raise UsageError("--warmup must be >= 0 and --iterations >= 1")
        if self.warmup_seconds < 0 or self.min_seconds < 0 or self.max_seconds <= 0:
            raise UsageError("time limits must be positive")
        if not all(math.isfinite(s) for s in (self.warmup_seconds, self.min_seconds, self.max_seconds)):
            raise UsageError("time limits must be finite numbers")

    def to_dict(self) -> dict:
        return asdict(self)


def time_loop(fn: Callable[[], object], protocol: Protocol) -> tuple[np.ndarray, dict]:
    """Warm up, then time ``fn`` until both minimums are met; per-iteration times in ms.

    ``fn.warmup_done()``, where ``fn`` has it, is called once between the warm-up and the timed loop."""
    start = time.perf_counter()
    warm = 0
    while warm < protocol.warmup_iterations or time.perf_counter() - start < protocol.warmup_seconds:
        fn()
        warm += 1
        if time.perf_counter() - start > protocol.max_seconds / 4:
            break
    if hasattr(fn, "warmup_done"):  # a runtime keeping its own per-run figures (TensorRT's CUDA events) drops these
        fn.warmup_done()
    times: list[float] = []
    begin = time.perf_counter()
    now = begin
    while len(times) < protocol.min_iterations or now - begin < protocol.min_seconds:
        t0 = time.perf_counter()
        fn()
        now = time.perf_counter()
        times.append(now - t0)
        if now - begin > protocol.max_seconds:
            break
    cut = len(times) < protocol.min_iterations or now - begin < protocol.min_seconds
    return np.asarray(times) * 1e3, {"warmup_iterations_run": warm, "iterations": len(times),
                                     "seconds": round(now - begin, 3), "cut_by_max_seconds": cut}


def _binom_half_ppf(q: float, n: int) -> int:
    """The smallest k with P(Binomial(n, 1/2) <= k) >= q (scipy's ``binom.ppf``, stdlib only)."""
    log_half_n = -n * math.log(2.0)
    log_fact_n = math.lgamma(n + 1)
    total = 0.0
    for k in range(n + 1):
        total += math.exp(log_fact_n - math.lgamma(k + 1) - math.lgamma(n - k + 1) + log_half_n)
        if total >= q - 1e-12:
            return k
    return n


def median_ci(samples: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free order-statistic CI of the median: ranks from the Binomial(n, 1/2) quantiles.

    With n < 6 no pair of order statistics reaches 95%: the interval is [min, max] (coverage
    ``1 - 2**(1-n)``)."""
    x = np.sort(np.asarray(samples, dtype=np.float64))
    n = len(x)
    if n == 0:
        raise ValueError("median_ci of no samples")
    lo = _binom_half_ppf((1 - confidence) / 2, n)  # 0-based rank of the lower bound
    hi = n - 1 - lo
    lo, hi = max(lo - 1, 0), min(hi + 1, n - 1)  # conservative: ranks lo..hi (1-based lo..hi+1) cover >= confidence
    return float(x[lo]), float(x[hi])


def summarize(times_ms: np.ndarray, batch: int) -> dict:
    """min, p50 with its 95% order-statistic CI, p90, p99, max, mean, std (ms) and throughput (images/s)."""
    p50, p90, p99 = np.percentile(times_ms, [50, 90, 99])
    mean = float(times_ms.mean())
    return {"p50_ci95": list(median_ci(times_ms)), "ci_method": "order statistics (binomial), one process",
        "min": float(times_ms.min()), "p50": float(p50), "p90": float(p90), "p99": float(p99),
        "max": float(times_ms.max()), "mean": mean, "std": float(times_ms.std(ddof=1)) if len(times_ms) > 1 else 0.0,
        "throughput_ips": batch * 1e3 / mean,
    }


def measure(first: Callable[[], object], loop: Callable[[], object], protocol: Protocol,
            batch: int) -> tuple[dict, np.ndarray]:
    """The first inference alone, then the timed loop: (the measured part of a latency record, the
    per-iteration times in ms)."""
    t0 = time.perf_counter()
    first()
    first_ms = (time.perf_counter() - t0) * 1e3
    times, loop_info = time_loop(loop, protocol)
    return {"latency_ms": summarize(times, batch), "loop": loop_info, "first_inference_ms": round(first_ms, 3)}, times
