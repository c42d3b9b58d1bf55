"""Measurement: the guarded subprocess runner, the measurement worker, the noise probe, accuracy
on the real engines, and the benchmark_app cross-check.

The worker's import stays light (no torch, no other runtime) because every measurement
process imports it; the timed loop itself lives in :mod:`edgebench.portable.protocol`.
"""
