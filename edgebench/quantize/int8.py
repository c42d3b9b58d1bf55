"""INT8 engines from one calibration set, cached in the artifact manifest.

``calibrate`` splits the data folder (seeded, disjoint calibration/evaluation
images), preprocesses the calibration images once, and builds:

* ``engines["ort/int8"]``: ORT Q/DQ ONNX, with the recipe of this CPU's INT8 class
  (:mod:`.recipes`: U8S8 with VNNI/AMX or on ARM, a non-saturating one without);
* ``engines["qdq/int8"]``: Q/DQ ONNX with symmetric S8 activations and weights,
  the input for TensorRT's INT8 (explicit quantization) build;
* ``engines["openvino/int8"]``: the FP32 IR quantized by NNCF (``overflow_fix`` from the recipe; from ``engines["openvino/fp32-source"]``
  when the export built no OpenVINO FP32 engine);
* ``engines["<runtime>/int8"]``: a backend's own INT8 model (``Runtime.quantize_int8``: ExecuTorch's PT2E
  ``.pte``), from the same calibration images.

Each is a build step (:class:`~edgebench.build.artifacts.Step`) made through ``Artifacts.ensure`` by a
module-level builder, from a plan settled first (:func:`plan_int8`: the recipes, the split and every content
key); the calibration images (:class:`CalibrationSet`) are decoded once, and only when a step is stale.

Each entry's content key covers the FP32 ONNX, the calibration file-list hash,
the method, seed, recipe and tool versions, so re-running reuses what matches
(and an engine built on a CPU class that needs another recipe is rebuilt, saying why). The
manifest's ``int8`` section records the calibration set (seed, counts, hashes,
file names), method, timings and the layers left in float.
"""

from __future__ import annotations

import functools
import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from edgebench.backends import EngineRequest, Runtime, Status, runtime_class
from edgebench.build.artifacts import Artifacts, Step
from edgebench.build.keys import int8_key
from edgebench.data import Dataset, open_dataset
from edgebench.data.loader import load_samples
from edgebench.data.split import DEFAULT_NUM, DEFAULT_SEED, Split, split_dataset
from edgebench.portable import cpu_int8
from edgebench.portable import host as provenance
from edgebench.portable.errors import UsageError
from edgebench.portable.preprocess import Preprocess
from edgebench.quantize import ort_quant, recipes

log = logging.getLogger(__name__)

ONNX_FILE = "fp32/model.onnx"
SHARED_INT8 = ("ort", "qdq", "openvino")  # the INT8 models built here; any other int8_model is the backend's own


@dataclass(frozen=True)
class Int8Options:
    """How the INT8 engines are calibrated: one choice for every runtime."""

    num: int = DEFAULT_NUM
    method: str = "auto"  # ORT: minmax; a backend's own INT8 model (ExecuTorch): its own default
    seed: int = DEFAULT_SEED
    max_drop: float | None = None
    int8_recipe: str = "auto"  # ORT: auto | u8s8 | u8s8-7bit | u8u8 | s8s8
    overflow_fix: str = "auto"  # NNCF: auto | enable | first-layer | disable

    def __post_init__(self) -> None:
        if self.max_drop is not None and not (math.isfinite(self.max_drop) and 0 <= self.max_drop <= 100):
            raise UsageError(f"--max-drop must be a number of points from 0 to 100, not {self.max_drop}")

    def to_dict(self) -> dict:
        return asdict(self)


def accuracy_control(build: dict) -> dict:
    """The --max-drop part of an INT8 engine's build record ({} without one): ORT's sensitivity
    fallback is nested under ``accuracy_control``, NNCF's accuracy-control build is that part itself."""
    if "accuracy_control" in build:
        return build["accuracy_control"]
    return build if "max_drop_points" in build else {}


def layers_in_float(build: dict) -> list[str]:
    """Layers an INT8 engine runs in float: left out by design, and restored by --max-drop."""
    return [*build.get("left_in_float", build.get("ignored_scope", {})),
            *accuracy_control(build).get("restored_to_float", [])]


def preprocess_of(manifest: dict) -> Preprocess:
    return Preprocess.from_dict(manifest["preprocess"])


def transformer_like(manifest: dict) -> bool:
    from edgebench.models.registry import FAMILIES, Family
    family = manifest.get("model", {}).get("family")
    return family in FAMILIES and Family(family).transformer_like


