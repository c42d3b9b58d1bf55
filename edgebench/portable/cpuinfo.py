"""The one ``/proc/cpuinfo`` reader, for the host fingerprint (:mod:`.host`) and the INT8 class (:mod:`.cpu_int8`).

x86 names its CPU in ``model name`` and its features in ``flags``; ARM in ``Hardware`` (a line after the
processor blocks, on older kernels) and ``Features``. Every processor repeats its block: the first
occurrence of each field is the one kept.
"""

from __future__ import annotations

from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def fields(cpuinfo: Path = CPUINFO) -> dict[str, str]:
    """Each field's first value, keyed by its lower-case name; empty when the file cannot be read."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return {}
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            found.setdefault(key.strip().lower(), value.strip())
    return found
