"""ExecuTorch's C++ log, read back: the reason for a failure is only there (the Python error says
"Failed to load method forward, error: 0x:1"; the log says which XNNPACK node and why)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def native_log() -> Iterator[list[str]]:
    """Capture the C++ log for the block; the yielded list holds its lines once the block is left (also when it
    raised). The log goes to fd 2, or through Python's ``sys.stderr`` where a host (pytest) replaced it: both are
    caught."""
    lines: list[str] = []
    with tempfile.TemporaryFile("w+", errors="replace") as log, contextlib.redirect_stderr(log):
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            yield lines
        finally:
            log.flush()
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
            lines.extend(ln.split("] ", 1)[-1] for ln in log.read().splitlines())


def reason(lines: list[str], error: BaseException) -> str:
    """The line that says why: an XNNPACK node it could not create, a tensor it could not resize, else the first
    failure it logged, else the Python error."""
    cause = next((ln for ln in lines if "Failed to create" in ln or "Attempted to" in ln),
                 next((ln for ln in lines if "failed" in ln.lower()), str(error).strip()))
    return cause[:240]
