"""INT8 recipes for the CPU runtimes, chosen from the CPU's INT8 class (:mod:`edgebench.cpu_int8`).

ONNX Runtime's quantization guide: on x86-64 with AVX2/AVX-512 but without VNNI,
U8S8 runs on ``VPMADDUBSW``, whose int16 sums can saturate; ``reduce_range``
(7-bit weights) or U8U8 avoid it; VNNI CPUs and ARM do not have the issue. NNCF
documents the same for OpenVINO ("inaccurate int8 results for MobileNet-like
models on non-VNNI machines") with ``overflow_fix``: ENABLE (7-bit weights in
every layer), FIRST_LAYER (its default) or DISABLE.

:data:`TABLE` holds one row per class, each citing the measurement it rests on.
The TensorRT Q/DQ model is not chosen here: it is always symmetric S8S8 (GPUs
have no such saturation).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..cpu_int8 import CLASSES, CpuInt8
from ..errors import UsageError


@dataclass(frozen=True)
class OrtRecipe:
    """ONNX Runtime ``quantize_static`` types for the CPU Q/DQ model (per-channel, symmetric weights)."""

    name: str
    activation_type: str
    weight_type: str
    reduce_range: bool


U8S8 = OrtRecipe("u8s8", "QUInt8", "QInt8", False)
ORT_RECIPES = {r.name: r for r in (U8S8, OrtRecipe("u8s8-7bit", "QUInt8", "QInt8", True),
                                   OrtRecipe("u8u8", "QUInt8", "QUInt8", False), OrtRecipe("s8s8", "QInt8", "QInt8", False))}
OVERFLOW_FIXES = ("enable", "first-layer", "disable")
"""NNCF ``OverflowFix`` values, by their CLI names."""


@dataclass(frozen=True)
class Row:
    """What one CPU INT8 class gets, why, and the measurement that says so."""

    ort: str
    overflow_fix: str
    reason: str
    measured: str


_VNNI = Row(
    "u8s8", "first-layer",
    "VNNI/AMX: u8 x s8 dot products accumulate in int32 (VPDPBUSD), no saturation; full 8-bit weights",
    "Intel Xeon with AMX (issue 3), tf_efficientnet_lite0, 300/700 photos: ORT U8S8 drop -0.57 ± 0.53 pt, "
    "agreement 0.976; NNCF FIRST_LAYER -0.57 ± 0.40 pt, agreement 0.983")
_SATURATING = Row(
    "u8s8-7bit", "enable",
    "no VNNI: U8S8 saturates in VPMADDUBSW; 7-bit weights",
    "AMD EPYC Zen 3 (AVX2, no VNNI), tf_efficientnet_lite0, 300/700 photos: ORT U8S8 drop +5.14 ± 1.13 pt, "
    "agreement 0.874; NNCF FIRST_LAYER +0.57 ± 0.73 pt, agreement 0.941")
TABLE: dict[str, Row] = {
    "x86-amx": _VNNI,
    "x86-vnni": _VNNI,
    "x86-avx512": _SATURATING,
    "x86-avx2": _SATURATING,
    "arm64": Row("u8s8", "disable",
                 "ARM: SDOT/UDOT (or 16-bit widening) kernels do not saturate; full 8-bit weights",
                 "not measured here: ONNX Runtime's guide (no saturation on ARM; U8S8 as fast or faster than U8U8) "
                 "and NNCF's (the overflow is an x86 non-VNNI issue)"),
    "other": _SATURATING,
}
assert set(TABLE) == set(CLASSES)

SATURATION_RISK = {
    "ort": {"u8s8": "ORT U8S8 lost 5.14 ± 1.13 pt top-1 on tf_efficientnet_lite0 (agreement 0.874)",
            "s8s8": "ORT S8S8 agreed with FP32 on 0.903 of tf_efficientnet_lite0's photos (U8S8: 0.900; "
                    "ORT shifts s8 activations to u8)"},
    "openvino": {"first-layer": "NNCF FIRST_LAYER lost 0.57 ± 0.73 pt on tf_efficientnet_lite0 (agreement 0.941)",
                 "disable": "NNCF without overflow fix saturates in every layer"},
}
"""Forced recipes known to saturate on a non-VNNI x86 CPU, and what that cost (AMD EPYC Zen 3)."""


@dataclass(frozen=True)
class Recipe:
    """The recipe one runtime's INT8 engine is built with, and why (recorded in the manifest and the record)."""

    runtime: str
    name: str
    cpu_int8: str
    chosen_by: str
    reason: str
    measured: str
    warning: str | None = None

    def ort(self) -> OrtRecipe:
        return ORT_RECIPES[self.name]

    def key(self) -> dict:
        """What the content key covers: the recipe itself, not the CPU class (two classes sharing one
        recipe share one engine)."""
        return asdict(self.ort()) if self.runtime == "ort" else {"overflow_fix": self.name}

    def to_dict(self) -> dict:
        return {**asdict(self), **({"ort": asdict(self.ort())} if self.runtime == "ort" else {})}


def select(runtime: str, cpu: CpuInt8, requested: str = "auto") -> Recipe:
    """The recipe for ``runtime`` ("ort" or "openvino") on ``cpu``: the table's row for ``auto``,
    else ``requested``, with a warning when it is known to saturate there."""
    row = TABLE[cpu.name]
    choices = ORT_RECIPES if runtime == "ort" else OVERFLOW_FIXES
    if requested != "auto" and requested not in choices:
        option = "--int8-recipe" if runtime == "ort" else "--overflow-fix"
        raise UsageError(f"{option} must be auto or one of {', '.join(choices)}, not {requested!r}")
    auto = getattr(row, "ort" if runtime == "ort" else "overflow_fix")
    if requested in ("auto", auto):
        return Recipe(runtime, auto, cpu.name, "auto" if requested == "auto" else "user", row.reason, row.measured)
    risk = SATURATION_RISK[runtime].get(requested) if cpu.saturates_u8s8 else None
    warning = (f"{requested} on this {cpu.describe()} CPU risks VPMADDUBSW saturation: measured on an AMD EPYC "
               f"Zen 3 (AVX2, no VNNI), {risk}; auto picks {auto}") if risk else None
    return Recipe(runtime, requested, cpu.name, "user", f"forced by the user (auto: {auto}, {row.reason})",
                  row.measured, warning)


_BEFORE = {"ort": "u8s8", "openvino": "first-layer"}
"""What every CPU got before the recipe followed the CPU (engines built then record no recipe)."""


def rebuild_reason(entry: dict | None, recipe: Recipe) -> str | None:
    """Why a cached INT8 engine (``entry``, from the manifest) is rebuilt for ``recipe``: None when
    there is none, or when it was built with the same recipe (then something else changed)."""
    if not entry:
        return None
    old = (entry.get("build") or {}).get("recipe")
    if old is None:
        return (f"built before the recipe followed the CPU (always {_BEFORE[recipe.runtime]}); this "
                f"{recipe.cpu_int8} CPU gets {recipe.name} ({recipe.reason}): rebuilding")
    if old.get("name") == recipe.name:
        return None
    return (f"built with {old.get('name')} ({old.get('chosen_by')}, on a {old.get('cpu_int8')} CPU); this "
            f"{recipe.cpu_int8} CPU gets {recipe.name} ({recipe.reason}): rebuilding")
