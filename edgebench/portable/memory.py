"""Process memory: current and peak resident set size, in MB, and the memory an engine adds.

The peak is ``VmHWM`` from ``/proc/self/status``, which belongs to this process's
address space. ``ru_maxrss`` is not used on Linux: across fork + exec it keeps the
parent's high-water mark, so a measurement process started from a parent that
holds torch would report torch's memory as its own.

The engine's own memory (:class:`EngineMemory`): a process's peak includes whatever the
runtime's Python package imports (ExecuTorch's bindings import torch: ~1 GB before any
engine is loaded, none of which a device's C++ runtime carries). After the import the
high-water mark is reset (``echo 5 > /proc/self/clear_refs``, Linux >= 4.0: ``VmHWM``
becomes the current ``VmRSS``), so the rise of the peak during the load and during
inference is the engine's alone. Where the reset is refused (an old kernel, no /proc),
the phases are differences of the process peak, which under-count a phase whose peak stays
below an earlier one (a transient allocation of the import); the record says which.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
FIELDS = ("VmHWM", "VmRSS", "RssAnon", "RssFile")
RESET = "clear_refs"  # EngineMemory.method: the high-water mark was reset before each phase
DIFFERENCES = "peak differences"  # ... it was not (refused): each phase is a difference of the process peak


def parse_status(text: str, fields: tuple[str, ...] = FIELDS) -> dict[str, float]:
    """``{field: MB}`` of the ``kB`` lines of a ``/proc/<pid>/status`` text; fields it lacks are left out."""
    found = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in fields:
            parts = rest.split()
            try:
                found[name] = float(parts[0]) / 1024
            except (IndexError, ValueError):
                continue
    return found


def status_mb(fields: tuple[str, ...] = FIELDS) -> dict[str, float]:
    """This process's ``VmHWM``, ``VmRSS``, ``RssAnon``, ``RssFile`` in MB; empty without ``/proc``."""
    try:
        return parse_status(STATUS.read_text(), fields)
    except OSError:
        return {}


def _status_kb(field: str) -> float | None:
    found = status_mb((field,))
    return found[field] * 1024 if field in found else None


def peak_rss_mb() -> float:
    hwm = _status_kb("VmHWM")
    if hwm is not None:
        return hwm / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux, bytes on macOS
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float:
    """``VmRSS``; without ``/proc`` (macOS) the peak, its upper bound, so that this stays dependency-free."""
    rss = _status_kb("VmRSS")
    return rss / 1024 if rss is not None else peak_rss_mb()


def snapshot() -> dict:
    return {"rss_mb": round(current_rss_mb(), 1), "peak_rss_mb": round(peak_rss_mb(), 1)}


def reset_peak() -> str | None:
    """Reset this process's high-water mark to its current RSS; None when done, else why not (one line)."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError as exc:
        return f"{CLEAR_REFS}: {exc.strerror or exc}"
    return None


def _reading() -> dict[str, float]:
    """Peak, current, anonymous and file-backed MB (the peak from getrusage where /proc is missing)."""
    found = status_mb()
    if "VmHWM" not in found:
        found["VmHWM"] = peak_rss_mb()
    found.setdefault("VmRSS", current_rss_mb())
    return found


def _mb(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


class EngineMemory:
    """The memory of each phase after the runtime's import.

    ``memory = EngineMemory()`` right after importing the runtime and touching it: the import
    floor is read and the high-water mark reset. Then ``memory.mark("load")`` after loading the
    engine and ``memory.mark("run")`` after the first inference and the timed loop; each mark is
    the rise of the peak since the previous one (``<phase>_mb``) and the change of the anonymous
    and file-backed resident memory (``<phase>_anon_mb``, ``<phase>_file_mb``: /proc has no
    high-water mark of those, so they are the resident set at the phase's end against its start;
    mmapped weights are file-backed and shareable between processes), then resets the mark
    again. :meth:`result` is the record's ``memory``; the engine's own memory is
    ``engine_mb`` = load + run.
    """

    ENGINE_PHASES = ("load", "run")

    def __init__(self) -> None:
        floor = _reading()
        self.import_mb = {"": floor.get("VmRSS"), "anon": floor.get("RssAnon"), "file": floor.get("RssFile")}
        self.process_peak = floor["VmHWM"]
        self.refused = reset_peak()
        self.method = RESET if self.refused is None else DIFFERENCES
        self.phases: dict[str, dict] = {}
        self._start = _reading()

    def _reset(self) -> None:
        if self.refused is None:
            self.refused = reset_peak()  # refused only on the first try in practice; recorded if not
            if self.refused is not None:
                self.method = DIFFERENCES
        self._start = _reading()

    @property
    def peak_mb(self) -> float:
        """The whole process's high-water mark at the last mark (or the import): the peak before each reset."""
        return round(self.process_peak, 1)

    def mark(self, phase: str) -> dict:
        """The phase that ends now: ``{"mb", "anon_mb", "file_mb"}`` (MB), kept for :meth:`result`."""
        now = _reading()
        start = self._start
        rise = {"mb": max(now["VmHWM"] - start["VmHWM"], 0.0)}
        for key, name in (("anon_mb", "RssAnon"), ("file_mb", "RssFile")):
            rise[key] = now[name] - start[name] if name in now and name in start else None
        self.process_peak = max(self.process_peak, now["VmHWM"])
        self.phases[phase] = rise
        self._reset()
        return rise

    def result(self) -> dict:
        """``import_mb`` (the process's resident memory after the runtime's import: the floor, host-only),
        ``<phase>_mb`` / ``_anon_mb`` / ``_file_mb`` per marked phase, ``engine_mb`` (load + run),
        ``process_peak_mb``, and ``method`` (``clear_refs``, or ``peak differences`` with ``note``: why)."""
        out: dict = {"import_mb": _mb(self.import_mb[""]), "import_anon_mb": _mb(self.import_mb["anon"]),
                     "import_file_mb": _mb(self.import_mb["file"])}
        for phase, rise in self.phases.items():
            out.update({f"{phase}_mb": _mb(rise["mb"]), f"{phase}_anon_mb": _mb(rise["anon_mb"]),
                        f"{phase}_file_mb": _mb(rise["file_mb"])})
        engine = [self.phases[p]["mb"] for p in self.ENGINE_PHASES if p in self.phases]
        out["engine_mb"] = _mb(sum(engine)) if engine else None
        out["process_peak_mb"] = self.peak_mb
        out["method"] = self.method
        if self.refused is not None:
            out["note"] = (f"high-water mark not reset ({self.refused}): each phase is a difference of the "
                           "process peak and under-counts one that stays below an earlier peak")
        return out
