"""Export one registry model: torch -> ONNX -> per-runtime engines, verified, with a manifest.

Every step is keyed by content hashes: re-running with the same model, weights,
opset and tool versions reuses the files; anything changed rebuilds.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import provenance
from ..errors import ExportError, UsageError
from ..hashing import sha256_json
from ..runtimes import RuntimeOptions, canonical, require, runtime_class
from ..runtimes.tensorrt_config import TrtBuildOptions, profile_batches
from . import engines
from .artifacts import Artifacts, ensure_writable
from .onnx_export import export_onnx
from .verify import agreement, check

if TYPE_CHECKING:
    from ..models.registry import Preprocess

log = logging.getLogger(__name__)

EXPORT_FORMAT = 1  # bump when the export recipe changes, to invalidate old artifacts
VERIFY_SAMPLES = 8
ONNX_FILE = "fp32/model.onnx"

Status = Callable[[str], None]


@dataclass
class ExportJob:
    """Everything an engine builder needs."""

    artifacts: Artifacts
    onnx: Path
    inputs: np.ndarray
    reference: np.ndarray
    status: Status = field(default=lambda _msg: None)
    trt: TrtBuildOptions = field(default_factory=TrtBuildOptions)  # TensorRT build options (profile, ...)


def _build_ort(job: ExportJob, precision: str) -> dict:
    if precision == "fp32":
        optimized = job.artifacts.path("fp32/model.ort-optimized.onnx")
        info = engines.ort_optimized(job.onnx, optimized)
        return {**info, "files": [job.onnx, optimized]}  # the runtime loads the first file
    return engines.ort_fp16(job.onnx, job.artifacts.path("fp16/model.onnx"))


def _build_openvino(job: ExportJob, precision: str) -> dict:
    return engines.openvino_ir(job.onnx, job.artifacts.path(f"{precision}/openvino/model.xml"), precision)


def _build_trt(job: ExportJob, precision: str) -> dict:
    """A TensorRT plan (+ engine manifest); FP16 on TensorRT >= 11 builds from an FP16 ONNX (strong typing)."""
    import tensorrt as trt

    from ..runtimes.tensorrt_config import parse_version
    from ..runtimes.tensorrt_rt import build_for_artifacts
    if precision == "fp16" and parse_version(trt.__version__)[0] >= 11 \
            and not job.artifacts.path("fp16/model.onnx").is_file():
        engines.ort_fp16(job.onnx, job.artifacts.path("fp16/model.onnx"))
    return build_for_artifacts(job.artifacts, job.onnx, precision, job.trt, job.inputs, job.status)


# runtime name -> builder(job, precision) returning {"files": [engine file first, ...], ...}
ENGINE_BUILDERS: dict[str, Callable[[ExportJob, str], dict]] = {
    "ort": _build_ort,
    "openvino": _build_openvino,
    "trt": _build_trt,
}
EXPORT_PRECISIONS = ("fp32", "fp16")


def engine_key(onnx_sha256: str, runtime: str, version: str | None, precision: str,
               trt: TrtBuildOptions, devices: list[str] | None = None, qdq_key: str | None = None) -> str:
    """The content key of one engine; a TensorRT plan's also covers its build options, GPU and,
    for INT8, the Q/DQ ONNX it is built from (``qdq_key``: that entry's key)."""
    fields: dict = {"onnx": onnx_sha256, "runtime": runtime, "version": version, "precision": precision,
                    "format": EXPORT_FORMAT}
    if runtime == "trt":
        fields["trt"] = {**trt.key(precision), "devices": devices or [], "qdq": qdq_key}
    return sha256_json(fields)


def verify_batches(runtime: str, trt: TrtBuildOptions, samples: int) -> tuple[int, int]:
    """(full, small) batch sizes an engine is verified at: ``samples`` and 1, clamped into a plan's profile."""
    if runtime != "trt":
        return samples, 1
    lo, _opt, hi = profile_batches(trt.batches)
    return min(max(samples, lo), hi), lo


def verification_inputs(preprocess: Preprocess, data: Path | None,
                        count: int = VERIFY_SAMPLES) -> tuple[np.ndarray, dict]:
    """Photos from ``data`` preprocessed with ``preprocess`` when given, else seeded random input."""
    if data is None:
        rng = np.random.default_rng(0)
        return rng.standard_normal((count, *preprocess.input_shape), dtype=np.float32), {"source": "random", "seed": 0}
    from ..calibration import open_dataset
    from ..calibration.loader import load_samples
    dataset = open_dataset(data)
    loaded = load_samples(dataset.samples[:count * 2], preprocess)
    if len(loaded.inputs) == 0:
        raise UsageError(f"no readable images in {data} to verify the export with")
    return loaded.inputs[:count], {"source": "images", "folder": str(Path(data).resolve()),
                                   "files": [s.path.name for s in loaded.samples[:count]]}


def export_model(name: str, runtimes: tuple[str, ...] = ("ort", "openvino"), precision: str = "fp32",
                 weights: str = "auto", weights_dir: str | None = None, out: Path = Path("artifacts"),
                 data: Path | None = None, opset: int = 17, status: Status = lambda _msg: None,
                 trt: TrtBuildOptions | None = None) -> Artifacts:
    """Export ``name`` for ``runtimes`` at ``precision``; return the updated artifact folder.

    ``trt`` holds the TensorRT build options (profile batches, workspace, ...); default: batch 1.
    """
    import torch

    from ..models import get_spec, load_model, measure_complexity

    if precision not in EXPORT_PRECISIONS and not (precision == "int8" and set(runtimes) == {"trt"}):
        raise UsageError(f"export precision must be one of {', '.join(EXPORT_PRECISIONS)} (int8 goes through "
                         "`edgebench calibrate`; a TensorRT INT8 plan is built from its Q/DQ ONNX)")
    trt = trt or TrtBuildOptions()
    spec = get_spec(name)
    runtimes = tuple(dict.fromkeys(canonical(r) for r in runtimes))
    for rt in runtimes:
        if rt != "torch" and rt not in ENGINE_BUILDERS:
            raise UsageError(f"no export path for runtime {rt}")
        if rt in spec.unsupported:
            raise UsageError(f"{spec.name} cannot run on {rt}: {spec.unsupported[rt]}")
        require(rt)
    root = ensure_writable(Path(out) / spec.name)
    artifacts = Artifacts.open(root)

    status(f"loading {spec.name} ({weights} weights)")
    model, winfo = load_model(spec, weights, weights_dir)
    onnx_key = sha256_json({"spec": spec.to_dict(), "weights": winfo.sha256 or winfo.ref,
                            "preprocess": winfo.preprocess.to_dict(), "opset": opset,
                            "format": EXPORT_FORMAT, "torch": torch.__version__})
    manifest = artifacts.manifest
    onnx_path = artifacts.path(ONNX_FILE)
    reuse_onnx = manifest.get("key") == onnx_key and artifacts.file_intact(ONNX_FILE)
    if not reuse_onnx:  # a new model, new weights or new preprocessing: every engine is stale
        manifest.update({"key": onnx_key, "files": {}, "engines": {}, "verification": {}})
    complexity = measure_complexity(model, spec.input_shape)
    manifest.update({
        "model": spec.to_dict(),
        "complexity": {"params": complexity.params, "gmacs": round(complexity.gmacs, 4)},
        "weights": winfo.to_dict(),
        "input": {"name": "input", "shape": ["batch", *spec.input_shape], "dtype": "float32", "layout": "NCHW"},
        "preprocess": winfo.preprocess.to_dict(),  # the loaded weights' own (see weights.preprocess_source)
        "versions": {**{k: v for k, v in provenance.package_versions().items() if v}, "edgebench": provenance.edgebench_info()},
    })

    job: ExportJob | None = None

    def prepared_job() -> ExportJob:
        nonlocal job
        if job is None:
            status("computing the PyTorch reference")
            # a random network is only well-conditioned on the noise its BatchNorm was calibrated on
            # (random EfficientNet-B3 logits reach 1e4 on photos, and float rounding then decides
            # the comparison): photos verify trained weights
            photos = data if winfo.trained else None
            inputs, source = verification_inputs(winfo.preprocess, photos)
            if data is not None and photos is None:
                source["why"] = "random weights: verified on the seeded noise their BatchNorm was calibrated on"
            with torch.no_grad():
                reference = model(torch.from_numpy(inputs)).numpy()
            manifest["verification"]["inputs"] = source
            job = ExportJob(artifacts, onnx_path, inputs, reference, status, trt)
        return job

    if not reuse_onnx:
        status(f"exporting {spec.name} to ONNX (opset {opset})")
        onnx_path.parent.mkdir(parents=True, exist_ok=True)
        manifest["export"] = export_onnx(model, spec.input_shape, onnx_path, opset)
        artifacts.record_file(onnx_path)
        status("verifying the ONNX model on ONNX Runtime")
        manifest["verification"]["onnx"] = _verify(prepared_job(), "ort", onnx_path, "fp32", f"{spec.name} ONNX on ONNX Runtime")
        artifacts.save()

    _build_engines(artifacts, runtimes, precision, prepared_job, status, trt)
    artifacts.save()
    return artifacts


def _build_engines(artifacts: Artifacts, runtimes: tuple[str, ...], precision: str,
                   prepared_job: Callable[[], ExportJob], status: Status, trt: TrtBuildOptions) -> None:
    """Build (or reuse, by content key) one verified engine per runtime."""
    manifest = artifacts.manifest
    for rt in runtimes:
        if rt == "torch":
            continue
        available = runtime_class(rt).availability()
        version = available.version
        qdq_key = (manifest["engines"].get("qdq/int8") or {}).get("key") if precision == "int8" else None
        key = engine_key(manifest["files"][ONNX_FILE]["sha256"], rt, version, precision, trt, available.devices,
                         qdq_key)
        if artifacts.engine_current(rt, precision, key):
            status(f"{rt} {precision} engine is up to date")
            continue
        status(f"building the {rt} {precision} engine")
        built = ENGINE_BUILDERS[rt](prepared_job(), precision)
        files = [artifacts.record_file(p) for p in built.pop("files")]
        status(f"verifying the {rt} {precision} engine")
        job = prepared_job()
        figures = _verify(job, rt, artifacts.path(files[0]), precision,
                          f"{manifest['model']['name']} {rt} {precision} engine",
                          verify_batches(rt, trt, len(job.inputs)))
        manifest["engines"][f"{rt}/{precision}"] = {"key": key, "files": files, "runtime_version": version,
                                                    "precision": precision, "build": built}
        manifest["verification"][f"{rt}/{precision}"] = figures
        artifacts.save()


def import_onnx(onnx_file: Path, runtimes: tuple[str, ...], precision: str = "fp32", out: Path = Path("artifacts"),
                data: Path | None = None, status: Status = lambda _msg: None,
                trt: TrtBuildOptions | None = None) -> Artifacts:
    """Take a user's ONNX classifier (NCHW float input) through the same engine builds.

    Engines are verified against ONNX Runtime running the original file.
    """
    import shutil

    from ..hashing import sha256_file
    from ..models.registry import preprocess_for
    from .onnx_export import check_onnx, onnx_input_shape, opset_of

    trt = trt or TrtBuildOptions()
    graph = check_onnx(Path(onnx_file))
    shape = onnx_input_shape(graph)
    if len(shape) != 4 or not all(isinstance(d, int) and d > 0 for d in shape[1:]):
        raise UsageError(f"{onnx_file} must take one NCHW input with static C, H, W (it takes {shape})")
    name = Path(onnx_file).stem
    root = ensure_writable(Path(out) / name)
    artifacts = Artifacts.open(root)
    digest = sha256_file(onnx_file)
    manifest = artifacts.manifest
    if manifest.get("key") != digest or not artifacts.file_intact(ONNX_FILE):
        manifest.update({"key": digest, "files": {}, "engines": {}, "verification": {}})
        artifacts.path(ONNX_FILE).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(onnx_file, artifacts.path(ONNX_FILE))
        artifacts.record_file(artifacts.path(ONNX_FILE))
    batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
    preprocess = preprocess_for(shape[2])
    manifest.update({
        "model": {"name": name, "family": "imported", "description": f"imported from {onnx_file}",
                  "input_shape": shape[1:], "preprocess": preprocess.to_dict()},
        "weights": {"source": "onnx-file", "ref": str(Path(onnx_file).resolve()), "sha256": digest, "trained": None},
        "input": {"name": graph.graph.input[0].name, "shape": [batch or "batch", *shape[1:]], "dtype": "float32",
                  "layout": "NCHW"},
        "preprocess": preprocess.to_dict(),
        "export": {"exporter": "imported", "opset": opset_of(graph), "nodes": len(graph.graph.node),
                   "dynamic_batch": batch is None},
        "versions": {**{k: v for k, v in provenance.package_versions().items() if v},
                     "edgebench": provenance.edgebench_info()},
    })

    def prepared_job() -> ExportJob:
        inputs, source = verification_inputs(preprocess, data, batch or VERIFY_SAMPLES)
        with runtime_class("ort")(artifacts.path(ONNX_FILE), RuntimeOptions(batches=(len(inputs),))) as ref:
            reference = ref.infer(inputs)
        manifest["verification"]["inputs"] = {**source, "reference": "onnxruntime on the original file"}
        return ExportJob(artifacts, artifacts.path(ONNX_FILE), inputs, reference, status, trt)

    _build_engines(artifacts, runtimes, precision, functools.cache(prepared_job), status, trt)
    artifacts.save()
    return artifacts


def _verify(job: ExportJob, runtime: str, engine: Path, precision: str, what: str,
            batches: tuple[int, int] | None = None) -> dict:
    """Run the engine at two batch sizes (default N and 1: dynamic batch) and compare with PyTorch.

    A batch larger than the verification set repeats its images (a TensorRT profile may start above N).
    """
    full_n, small_n = batches or (len(job.inputs), 1)
    inputs, reference = (np.resize(a, (full_n, *a.shape[1:])) for a in (job.inputs, job.reference))
    cls = runtime_class(runtime)
    options = RuntimeOptions(precision=precision, threads=os.cpu_count(), batches=(small_n, full_n))
    try:
        with cls(engine, options) as rt:
            full = rt.infer(inputs)
            single = rt.infer(inputs[:small_n])
            effective = rt.effective_precision()
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - runtime load/infer failures are export failures
        raise ExportError(f"{what} failed to run: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from None
    figures = agreement(reference, full)
    batch1 = agreement(reference[:small_n], single)
    checked = check(figures, effective if precision == "fp16" else precision, what)
    check(batch1, effective if precision == "fp16" else precision, f"{what} at batch {small_n}")
    return {**checked, "batch1": batch1, "effective_precision": effective}
