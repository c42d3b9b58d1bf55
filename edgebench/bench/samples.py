"""Per-iteration times kept in a record, compactly, so statistics can be recomputed later.

Chosen: float32 milliseconds, little-endian, base64, at most ``MAX_SAMPLES`` (4096) per
measurement. A longer loop keeps every k-th sample (k = ceil(n / 4096)), so the stored
samples stay in time order: the slow-phase detector and the median CI can be re-run on them.
4096 covers a default 5 s loop of any model slower than 1.2 ms whole, and costs ~22 KB of
JSON per record; quantiles up to p99 keep >= 40 samples beyond them. float32 keeps 7
significant digits, far below the timer's noise.
"""

from __future__ import annotations

import base64
import math

import numpy as np

MAX_SAMPLES = 4096
ENCODING = "float32-le-base64"


def encode(times_ms: np.ndarray, limit: int = MAX_SAMPLES) -> dict:
    x = np.asarray(times_ms, dtype="<f4")
    stride = max(1, math.ceil(len(x) / limit))
    kept = x[::stride]
    return {"encoding": ENCODING, "n": len(kept), "of": len(x), "stride": stride,
            "data": base64.b64encode(kept.tobytes()).decode("ascii")}


def decode(blob: dict | None) -> np.ndarray:
    """The stored samples (ms, float64); empty when the record has none."""
    if not blob or blob.get("encoding") != ENCODING:
        return np.zeros(0)
    return np.frombuffer(base64.b64decode(blob["data"]), dtype="<f4").astype(np.float64)
