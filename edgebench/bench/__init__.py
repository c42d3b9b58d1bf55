"""Measurement: latency protocol, noise guard, memory, subprocess runner, result records.

This package's import stays light (no torch, no runtime) because every measurement
process imports it; the runner lives in :mod:`edgebench.bench.runner`.
"""

from .protocol import Protocol, summarize, time_loop
from .record import DEFAULT_RESULTS, append_record, new_record, read_records

__all__ = ["DEFAULT_RESULTS", "Protocol", "append_record", "new_record", "read_records", "summarize", "time_loop"]
