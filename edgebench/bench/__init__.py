"""Measurement: the guarded subprocess runner (``runner``) and its worker (``worker``), independent rounds
(``rounds``), paired ABBA rounds of two engines in one process (``paired``), the noise probe and load meter
(``noise``, ``phases``), the statistics (``stats``), the stored samples (``samples``), accuracy on the real
engines (``accuracy``), the GEMM peak (``peak``) and the benchmark_app cross-check (``crosscheck``).

The worker's import stays light (no torch, no other runtime) because every measurement
process imports it; the timed loop itself lives in :mod:`edgebench.portable.protocol`.
"""