def int8_models(runtimes: tuple[str, ...]) -> tuple[str, ...]:
    """The INT8 models ``runtimes`` load (``ort``, ``openvino``, ``qdq``), from each backend's ``int8_model``."""
    from edgebench.backends import int8_runtimes
    models = tuple(dict.fromkeys(m for r in runtimes if (m := runtime_class(r).int8_model)))
    if not models:
        raise UsageError(f"INT8 engines exist for {', '.join(int8_runtimes())}, not {', '.join(runtimes)}")
    return models


def ensure_int8(artifacts, runtimes: tuple[str, ...], data: Path | None, options: Int8Options = Int8Options()):
    """Build (or reuse) the INT8 engines of ``runtimes`` from the FP32 export; called for ``--precision int8``."""
    if data is None:
        raise UsageError("--precision int8 needs calibration images: pass --data DIR (or set EDGEBENCH_DATA)")
    calibrate(artifacts, tuple(r for r in runtimes if r != "torch"), data, **options.to_dict())
    return artifacts


def calibrate(artifacts: Artifacts, runtimes: tuple[str, ...], data: Path, num: int = DEFAULT_NUM,
              method: str = "auto", seed: int = DEFAULT_SEED, max_drop: float | None = None,
              int8_recipe: str = "auto", overflow_fix: str = "auto", status: Status = lambda _m: None) -> dict:
    """Calibrate on ``data`` and build the INT8 models ``runtimes`` load; return the manifest's int8 section.
    ``int8_recipe`` (ORT) and ``overflow_fix`` (NNCF): "auto" picks them from this CPU's INT8 class;
    ``method`` "auto" is minmax for ORT and the backend's own choice for its own INT8 model (ExecuTorch)."""
    plan = plan_int8(artifacts, runtimes, data, num, method, seed, max_drop, int8_recipe, overflow_fix)
    section = artifacts.manifest.setdefault("int8", {})
    section.setdefault("requested", {}).update({r: plan.chosen[r].to_dict() for r in ("ort", "openvino")
                                                if r in plan.models})
    timings = section.setdefault("seconds", {})
    start = time.perf_counter()
    context = BuildContext(artifacts, plan, CalibrationSet(artifacts.manifest, plan, section, status), status)
    steps = [Step(f"{m}/int8", plan.keys[m], timed(timings, m, builder(context, m)), precision="int8",
                  runtime_version=plan.runtime_versions[m]) for m in plan.built]
    warn_recipes(artifacts, plan, steps)
    if all(artifacts.current(step) for step in steps):
        status("INT8 engines are up to date")
        # the same calibration images may sit in another folder now: name this one, with its own warnings
        section.setdefault("calibration", {}).update(folder=plan.split.info["folder"], layout=plan.split.info["layout"],
                                                     warnings=plan.warnings)
        artifacts.save()
        return section
    for step in steps:
        artifacts.ensure(step, status)
    section["total_seconds"] = round(time.perf_counter() - start, 2)
    artifacts.save()
    return section


# ---------------------------------------------------------------- the plan: recipes, split and keys

@dataclass(frozen=True)
class Int8Plan:
    """What one calibration builds, settled before any image is decoded: the INT8 models, the recipe chosen
    per CPU runtime, the seeded split and each model's content key (which alone decides reuse)."""

    models: tuple[str, ...]  # the INT8 models the runtimes load
    chosen: dict[str, recipes.Recipe]  # "ort" and "openvino"
    own: dict[str, type[Runtime]]  # a backend's own INT8 model (ExecuTorch's) -> its runtime
    keys: dict[str, str]
    runtime_versions: dict[str, str | None]  # recorded in each model's manifest entry
    data: Path
    dataset: Dataset
    split: Split
    method: str  # ORT's: "auto" is minmax
    own_method: str  # as asked: "auto" leaves it to the backend's own INT8 model
    seed: int
    num: int
    max_drop: float | None

    @property
    def built(self) -> tuple[str, ...]:
        """The models to build, in order: the shared ones (the Q/DQ model with ORT's too), then each backend's own."""
        shared = (m for m in SHARED_INT8 if m in self.models or (m == "qdq" and "ort" in self.models))
        return (*shared, *self.own)

    @property
    def warnings(self) -> list[str]:
        return self.dataset.warnings + self.split.warnings


