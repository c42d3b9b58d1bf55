"""``report --measure-peak``: this machine's GEMM peaks measured (``bench``), then the report (``results``).

The measurement lives here, above both, so that ``results`` only reads and writes records and never
imports ``bench`` (issue 27: the layers contract has no sibling pairs).
"""

from __future__ import annotations

from pathlib import Path

from edgebench.bench.peak import measure_peak
from edgebench.results.reports import make_report


def measure_peaks(threads: int) -> list[dict]:
    """The FP32 and the INT8 ``peak`` record at ``threads`` (ONNX Runtime, about 2 s each)."""
    return [measure_peak(threads, "fp32"), measure_peak(threads, "int8")]


def report(results: list[Path], *, measure_peak: bool = False, **options) -> None:
    """:func:`~edgebench.results.reports.make_report` of ``results``, first measuring and appending
    this machine's peaks when ``measure_peak`` (``options``: make_report's keywords)."""
    make_report(results, peaks=measure_peaks if measure_peak else None, **options)
