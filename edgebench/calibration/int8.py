"""INT8 engines from one calibration set, cached in the artifact manifest.

``calibrate`` splits the data folder (seeded, disjoint calibration/evaluation
images), preprocesses the calibration images once, and builds:

* ``engines["ort/int8"]``: ORT Q/DQ ONNX, with the recipe of this CPU's INT8 class
  (:mod:`.recipes`: U8S8 with VNNI/AMX or on ARM, a non-saturating one without);
* ``engines["qdq/int8"]``: Q/DQ ONNX with symmetric S8 activations and weights,
  the input for TensorRT's INT8 (explicit quantization) build;
* ``engines["openvino/int8"]``: the FP32 IR quantized by NNCF (``overflow_fix`` from the recipe).

Each entry's content key covers the FP32 ONNX, the calibration file-list hash,
the method, seed, recipe and tool versions, so re-running reuses what matches
(and an engine built on a CPU class that needs another recipe is rebuilt, saying why). The
manifest's ``int8`` section records the calibration set (seed, counts, hashes,
file names), method, timings and the layers left in float.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import UsageError
from ..hashing import sha256_json
from . import ort_quant, recipes
from .split import DEFAULT_NUM, DEFAULT_SEED

log = logging.getLogger(__name__)

INT8_FORMAT = 3  # bump when the quantization recipe changes
ONNX_FILE = "fp32/model.onnx"
INT8_RUNTIMES = ("ort", "openvino")
Status = Callable[[str], None]


@dataclass(frozen=True)
class Int8Options:
    """How the INT8 engines are calibrated: one choice for every runtime."""

    num: int = DEFAULT_NUM
    method: str = "minmax"
    seed: int = DEFAULT_SEED
    max_drop: float | None = None
    int8_recipe: str = "auto"
    overflow_fix: str = "auto"

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


def preprocess_of(manifest: dict):
    from ..models.registry import Preprocess
    p = dict(manifest["preprocess"])
    p["mean"], p["std"] = tuple(p["mean"]), tuple(p["std"])
    return Preprocess(**p)


def transformer_like(manifest: dict) -> bool:
    return manifest.get("model", {}).get("family") in ("transformer", "hybrid", "mlp")


def int8_runtimes(runtimes: tuple[str, ...]) -> tuple[str, ...]:
    wanted = tuple(r for r in runtimes if r in INT8_RUNTIMES or r == "trt")
    if not wanted:
        raise UsageError(f"INT8 engines exist for {', '.join(INT8_RUNTIMES)} (and trt via the Q/DQ ONNX), "
                         f"not {', '.join(runtimes)}")
    return wanted


def ensure_int8(artifacts, runtimes: tuple[str, ...], data: Path | None, options: Int8Options = Int8Options()):
    """Build (or reuse) the INT8 engines of ``runtimes`` from the FP32 export; called for ``--precision int8``."""
    if data is None:
        raise UsageError("--precision int8 needs calibration images: pass --data DIR (or set EDGEBENCH_DATA)")
    calibrate(artifacts, tuple(r for r in runtimes if r != "torch"), data, **options.to_dict())
    return artifacts


def calibrate(artifacts, runtimes: tuple[str, ...], data: Path, num: int = DEFAULT_NUM, method: str = "minmax",
              seed: int = DEFAULT_SEED, max_drop: float | None = None, int8_recipe: str = "auto",
              overflow_fix: str = "auto", status: Status = lambda _m: None) -> dict:
    """Calibrate on ``data`` and build the INT8 engines for ``runtimes``; return the manifest's int8 section.
    ``int8_recipe`` (ORT) and ``overflow_fix`` (NNCF): "auto" picks them from this CPU's INT8 class."""
    from .. import provenance
    from ..cpu_int8 import detect
    from . import open_dataset
    from .loader import load_samples
    from .split import split_dataset

    if method not in ort_quant.METHODS:
        raise UsageError(f"--method must be one of {', '.join(ort_quant.METHODS)}, not {method!r}")
    if num < 1:
        raise UsageError("--num must be at least 1")
    runtimes = int8_runtimes(runtimes)
    chosen = {"ort": recipes.select("ort", detect(), int8_recipe),
              "openvino": recipes.select("openvino", detect(), overflow_fix)}
    manifest = artifacts.manifest
    if not artifacts.file_intact(ONNX_FILE):
        raise UsageError(f"no intact FP32 ONNX in {artifacts.root}; run `edgebench export` first")
    dataset = open_dataset(data)
    for warning in dataset.warnings:
        log.warning(warning)
    split = split_dataset(dataset, num, seed)
    if max_drop is not None and not dataset.labelled:
        raise UsageError("--max-drop needs labelled images (labels.csv or class sub-folders)")
    versions = provenance.package_versions()
    base_key = {"onnx": manifest["files"][ONNX_FILE]["sha256"], "calibration": split.info["calibration_hash"],
                "method": method, "seed": seed, "num": num, "max_drop": max_drop, "format": INT8_FORMAT,
                "preprocess": manifest["preprocess"]}
    keys = {
        "ort": sha256_json({**base_key, "runtime": "ort", "onnxruntime": versions.get("onnxruntime"),
                            "recipe": chosen["ort"].key()}),
        "qdq": sha256_json({**base_key, "runtime": "qdq", "max_drop": None, "onnxruntime": versions.get("onnxruntime")}),
        "openvino": sha256_json({**base_key, "runtime": "openvino", "openvino": versions.get("openvino"),
                                 "nncf": versions.get("nncf"), "recipe": chosen["openvino"].key()}),
    }
    wanted = {"ort": "ort" in runtimes, "qdq": "ort" in runtimes or "trt" in runtimes,
              "openvino": "openvino" in runtimes}
    section = manifest.setdefault("int8", {})
    for runtime in ("ort", "openvino"):
        if wanted[runtime] and chosen[runtime].warning:
            log.warning(chosen[runtime].warning)
    todo = [k for k, on in wanted.items() if on and not artifacts.engine_current(k, "int8", keys[k])]
    for runtime in (r for r in ("ort", "openvino") if r in todo):
        if (why := recipes.rebuild_reason(artifacts.engine_entry(runtime, "int8"), chosen[runtime])):
            log.warning(f"{runtime}/int8 in {artifacts.root}: {why}")
    if not todo:
        status("INT8 engines are up to date")
        return section

    status(f"reading {len(split.calibration)} calibration images")
    start = time.perf_counter()
    loaded = load_samples(split.calibration, preprocess_of(manifest))
    if len(loaded.inputs) == 0:
        raise UsageError(f"none of the {len(split.calibration)} calibration images in {data} could be read")
    images = loaded.inputs
    section["calibration"] = {
        **split.info, "method": method, "used": len(images), "skipped": len(loaded.skipped),
        "skipped_examples": loaded.skipped[:5], "warnings": dataset.warnings + split.warnings,
        "files": [str(s.path.relative_to(dataset.root)) for s in loaded.samples],
        "decode_seconds": round(time.perf_counter() - start, 2),
    }
    val = None
    if max_drop is not None:
        labels = np.asarray(loaded.labels, dtype=np.int64)
        val = (images, labels)
    timings = section.setdefault("seconds", {})

    if "ort" in todo or "qdq" in todo:
        work = artifacts.path("int8/ort")
        prepared = ort_quant.pre_process(artifacts.path(ONNX_FILE), work / "model.prep.onnx")
        cache = work / "calibration-ranges.json"
        cache.unlink(missing_ok=True)
        fragile = ort_quant.fragile_nodes(prepared)
        if "ort" in todo:
            status(f"ONNX Runtime: calibrating ({method}) and quantizing to {chosen['ort'].name} Q/DQ")
            t0 = time.perf_counter()
            out = work / "model.int8.onnx"
            build = ort_quant.quantize(prepared, out, images, method, "cpu", cache, list(fragile), chosen["ort"].ort())
            build["left_in_float"], build["recipe"] = fragile, chosen["ort"].to_dict()
            if val is not None:
                from .sensitivity import restore_sensitive
                status("ONNX Runtime: ranking layer sensitivity for --max-drop")
                every_layer = shutil.copyfile(out, work / "model.int8-every-layer.onnx")
                control = restore_sensitive(prepared, out, images, val, method, cache, fragile, max_drop, status,
                                            chosen["ort"].ort())
                build["accuracy_control"] = control
                if control["restored_to_float"]:  # kept so that run can measure what the fallback costs
                    build["every_layer_int8_file"] = artifacts.record_file(every_layer)
            timings["ort"] = round(time.perf_counter() - t0, 2)
            _record(artifacts, "ort", keys["ort"], [out], build, versions.get("onnxruntime"))
        if "qdq" in todo:
            status("Q/DQ ONNX for TensorRT: symmetric S8S8")
            t0 = time.perf_counter()
            out = artifacts.path("int8/qdq/model.qdq.onnx")
            build = ort_quant.quantize(prepared, out, images if not cache.is_file() else None, method, "trt", cache)
            build["for"] = "TensorRT explicit quantization (also runs on ORT and OpenVINO)"
            timings["qdq"] = round(time.perf_counter() - t0, 2)
            _record(artifacts, "qdq", keys["qdq"], [out], build, versions.get("onnxruntime"))

    if "openvino" in todo:
        from . import nncf_quant
        fix = chosen["openvino"].name
        fp32_xml = _fp32_ir(artifacts)
        out = artifacts.path("int8/openvino/model.xml")
        t0 = time.perf_counter()
        if val is not None:
            status(f"OpenVINO: NNCF quantization with accuracy control (overflow fix: {fix})")
            build = nncf_quant.quantize_ir_with_accuracy_control(fp32_xml, out, images, val[0], val[1], max_drop,
                                                                 transformer_like(manifest), overflow_fix=fix)
            if build["restored_to_float"]:  # the every-layer INT8 IR, so that run can measure what the fallback costs
                status("OpenVINO: NNCF quantization of every layer, for the fallback's latency cost")
                full = nncf_quant.quantize_ir(fp32_xml, artifacts.path("int8/openvino-every-layer/model.xml"),
                                              images, transformer_like(manifest), overflow_fix=fix)["files"]
                build["every_layer_int8_file"] = artifacts.record_file(full[0])
                artifacts.record_file(full[1])
        else:
            status(f"OpenVINO: NNCF post-training quantization (overflow fix: {fix})")
            build = nncf_quant.quantize_ir(fp32_xml, out, images, transformer_like(manifest), overflow_fix=fix)
        timings["openvino"] = round(time.perf_counter() - t0, 2)
        files = build.pop("files")
        build["recipe"] = chosen["openvino"].to_dict()
        _record(artifacts, "openvino", keys["openvino"], files, build, versions.get("openvino"))
    section["total_seconds"] = round(time.perf_counter() - start, 2)
    artifacts.save()
    return section


def _fp32_ir(artifacts) -> Path:
    """The FP32 IR NNCF starts from; converted from the ONNX when the export did not build it."""
    entry = artifacts.engine_entry("openvino", "fp32")
    if entry and all(artifacts.file_intact(f) for f in entry["files"]):
        return artifacts.path(entry["files"][0])
    from ..export import engines
    xml = artifacts.path("int8/openvino-fp32-source/model.xml")
    engines.openvino_ir(artifacts.path(ONNX_FILE), xml, "fp32")
    return xml


def _record(artifacts, runtime: str, key: str, files: list[Path], build: dict, version: str | None) -> None:
    rels = [artifacts.record_file(Path(f)) for f in files]
    artifacts.manifest["engines"][f"{runtime}/int8"] = {"key": key, "files": rels, "runtime_version": version,
                                                        "precision": "int8", "build": build}
    artifacts.save()
