"""Noise guard: a short fixed reference workload run before and after each measurement.

On this class of machine there are phases lasting minutes in which 2-thread work
slows 3-40x while 1-thread work does not, with no sign in the steal time. The
probe times a matrix product with 1 and with 2 BLAS threads: normally the
2-thread run takes ~0.6x as long; in a bad phase it takes longer than 1 thread.
"""

from __future__ import annotations

import time

import numpy as np

BAD_RATIO = 1.0  # 2-thread time / 1-thread time above this marks a bad phase
_SIZE = 384


def _median_ms(a: np.ndarray, reps: int) -> float:
    for _ in range(3):
        a @ a
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def probe(threads: int = 2, reps: int = 30) -> dict:
    """Time the reference workload at 1 and ``threads`` threads; ``bad`` flags a bad phase."""
    from threadpoolctl import threadpool_limits
    a = np.random.default_rng(0).random((_SIZE, _SIZE), dtype=np.float32)
    with threadpool_limits(1):
        one = _median_ms(a, reps)
    with threadpool_limits(threads):
        many = _median_ms(a, reps)
    ratio = many / one
    return {"one_thread_ms": round(one, 4), "multi_thread_ms": round(many, 4), "threads": threads,
            "ratio": round(ratio, 3), "bad": threads > 1 and ratio > BAD_RATIO}
