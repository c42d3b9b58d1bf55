"""Export one registry model (or import an ONNX file): torch -> ONNX -> per-runtime engines, verified.

Every engine is a :class:`~edgebench.build.artifacts.Step` keyed by content hashes
(:mod:`edgebench.build.keys`): re-running with the same model, weights, opset and tool
versions reuses the files; anything changed rebuilds. Each backend builds its own
engine (``Runtime.build_engine``); this module only hands it the inputs and verifies.
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

from edgebench.backends import EngineRequest, RuntimeOptions, Status, canonical, require, runtime_class
from edgebench.build.artifacts import Artifacts, Step, ensure_writable
from edgebench.build.fp16 import fp16_onnx
from edgebench.build.keys import engine_key, onnx_key
from edgebench.build.onnx_check import check_onnx, opset_of
from edgebench.build.verify import agreement, check
from edgebench.portable import host as provenance
from edgebench.portable.errors import ExportError, UsageError, one_line
from edgebench.portable.tensorrt.rules import profile_batches

if TYPE_CHECKING:
    from edgebench.portable.preprocess import Preprocess

log = logging.getLogger(__name__)

VERIFY_SAMPLES = 8
ONNX_FILE = "fp32/model.onnx"
FP16_ONNX = "fp16/model.onnx"
EXPORT_PRECISIONS = ("fp32", "fp16")



@dataclass
class ExportJob:
    """The PyTorch (or ONNX Runtime) reference every engine is verified against."""

    inputs: np.ndarray
    reference: np.ndarray
    status: Status = field(default=lambda _msg: None)


def verify_batches(options: object, samples: int) -> tuple[int, int]:
    """(full, small) batch sizes an engine is verified at: ``samples`` and 1, clamped into the profile
    of a backend whose build options fix the batches (a TensorRT plan's)."""
    batches = getattr(options, "batches", None)
    if not batches:
        return samples, 1
    lo, _opt, hi = profile_batches(batches)
    return min(max(samples, lo), hi), lo


def verification_inputs(preprocess: Preprocess, data: Path | None,
                        count: int = VERIFY_SAMPLES) -> tuple[np.ndarray, dict]:
    """Photos from ``data`` preprocessed with ``preprocess`` when given, else seeded random input."""
    if data is None:
        rng = np.random.default_rng(0)
        return rng.standard_normal((count, *preprocess.input_shape), dtype=np.float32), {"source": "random", "seed": 0}
    from edgebench.data import open_dataset
    from edgebench.data.loader import load_samples

    dataset = open_dataset(data)
    loaded = load_samples(dataset.samples[:count * 2], preprocess)
    if len(loaded.inputs) == 0:
        raise UsageError(f"no readable images in {data} to verify the export with")
    if loaded.skipped:
        log.warning("%d of %d verification images unreadable, skipped, e.g. %s", len(loaded.skipped),
                    len(loaded.skipped) + len(loaded.samples), loaded.skipped[0])
    return loaded.inputs[:count], {"source": "images", "folder": str(Path(data).resolve()),
                                   "files": [s.path.name for s in loaded.samples[:count]]}


BuildOptions = dict[str, object]  # runtime name -> that backend's build options (e.g. TrtBuildOptions)


def export_model(name: str, runtimes: tuple[str, ...] = ("ort", "openvino"), precision: str = "fp32",
                 weights: str = "auto", weights_dir: str | None = None, out: Path = Path("artifacts"),
                 data: Path | None = None, opset: int = 17, status: Status = lambda _msg: None,
                 build_options: BuildOptions | None = None) -> Artifacts:
    """Export ``name`` for ``runtimes`` at ``precision``; return the updated artifact folder.

    ``build_options``: each backend's build options (TensorRT: profile batches, workspace, ...).
    """
    import torch

    from edgebench.build.onnx_export import export_onnx  # torch: an ONNX file's path never needs it
    from edgebench.models import get_spec, measure_complexity
    from edgebench.models.weights import build_model, load_model, weights_info

    int8_plans = precision == "int8" and all(runtime_class(r).int8_model == "qdq" for r in runtimes)
    if precision not in EXPORT_PRECISIONS and not int8_plans:
        raise UsageError(f"export precision must be one of {', '.join(EXPORT_PRECISIONS)} (int8 goes through "
                         "`edgebench calibrate`; a TensorRT INT8 plan is built from its Q/DQ ONNX)")
    spec = get_spec(name)
    runtimes = tuple(dict.fromkeys(canonical(r) for r in runtimes))
    for rt in runtimes:
        if rt in spec.unsupported:
            raise UsageError(f"{spec.name} cannot run on {rt}: {spec.unsupported[rt]}")
        require(rt)
    root = ensure_writable(Path(out) / spec.name)
    artifacts = Artifacts.open(root)

    winfo = weights_info(spec, weights, weights_dir)
    loaded = None
    if winfo is None:  # pretrained: known only once downloaded and loaded
        status(f"loading {spec.name} ({weights} weights)")
        loaded, winfo = load_model(spec, weights, weights_dir)

    @functools.cache
    def model() -> torch.nn.Module:
        """Built only when something is not reusable: building, randomizing (BatchNorm recalibration) and
        counting a model costs seconds to minutes, a manifest reused by its content key nothing."""
        if loaded is not None:
            return loaded
        status(f"loading {spec.name} ({weights} weights)")
        return build_model(spec, winfo)

    key = onnx_key(spec.to_dict(), winfo.sha256 or winfo.ref, winfo.preprocess.to_dict(), opset, torch.__version__)
    manifest = artifacts.manifest
    onnx_path = artifacts.path(ONNX_FILE)
    reuse_onnx = manifest.get("key") == key and artifacts.file_intact(ONNX_FILE)
    if not reuse_onnx:  # a new model, new weights or new preprocessing: every engine is stale
        manifest.update({"key": key, "files": {}, "engines": {}, "verification": {}})
    if not (reuse_onnx and manifest.get("complexity")):  # the key covers the architecture it counts
        complexity = measure_complexity(model(), spec.input_shape)
        manifest["complexity"] = {"params": complexity.params, "gmacs": round(complexity.gmacs, 4)}
    manifest.update({
        "model": spec.to_dict(),
        "weights": winfo.to_dict(),
        "input": {"name": "input", "shape": ["batch", *spec.input_shape], "dtype": "float32", "layout": "NCHW"},
        "preprocess": winfo.preprocess.to_dict(),  # the loaded weights' own (see weights.preprocess_source)
        "versions": _versions(),
    })

    @functools.cache
    def prepared_job() -> ExportJob:
        status("computing the PyTorch reference")
        # a random network is only well-conditioned on the noise its BatchNorm was calibrated on
        # (random EfficientNet-B3 logits reach 1e4 on photos, and float rounding then decides
        # the comparison): photos verify trained weights
        photos = data if winfo.trained else None
        inputs, source = verification_inputs(winfo.preprocess, photos)
        if data is not None and photos is None:
            source["why"] = "random weights: verified on the seeded noise their BatchNorm was calibrated on"
        with torch.no_grad():
            reference = model()(torch.from_numpy(inputs)).numpy()
        manifest["verification"]["inputs"] = source
        return ExportJob(inputs, reference, status)

    if not reuse_onnx:
        status(f"exporting {spec.name} to ONNX (opset {opset})")
        onnx_path.parent.mkdir(parents=True, exist_ok=True)
        manifest["export"] = export_onnx(model(), spec.input_shape, onnx_path, opset)
        artifacts.record_file(onnx_path)
        status("verifying the ONNX model on ONNX Runtime")
        manifest["verification"]["onnx"] = _verify(prepared_job(), "ort", onnx_path, "fp32",
                                                   f"{spec.name} ONNX on ONNX Runtime")
        artifacts.save()

    build_engines(artifacts, runtimes, precision, prepared_job, status, build_options or {})
    artifacts.save()
    return artifacts


def _versions() -> dict:
    return {**{k: v for k, v in provenance.package_versions().items() if v}, "edgebench": provenance.edgebench_info()}


def source_steps(artifacts: Artifacts) -> dict[str, Callable[[], Step]]:
    """The models besides the FP32 ONNX that engines are built from, by the name backends ask for.

    ``qdq`` is made by the INT8 calibration (:mod:`edgebench.quantize`) and only looked up here."""
    onnx_sha = artifacts.manifest["files"][ONNX_FILE]["sha256"]
    return {"fp16": lambda: Step("onnx/fp16", engine_key(onnx_sha, "onnx", None, "fp16"),
                                 lambda: fp16_onnx(artifacts.path(ONNX_FILE), artifacts.path(FP16_ONNX)),
                                 precision="fp16")}


def _sources(artifacts: Artifacts, names: tuple[str, ...], status: Status) -> dict[str, tuple[Path, str]]:
    """(path, content key) of each source model an engine is built from."""
    steps = source_steps(artifacts)
    found = {}
    for name in names:
        if name == "qdq":
            entry = artifacts.engine_entry("qdq", "int8")
            if not entry or not all(artifacts.file_intact(f) for f in entry["files"]):
                raise UsageError(f"no intact INT8 Q/DQ ONNX in {artifacts.root}: run with --precision int8 --data DIR")
        else:
            entry = artifacts.ensure(steps[name](), status)
        found[name] = (artifacts.path(entry["files"][0]), entry["key"])
    return found


def build_engines(artifacts: Artifacts, runtimes: tuple[str, ...], precision: str,
                  prepared_job: Callable[[], ExportJob], status: Status, build_options: BuildOptions) -> None:
    """Build (or reuse, by content key) one verified engine per runtime, each a :class:`Step`."""
    manifest = artifacts.manifest
    for rt in runtimes:
        cls = runtime_class(rt)
        if not cls.builds_engine:
            continue
        available = cls.availability()
        options = build_options.get(rt)
        sources = _sources(artifacts, cls.engine_sources(precision, options), status)
        name = f"{manifest['model']['name']} {rt} {precision} engine"
        request = EngineRequest(artifacts.path(ONNX_FILE), artifacts.root, precision,
                                tuple(manifest["input"]["shape"][1:]), options,
                                sources={k: path for k, (path, _key) in sources.items()}, status=status,
                                manifest=manifest)

        def build(cls=cls, request=request) -> dict:
            request.inputs = prepared_job().inputs
            return cls.build_engine(request)

        def verify(files: list[str], rt=rt, options=options, name=name) -> dict:
            job = prepared_job()
            status(f"verifying the {name}")
            return _verify(job, rt, artifacts.path(files[0]), precision, name,
                           verify_batches(options, len(job.inputs)))

        key = engine_key(manifest["files"][ONNX_FILE]["sha256"], rt, available.version, precision,
                         options if cls.build_options_class else None, available.devices,
                         {k: key for k, (_path, key) in sources.items()}, cls.build_format)
        artifacts.ensure(Step(f"{rt}/{precision}", key, build, verify, precision, available.version), status)


def import_onnx(onnx_file: Path, runtimes: tuple[str, ...], precision: str = "fp32", out: Path = Path("artifacts"),
                data: Path | None = None, status: Status = lambda _msg: None,
                build_options: BuildOptions | None = None) -> Artifacts:
    """Take a user's ONNX classifier (NCHW float input) through the same engine builds.

    Engines are verified against ONNX Runtime running the original file.
    """
    import shutil

    from edgebench.build.onnx_check import check_classifier, check_output_rank, graph_inputs
    from edgebench.portable.hashing import sha256_file
    from edgebench.portable.preprocess import preprocess_for

    graph = check_onnx(Path(onnx_file))
    shape = check_classifier(graph, Path(onnx_file), tuple(canonical(r) for r in runtimes))
    name = Path(onnx_file).stem
    root = ensure_writable(Path(out) / name)
    artifacts = Artifacts.open(root)
    digest = sha256_file(onnx_file)
    manifest = artifacts.manifest
    if manifest.get("key") != digest or not artifacts.file_intact(ONNX_FILE):
        manifest.update({"key": digest, "files": {}, "engines": {}, "verification": {}})
        target = artifacts.path(ONNX_FILE)
        partial = target.with_name(f".{target.name}.partial")  # renamed when whole, as the export's
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(onnx_file, partial)
            partial.replace(target)
        except OSError as exc:
            raise UsageError(f"cannot copy {onnx_file} into {root}: {exc.strerror or exc}") from None
        finally:
            partial.unlink(missing_ok=True)
        artifacts.record_file(target)
    batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
    preprocess = preprocess_for(shape[2])
    manifest.update({
        "model": {"name": name, "family": "imported", "description": f"imported from {onnx_file}",
                  "input_shape": shape[1:], "preprocess": preprocess.to_dict()},
        "weights": {"source": "onnx-file", "ref": str(Path(onnx_file).resolve()), "sha256": digest, "trained": None},
        "input": {"name": graph_inputs(graph)[0].name, "shape": [batch or "batch", *shape[1:]], "dtype": "float32",
                  "layout": "NCHW"},
        "preprocess": preprocess.to_dict(),
        "export": {"exporter": "imported", "opset": opset_of(graph), "nodes": len(graph.graph.node),
                   "dynamic_batch": batch is None},
        "versions": _versions(),
    })

    @functools.cache
    def prepared_job() -> ExportJob:
        inputs, source = verification_inputs(preprocess, data, batch or VERIFY_SAMPLES)
        with runtime_class("ort")(artifacts.path(ONNX_FILE), RuntimeOptions(batches=(len(inputs),))) as ref:
            reference = ref.infer(inputs)
        check_output_rank(Path(onnx_file), reference.shape)
        manifest["verification"]["inputs"] = {**source, "reference": "onnxruntime on the original file"}
        return ExportJob(inputs, reference, status)

    build_engines(artifacts, runtimes, precision, prepared_job, status, build_options or {})
    artifacts.save()
    return artifacts


def _verify(job: ExportJob, runtime: str, engine: Path, precision: str, what: str,
            batches: tuple[int, int] | None = None) -> dict:
    """Run the engine at two batch sizes (default N and 1: dynamic batch) and compare with the reference.

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
        raise ExportError(f"{what} failed to run: {one_line(exc, with_type=True)}") from None
    figures = agreement(reference, full)
    batch1 = agreement(reference[:small_n], single)
    checked = check(figures, effective if precision == "fp16" else precision, what)
    check(batch1, effective if precision == "fp16" else precision, f"{what} at batch {small_n}")
    return {**checked, "batch1": batch1, "effective_precision": effective}
