"""What else used the CPUs during a timed loop: competing processes and the hypervisor (``/proc/stat``).

* Competing processes: the machine's busy CPU time against this process's own CPU time over
  the loop; when other processes used more than ``CONTENDED_SHARE`` of the cores, the loop is
  ``contended``.
* Stolen time: on a virtual machine (these hosts are KVM guests) ``/proc/stat``'s ``steal``
  column counts the time the hypervisor gave the virtual CPUs' physical cores to other guests,
  time this process could not run although it was ready to. When steal exceeds
  ``STEAL_SHARE`` of the cores' time over the loop, the loop is ``contended`` too. Neither
  counts as busy: a stolen tick is not this machine's work.

Numpy-free and stdlib-only, so that the device runner records the same (``load`` of its records).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")
CONTENDED_SHARE = 0.25  # of all cores' time, used by other processes during the loop
STEAL_SHARE = 0.05  # of all cores' time, taken by the hypervisor during the loop
_BUSY_FIELDS = (0, 1, 2, 5, 6)  # user, nice, system, irq, softirq (idle, iowait, steal, guest excluded)
_STEAL_FIELD = 7  # user nice system idle iowait irq softirq steal guest guest_nice (Linux >= 2.6.11)


@dataclass(frozen=True)
class CpuTimes:
    """The aggregate ``cpu`` line of /proc/stat, in clock ticks, and the number of ``cpuN`` lines."""

    busy: int
    steal: int
    cores: int


def parse_proc_stat(text: str) -> CpuTimes | None:
    """The busy and steal ticks of all cores and the core count from a ``/proc/stat`` text; None when it has
    no aggregate ``cpu`` line. A kernel without the steal column (before 2.6.11) reads as no steal."""
    lines = text.splitlines()
    head = next((line.split() for line in lines if line.split()[:1] == ["cpu"]), None)
    if head is None:
        return None
    try:
        fields = [int(v) for v in head[1:]]
    except ValueError:
        return None
    cores = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return CpuTimes(busy=sum(fields[i] for i in _BUSY_FIELDS if i < len(fields)),
                    steal=fields[_STEAL_FIELD] if len(fields) > _STEAL_FIELD else 0, cores=cores)


def read_proc_stat() -> CpuTimes | None:
    try:
        return parse_proc_stat(PROC_STAT.read_text())
    except OSError:
        return None


def contention(machine_busy_s: float, own_cpu_s: float, wall_s: float, cores: int,
               share: float = CONTENDED_SHARE, steal_s: float = 0.0, steal_share: float = STEAL_SHARE) -> dict:
    """Other processes' share of all cores over ``wall_s``, (machine busy - own CPU) / (cores x wall), and the
    hypervisor's, steal / (cores x wall); ``contended`` when either is above its threshold."""
    other = max(machine_busy_s - own_cpu_s, 0.0)
    capacity = cores * wall_s if wall_s > 0 and cores else 0.0
    other_share = other / capacity if capacity else 0.0
    stolen = max(steal_s, 0.0) / capacity if capacity else 0.0
    return {"contended": other_share > share or stolen > steal_share, "other_share": round(other_share, 3),
            "steal_share": round(stolen, 4), "steal_s": round(max(steal_s, 0.0), 3),
            "steal_contended": stolen > steal_share,
            "own_cores": round(own_cpu_s / wall_s, 3) if wall_s > 0 else None,
            "machine_busy_cores": round(machine_busy_s / wall_s, 3) if wall_s > 0 else None,
            "cores": cores, "wall_s": round(wall_s, 3), "threshold_share": share, "steal_threshold_share": steal_share}


def between(before: CpuTimes | None, after: CpuTimes | None, own_cpu_s: float, wall_s: float,
            hz: float | None = None) -> dict:
    """:func:`contention` of two /proc/stat readings taken ``wall_s`` apart, while this process used
    ``own_cpu_s``; ``{"contended": False, "available": False}`` where either reading is missing."""
    if before is None or after is None:
        return {"contended": False, "available": False}
    hz = hz or os.sysconf("SC_CLK_TCK")
    return contention((after.busy - before.busy) / hz, own_cpu_s, wall_s, after.cores,
                      steal_s=(after.steal - before.steal) / hz)


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


class LoadMeter:
    """``with LoadMeter() as m: <timed loop>``; then ``m.result`` is :func:`contention`'s dict
    (``{"contended": False, "available": False}`` where /proc/stat is missing). ``m.split()`` inside the
    loop ends one block (an ABBA block) and starts the next: the block's own :func:`contention` dict."""

    def __enter__(self) -> LoadMeter:
        self._stat = self._block_stat = read_proc_stat()
        self._own = self._block_own = _own_cpu_s()
        self._wall = self._block_wall = time.perf_counter()
        self.result: dict = {}
        return self

    def split(self) -> dict:
        stat, own, wall = read_proc_stat(), _own_cpu_s(), time.perf_counter()
        found = between(self._block_stat, stat, own - self._block_own, wall - self._block_wall)
        self._block_stat, self._block_own, self._block_wall = stat, own, wall
        return found

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._wall
        own = _own_cpu_s() - self._own
        self.result = between(self._stat, read_proc_stat(), own, wall)
