"""INT8 recipes for the CPU runtimes, chosen from the CPU's INT8 class (:mod:`edgebench.portable.cpu_int8`).

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

from edgebench.portable.cpu_int8 import CLASSES, CpuInt8
from edgebench.portable.errors import UsageError


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
class Choice:
    """One runtime's recipe for a CPU INT8 class, why, and the measurement (or document) it rests on."""

    name: str
    reason: str
    measured: str


@dataclass(frozen=True)
class Row:
    ort: Choice
    openvino: Choice


_ZEN3 = ("AMD EPYC Zen 3 (AVX2, no VNNI), `make bench-int8-recipes`: 300 calibration / 700 evaluation photos, "
         "one set of ranges per model, speed-up over FP32 paired (ABBA), batch 1, 2 threads")
_VNNI = Row(
    Choice("u8s8", "VNNI/AMX: u8 x s8 dot products accumulate in int32 (VPDPBUSD), no saturation; full 8-bit weights",
           "Intel Xeon with AMX (issue 3), tf_efficientnet_lite0, 300/700 photos: U8S8 drop -0.57 ± 0.53 pt, "
           "agreement 0.976"),
    Choice("first-layer", "VNNI/AMX: no saturation; NNCF's default overflow fix (first layer only)",
           "Intel Xeon with AMX (issue 3), tf_efficientnet_lite0, 300/700 photos: drop -0.57 ± 0.40 pt, "
           "agreement 0.983"))
_SATURATING = Row(
    Choice("u8u8", "no VNNI: U8S8 saturates in VPMADDUBSW; U8U8 does not (16-bit products), but ONNX Runtime's U8U8 "
                   "depthwise convolution is slow: INT8 can be slower than FP32",
           f"{_ZEN3}: drop (pt) / agreement / speed-up. U8U8: lite0 -0.43 ± 0.47 / 0.981 / 0.18x, lite1 +0.43 ± 0.62 / "
           "0.957 / 0.18x, lite2 -0.14 ± 0.55 / 0.976 / 0.22x, mobilenet_v2 -0.86 ± 0.57 / 0.960 / 0.23x, squeezenet1_1 "
           "+0.57 ± 0.70 / 0.921 / 1.12x. U8S8: +5.14, +7.43, +2.71, +8.57, +6.71 pt. U8S8 7-bit weights: +2.00, +0.86, "
           "+1.14, +0.14, +2.14 pt at 1.2-1.5x (accurate on mobilenet_v2 only). S8S8: +4.29 to +7.57 pt, 0.55-0.91x"),
    Choice("enable", "no VNNI: 8-bit weights saturate in VPMADDUBSW; NNCF overflow fix in every layer (7-bit weights)",
           f"{_ZEN3}: drop (pt) / agreement / speed-up. ENABLE: lite0 +0.86 ± 0.45 / 0.973 / 1.51x, lite1 +0.43 ± 0.47 "
           "/ 0.977 / 1.56x, lite2 +1.00 ± 0.51 / 0.970 / 1.54x, mobilenet_v2 +0.00 ± 0.57 / 0.950 / 1.41x, "
           "squeezenet1_1 +2.29 ± 0.94 / 0.884 / 1.72x. FIRST_LAYER: +0.57, +1.29, +0.14, +0.29, +1.00 pt (agreement "
           "0.941, 0.954, 0.970, 0.944, 0.924). DISABLE: +2.71 to +14.43 pt"))
TABLE: dict[str, Row] = {
    "x86-amx": _VNNI,
    "x86-vnni": _VNNI,
    "x86-avx512": _SATURATING,
    "x86-avx2": _SATURATING,
    "arm64": Row(
        Choice("u8s8", "ARM: SDOT/UDOT (or 16-bit widening) kernels do not saturate; full 8-bit weights",
               "not measured here: ONNX Runtime's quantization guide (no saturation on ARM; U8S8 as fast as U8U8 "
               "or faster)"),
        Choice("disable", "ARM: no saturation; full 8-bit weights",
               "not measured here: NNCF's overflow fix is for x86 CPUs without VNNI")),
    "other": Row(
        Choice("u8u8", "unknown INT8 instructions: U8U8 does not saturate anywhere", "as x86 without VNNI"),
        Choice("enable", "unknown INT8 instructions: 7-bit weights do not saturate anywhere", "as x86 without VNNI")),
}
assert set(TABLE) == set(CLASSES)

FORCED_RISK = {
    "ort": {"u8s8": "U8S8 lost 5.14 ± 1.13 pt top-1 on tf_efficientnet_lite0 (agreement 0.874), 8.57 on mobilenet_v2",
            "s8s8": "S8S8 lost 4.29 ± 1.10 pt (agreement 0.880; ONNX Runtime shifts s8 activations to u8)",
            "u8s8-7bit": "7-bit weights do not saturate but lost 2.00 ± 0.67 pt on tf_efficientnet_lite0 (agreement "
                         "0.956; +0.14 ± 0.69 on mobilenet_v2)"},
    "openvino": {"first-layer": "FIRST_LAYER lost 1.29 ± 0.62 pt on tf_efficientnet_lite1 (agreement 0.954; ENABLE: "
                                "+0.43, 0.977)",
                 "disable": "DISABLE lost 7.29 ± 1.21 pt on tf_efficientnet_lite0 (agreement 0.849)"},
}
"""Forced recipes measured to lose accuracy where U8S8 saturates (:data:`_ZEN3`), and what they lost."""


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
    auto: Choice = getattr(TABLE[cpu.name], runtime)
    choices = ORT_RECIPES if runtime == "ort" else OVERFLOW_FIXES
    if requested != "auto" and requested not in choices:
        option = "--int8-recipe" if runtime == "ort" else "--overflow-fix"
        raise UsageError(f"{option} must be auto or one of {', '.join(choices)}, not {requested!r}")
    if requested in ("auto", auto.name):
        return Recipe(runtime, auto.name, cpu.name, "auto" if requested == "auto" else "user", auto.reason,
                      auto.measured)
    risk = FORCED_RISK[runtime].get(requested) if cpu.saturates_u8s8 else None
    warning = (f"{requested} on this {cpu.describe()} CPU risks VPMADDUBSW saturation: on an AMD EPYC Zen 3 "
               f"(AVX2, no VNNI), {risk}; auto picks {auto.name}") if risk else None
    return Recipe(runtime, requested, cpu.name, "user", f"forced by the user (auto: {auto.name}: {auto.reason})",
                  auto.measured, warning)


_BEFORE = {"ort": "u8s8", "openvino": "first-layer"}
"""What every CPU got before the recipe followed the CPU (engines built then record no recipe)."""


def rebuild_reason(entry: dict | None, recipe: Recipe) -> str | None:
    """Why a cached INT8 engine (``entry``, from the manifest) is rebuilt for ``recipe``: None when
    there is none, or when it was built with the same recipe (then something else changed)."""
    if not entry:
        return None
    old = (entry.get("build") or {}).get("recipe")
    wanted = (f"this CPU ({recipe.cpu_int8}) gets {recipe.name}: {recipe.reason}" if recipe.chosen_by == "auto"
              else f"{recipe.name} is asked for")
    if old is None:
        return f"built before the recipe followed the CPU (always {_BEFORE[recipe.runtime]}); {wanted}; rebuilding"
    if old.get("name") == recipe.name:
        return None
    how = "auto" if old.get("chosen_by") == "auto" else "forced"
    return f"built with {old.get('name')} ({how}, CPU class {old.get('cpu_int8')}); {wanted}; rebuilding"