def plan_int8(artifacts: Artifacts, runtimes: tuple[str, ...], data: Path, num: int, method: str, seed: int,
              max_drop: float | None, int8_recipe: str, overflow_fix: str) -> Int8Plan:
    """Check the request, choose the recipes from this CPU's INT8 class, split ``data`` and key every model."""
    if method not in ("auto", *ort_quant.METHODS):
        raise UsageError(f"--method must be one of auto, {', '.join(ort_quant.METHODS)}, not {method!r}")
    own_method, method = method, ort_quant.DEFAULT_METHOD if method == "auto" else method
    if num < 1:
        raise UsageError("--num must be at least 1")
    models = int8_models(runtimes)
    chosen = {"ort": recipes.select("ort", cpu_int8.detect(), int8_recipe),
              "openvino": recipes.select("openvino", cpu_int8.detect(), overflow_fix)}
    if not artifacts.file_intact(ONNX_FILE):
        raise UsageError(f"no intact FP32 ONNX in {artifacts.root}; run `edgebench export` first")
    dataset = open_dataset(data)
    split = split_dataset(dataset, num, seed)
    if max_drop is not None and not dataset.labelled:
        raise UsageError("--max-drop needs labelled images (labels.csv or class sub-folders)")
    versions = provenance.package_versions()
    own = {cls.int8_model: cls for r in runtimes if (cls := runtime_class(r)).int8_model not in (None, *SHARED_INT8)}
    own_versions = {m: cls.availability().version for m, cls in own.items()}
    base = key_base(artifacts.manifest, split.info["calibration_hash"], method, seed, num, max_drop)
    keys = content_keys(base, chosen, versions, own, own_versions, own_method)
    runtime_versions = {m: versions.get("openvino" if m == "openvino" else "onnxruntime") for m in SHARED_INT8}
    return Int8Plan(models, chosen, own, keys, runtime_versions | own_versions, data, dataset, split, method,
                    own_method, seed, num, max_drop)


def key_base(manifest: dict, calibration_hash: str, method: str, seed: int, num: int, max_drop: float | None) -> dict:
    """What every INT8 model's content key covers: the FP32 ONNX and its preprocessing, the calibration set
    and how it is calibrated."""
    return {"onnx": manifest["files"][ONNX_FILE]["sha256"], "calibration": calibration_hash, "method": method,
            "seed": seed, "num": num, "max_drop": max_drop, "preprocess": manifest["preprocess"]}


def content_keys(base: dict, chosen: dict[str, recipes.Recipe], versions: dict[str, str | None],
                 own: dict[str, type[Runtime]], own_versions: dict[str, str | None], own_method: str) -> dict[str, str]:
    """Each INT8 model's content key: ``base``, the recipe chosen for it and its tools' ``versions``. The Q/DQ
    model ignores --max-drop (its build has no fallback); a backend's own model is keyed by its build format,
    its backend's version and the method as asked (``own_method``)."""
    ort_versions = {"onnxruntime": versions.get("onnxruntime")}
    keys = {"ort": int8_key({**base, "recipe": chosen["ort"].key()}, "ort", ort_versions),
            "qdq": int8_key({**base, "max_drop": None, "trt_op_types": ort_quant.TRT_OP_TYPES,
                             "excluded": "fragile_nodes"}, "qdq", ort_versions),
            "openvino": int8_key({**base, "recipe": chosen["openvino"].key()}, "openvino",
                                 {"openvino": versions.get("openvino"), "nncf": versions.get("nncf")})}
    keys.update({m: int8_key({**base, "method": own_method, "backend_format": own[m].build_format}, m, {m: version})
                 for m, version in own_versions.items()})
    return keys


def warn_recipes(artifacts: Artifacts, plan: Int8Plan, steps: list[Step]) -> None:
    """Log a forced recipe's risk on this CPU, and why a stale engine built with another recipe is rebuilt."""
    for runtime in (m for m in ("ort", "openvino") if m in plan.models):
        if plan.chosen[runtime].warning:
            log.warning(plan.chosen[runtime].warning)
    for step in steps:
        runtime = step.name.split("/")[0]
        if runtime in plan.chosen and not artifacts.current(step):
            why = recipes.rebuild_reason(artifacts.engine_entry(runtime, "int8"), plan.chosen[runtime])
            if why:
                log.warning(f"{step.name} in {artifacts.root}: {why}")


