"""The CPU's INT8 class: which integer dot-product instructions its INT8 kernels get.

INT8 accuracy on a CPU depends on it. Without VNNI, x86 INT8 kernels multiply
u8 x s8 with ``VPMADDUBSW``, which adds pairs of products into a *saturating*
int16: ONNX Runtime's quantization guide and NNCF's ``overflow_fix`` both name
it. VNNI (``VPDPBUSD``) and AMX accumulate in int32; ARM's dot products
(``SDOT``/``UDOT``, ``SMMLA`` with i8mm) and 16-bit widening kernels do not
saturate either. Measured on an AMD EPYC (Zen 3, AVX2, no VNNI): ORT U8S8 on
tf_efficientnet_lite0 lost 5.1 pt top-1 where the same command on an Intel AMX
CPU lost none (see ``edgebench/quantize/recipes.py``).

Pure functions of a flag set, read through :mod:`.cpuinfo`; stdlib only.
"""

from __future__ import annotations

import functools
import platform
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .cpuinfo import CPUINFO, fields

CLASSES = ("x86-amx", "x86-vnni", "x86-avx512", "x86-avx2", "arm64", "other")
SATURATING = ("x86-avx512", "x86-avx2")
"""Classes whose u8 x s8 kernels use the saturating ``VPMADDUBSW``."""

_X86 = ("x86_64", "amd64", "i386", "i686", "x86")
_ARM64 = ("aarch64", "arm64", "armv8l")
_VNNI = ("avx512_vnni", "avx_vnni")
_ARM_NOTED = {"asimddp": "dotprod", "i8mm": "i8mm", "sve": "sve", "sve2": "sve2"}


@dataclass(frozen=True)
class CpuInt8:
    """A CPU's INT8 class and the flags that decided it."""

    name: str
    machine: str
    evidence: tuple[str, ...] = field(default_factory=tuple)

    @property
    def saturates_u8s8(self) -> bool:
        return self.name in SATURATING

    def describe(self) -> str:
        found = ", ".join(self.evidence) or "no INT8 dot-product flags"
        return f"{self.name} ({found})"

    def to_dict(self) -> dict:
        return {**asdict(self), "evidence": list(self.evidence), "saturates_u8s8": self.saturates_u8s8}


def classify(flags: Iterable[str], machine: str) -> CpuInt8:
    """The INT8 class of a CPU with ``flags`` (``/proc/cpuinfo`` names) and ``machine`` (``platform.machine()``)."""
    have = {f.lower() for f in flags}
    arch = machine.lower()
    if arch in _X86:
        if "amx_int8" in have:
            return CpuInt8("x86-amx", machine, tuple(sorted(have & {"amx_int8", *_VNNI})))
        if have & set(_VNNI):
            return CpuInt8("x86-vnni", machine, tuple(sorted(have & set(_VNNI))))
        if "avx512bw" in have:  # the AVX-512 integer kernels need BW; without VNNI they use VPMADDUBSW
            return CpuInt8("x86-avx512", machine, ("avx512bw", "no vnni"))
        if "avx2" in have:
            return CpuInt8("x86-avx2", machine, ("avx2", "no vnni"))
        return CpuInt8("other", machine, ("x86 without avx2",))
    if arch in _ARM64:
        return CpuInt8("arm64", machine, tuple(name for flag, name in _ARM_NOTED.items() if flag in have))
    return CpuInt8("other", machine)


def read_flags(cpuinfo: Path = CPUINFO) -> set[str]:
    """The first processor's feature flags (x86 ``flags``, ARM ``Features``); empty when unreadable."""
    found = fields(cpuinfo)
    return set((found.get("flags") or found.get("features") or "").split())


@functools.cache
def detect() -> CpuInt8:
    """This host's INT8 class, read once."""
    return classify(read_flags(), platform.machine())
