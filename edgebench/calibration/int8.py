"""INT8 engines from one calibration set (filled in by the INT8 calibration work)."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError


def ensure_int8(artifacts, runtimes: tuple[str, ...], data: Path | None):
    raise UsageError("INT8 calibration is not available in this build yet")