# ---------------------------------------------------------------- the calibration images, decoded on first use

@dataclass
class CalibrationSet:
    """The plan's calibration images, decoded once and only when a stale model needs them (never when every
    INT8 model is current); decoding records the manifest's ``int8.calibration`` section."""

    manifest: dict
    plan: Int8Plan
    section: dict  # the manifest's int8 section
    status: Status

    @cached_property
    def decoded(self) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """The calibration images and, for --max-drop, the labelled set."""
        split = self.plan.split
        self.status(f"reading {len(split.calibration)} calibration images")
        t0 = time.perf_counter()
        loaded = load_samples(split.calibration, preprocess_of(self.manifest))
        if len(loaded.inputs) == 0:
            raise UsageError(f"none of the {len(split.calibration)} calibration images in {self.plan.data} "
                             "could be read")
        if loaded.skipped:
            log.warning("%d of %d calibration images unreadable, skipped, e.g. %s", len(loaded.skipped),
                        len(split.calibration), loaded.skipped[0])
        self.section["calibration"] = {
            **split.info, "method": self.plan.own_method, "used": len(loaded.inputs), "skipped": len(loaded.skipped),
            "skipped_examples": loaded.skipped[:5], "warnings": self.plan.warnings,
            "files": [str(s.path.relative_to(self.plan.dataset.root)) for s in loaded.samples],
            "decode_seconds": round(time.perf_counter() - t0, 2),
        }
        val = (loaded.inputs, np.asarray(loaded.labels, dtype=np.int64)) if self.plan.max_drop is not None else None
        return loaded.inputs, val

    @property
    def images(self) -> np.ndarray:
        return self.decoded[0]

    @property
    def labelled(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The images and their labels that --max-drop measures the drop on; None without it."""
        return self.decoded[1]


# ---------------------------------------------------------------- the builders, one per INT8 model

@dataclass
class BuildContext:
    """What the builders share; ORT's pre-processed model is made once, for both the ORT and the Q/DQ model."""

    artifacts: Artifacts
    plan: Int8Plan
    calibration: CalibrationSet
    status: Status

    @property
    def ort_work(self) -> Path:
        return self.artifacts.path("int8/ort")

    @property
    def ranges(self) -> Path:
        """ORT's calibration ranges: written by the ORT build, reused by the Q/DQ build."""
        return self.ort_work / "calibration-ranges.json"

    @cached_property
    def ort_prepared(self) -> tuple[Path, list[str]]:
        """ORT's pre-processed model and the nodes every recipe leaves in float; fresh ranges."""
        prepared = ort_quant.pre_process(self.artifacts.path(ONNX_FILE), self.ort_work / "model.prep.onnx")
        self.ranges.unlink(missing_ok=True)
        return prepared, ort_quant.fragile_nodes(prepared)


def timed(timings: dict, name: str, build: Callable[[], dict]) -> Callable[[], dict]:
    """``build``, its seconds recorded as ``timings[name]``."""
    def run() -> dict:
        t0 = time.perf_counter()
        built = build()
        timings[name] = round(time.perf_counter() - t0, 2)
        return built
    return run


def builder(context: BuildContext, model: str) -> Callable[[], dict]:
    """The build of one INT8 model: a shared one's builder, else the backend's own quantization."""
    if model in BUILDERS:
        return functools.partial(BUILDERS[model], context)
    return functools.partial(build_own, context, context.plan.own[model])


def build_ort(context: BuildContext) -> dict:
    artifacts, plan, status = context.artifacts, context.plan, context.status
    images, val = context.calibration.images, context.calibration.labelled
    prepared, fragile = context.ort_prepared
    recipe = plan.chosen["ort"]
    status(f"ONNX Runtime: calibrating ({plan.method}) and quantizing to {recipe.name} Q/DQ")
    out = context.ort_work / "model.int8.onnx"
    build = ort_quant.quantize(prepared, out, images, plan.method, "cpu", context.ranges, list(fragile), recipe.ort())
    build["left_in_float"], build["recipe"] = fragile, recipe.to_dict()
    if val is not None:
        from edgebench.quantize.sensitivity import restore_sensitive
        status("ONNX Runtime: ranking layer sensitivity for --max-drop")
        every_layer = shutil.copyfile(out, context.ort_work / "model.int8-every-layer.onnx")
        control = restore_sensitive(prepared, out, images, val, plan.method, context.ranges, fragile, plan.max_drop,
                                    status, recipe.ort())
        build["accuracy_control"] = control
        if control["restored_to_float"]:  # kept so that run can measure what the fallback costs
            build["every_layer_int8_file"] = artifacts.record_file(every_layer)
    return {**build, "files": [out]}


def build_qdq(context: BuildContext) -> dict:
    prepared, fragile = context.ort_prepared
    context.status("Q/DQ ONNX for TensorRT: symmetric S8S8")
    out = context.artifacts.path("int8/qdq/model.qdq.onnx")
    images = context.calibration.images if not context.ranges.is_file() else None  # else ORT's ranges
    build = ort_quant.quantize(prepared, out, images, context.plan.method, "trt", context.ranges, list(fragile))
    build["left_in_float"] = fragile  # the same exclusions as the ORT model
    build["for"] = "TensorRT explicit quantization (also runs on ORT and OpenVINO)"
    return {**build, "files": [out]}


def build_openvino(context: BuildContext) -> dict:
    from edgebench.quantize import nncf_quant
    artifacts, plan, status = context.artifacts, context.plan, context.status
    images, val = context.calibration.images, context.calibration.labelled
    fp32_xml = _fp32_ir(artifacts, status)
    out = artifacts.path("int8/openvino/model.xml")
    transformer, recipe = transformer_like(artifacts.manifest), plan.chosen["openvino"]
    fix = recipe.name
    if val is None:
        status(f"OpenVINO: NNCF post-training quantization (overflow fix: {fix})")
        build = nncf_quant.quantize_ir(fp32_xml, out, images, transformer, overflow_fix=fix)
        return {**build, "recipe": recipe.to_dict()}
    status(f"OpenVINO: NNCF quantization with accuracy control (overflow fix: {fix})")
    build = nncf_quant.quantize_ir_with_accuracy_control(fp32_xml, out, images, val[0], val[1], plan.max_drop,
                                                         transformer, overflow_fix=fix)
    build["recipe"] = recipe.to_dict()
    if build["restored_to_float"]:  # the every-layer INT8 IR, so that run can measure what the fallback costs
        status("OpenVINO: NNCF quantization of every layer, for the fallback's latency cost")
        full = nncf_quant.quantize_ir(fp32_xml, artifacts.path("int8/openvino-every-layer/model.xml"),
                                      images, transformer, overflow_fix=fix)["files"]
        build["every_layer_int8_file"] = artifacts.record_file(full[0])
        artifacts.record_file(full[1])
    return build


def build_own(context: BuildContext, cls: type[Runtime]) -> dict:
    """A backend's own INT8 model (``Runtime.quantize_int8``), from the same calibration images."""
    artifacts, plan, manifest = context.artifacts, context.plan, context.artifacts.manifest
    options = {"method": plan.own_method, "seed": plan.seed, "num": plan.num, "max_drop": plan.max_drop}
    request = EngineRequest(artifacts.path(ONNX_FILE), artifacts.root, "int8", tuple(manifest["input"]["shape"][1:]),
                            options, status=context.status, manifest=manifest, calibration=context.calibration.images)
    return cls.quantize_int8(request)


BUILDERS: dict[str, Callable[[BuildContext], dict]] = {"ort": build_ort, "qdq": build_qdq, "openvino": build_openvino}


def _fp32_ir(artifacts: Artifacts, status: Status) -> Path:
    """The FP32 IR NNCF starts from: the export's OpenVINO FP32 engine, else a recorded step of its own."""
    entry = artifacts.engine_entry("openvino", "fp32")
    if entry and all(artifacts.file_intact(f) for f in entry["files"]):
        return artifacts.path(entry["files"][0])
    openvino = runtime_class("openvino")
    version = openvino.availability().version
    folder = artifacts.path("int8/openvino-fp32-source")

    def build() -> dict:
        request = EngineRequest(artifacts.path(ONNX_FILE), folder, "fp32", tuple(artifacts.manifest["input"]["shape"][1:]))
        return openvino.build_engine(request)

    key = int8_key({"onnx": artifacts.manifest["files"][ONNX_FILE]["sha256"]}, "openvino-fp32-source",
                   {"openvino": version})
    entry = artifacts.ensure(Step("openvino/fp32-source", key, build, precision="fp32", runtime_version=version),
                             status)
    return artifacts.path(entry["files"][0])
