"""A self-contained deployment archive for one model at one precision.

Contents (flat): ``bundle.json`` (model, precision, input, file roles, edgebench version),
the ONNX (``model.onnx``; ``model.qdq.onnx`` for INT8; ``model.fp16.onnx`` for FP16, which
TensorRT 11's strong typing needs), ``preprocess.json``, ``labels.csv`` and a few sample
``images/`` when ``--data`` is given, the runner (``runner.py`` and the library's ``portable/`` package
as it is), and ``SHA256SUMS`` (sha256sum format) over every other file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from pathlib import Path

from edgebench import portable
from edgebench.backends.onnxruntime import build as engines
from edgebench.backends.tensorrt.qdq import qdq_summary
from edgebench.data import open_dataset
from edgebench.portable import host as provenance
from edgebench.portable.errors import UsageError
from edgebench.portable.hashing import CHECKSUMS, sha256_file, sha256_json

SAMPLE_IMAGES = 8
_PORTABLE = Path(portable.__file__).resolve().parent


def runner_files() -> dict[str, Path]:
    """The runner script and the portable package it imports, by name inside the bundle."""
    files = {"runner.py": Path(__file__).with_name("runner.py")}
    for path in sorted(_PORTABLE.rglob("*.py")):
        files[f"portable/{path.relative_to(_PORTABLE).as_posix()}"] = path
    return files


def bundle_files(artifacts, precision: str, data: Path | None) -> tuple[dict[str, Path], dict, dict]:
    """(archive name -> source file, file roles, extra bytes files) for ``artifacts`` at ``precision``."""
    manifest = artifacts.manifest
    onnx = artifacts.path("fp32/model.onnx")
    files: dict[str, Path] = {"model.onnx": onnx}
    roles = {"onnx": "model.onnx"}
    if precision == "int8":
        entry = artifacts.engine_entry("qdq", "int8")
        if not entry or not artifacts.file_intact(entry["files"][0]):
            raise UsageError(f"no INT8 Q/DQ ONNX in {artifacts.root} (manifest has no qdq/int8 entry): run "
                             "`edgebench export MODEL --precision int8 --data DIR` first")
        qdq = artifacts.path(entry["files"][0])
        summary = qdq_summary(qdq)  # a valid Q/DQ model, or UsageError
        if not summary["tensorrt_ready"]:
            raise UsageError(f"{entry['files'][0]} is not a Q/DQ ONNX TensorRT takes ({'; '.join(summary['problems'])}); "
                             "rebuild it: `edgebench export MODEL --runtime trt --precision int8 --data DIR`")
        files["model.qdq.onnx"] = qdq
        roles["qdq_onnx"] = "model.qdq.onnx"
    if precision == "fp16":
        fp16 = artifacts.path("fp16/model.onnx")
        if not fp16.is_file():
            engines.ort_fp16(onnx, fp16)
        files["model.fp16.onnx"] = fp16
        roles["fp16_onnx"] = "model.fp16.onnx"
    if data is not None:
        dataset = open_dataset(Path(data))
        for sample in dataset.samples[:SAMPLE_IMAGES]:
            files[f"images/{sample.path.name}"] = sample.path
        if (Path(data) / "labels.csv").is_file():
            files["labels.csv"] = Path(data) / "labels.csv"
            roles["labels"] = "labels.csv"
    files.update(runner_files())
    roles["runner"] = "runner.py"
    return files, roles, manifest


def write_bundle(artifacts, precision: str, out: Path, data: Path | None = None) -> dict:
    """Write the archive atomically; return bundle.json's content (with the archive's sha256)."""
    files, roles, manifest = bundle_files(artifacts, precision, data)
    meta = {
        "schema": "edgebench.bundle/1",
        "model": {"name": manifest["model"]["name"], "family": manifest["model"].get("family"),
                  **manifest.get("complexity", {})},
        "weights": manifest.get("weights"),
        "precision": precision,
        "input_name": manifest["input"]["name"],
        "input_shape": manifest["input"]["shape"][1:],
        "files": roles,
        "edgebench": provenance.edgebench_info(),
        "source_manifest": {"onnx_sha256": manifest["files"]["fp32/model.onnx"]["sha256"],
                            "engines": sorted(manifest.get("engines", {}))},
        "supported": {"jetpack7.2.2+": "TensorRT 11.x on AGX Orin and Thor (strongly typed: Q/DQ INT8, FP16 ONNX)",
                      "jetpack6": "TensorRT 10.3 (6.1/6.2) or 8.6 (6.0): explicit Q/DQ INT8 with FP16, FP16 flag; "
                                  "Orin on JetPack 6 stays on TensorRT 10.x",
                      "jetpack5": "TensorRT 8.5 (Q/DQ INT8; runner --legacy-calibrator: deprecated implicit INT8)",
                      "fallback": "onnxruntime CPU (runner --fallback ort)"},
    }
    generated = {"bundle.json": None, "preprocess.json": json.dumps(manifest["preprocess"], indent=2).encode()}
    meta["bundle_id"] = sha256_json({n: sha256_file(p) for n, p in files.items()} | {"precision": precision})[:16]
    generated["bundle.json"] = json.dumps(meta, indent=2, sort_keys=True).encode()
    sums = [f"{sha256_file(path)}  {name}" for name, path in sorted(files.items())]
    sums += [f"{hashlib.sha256(blob).hexdigest()}  {name}" for name, blob in sorted(generated.items())]
    generated[CHECKSUMS] = ("\n".join(sorted(sums, key=lambda s: s.split("  ", 1)[1])) + "\n").encode()

    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"cannot write {out} ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name, path in sorted(files.items()):
                tar.add(str(path), arcname=name, recursive=False, filter=_normalise)
            for name, blob in generated.items():
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(blob), 0o644
                tar.addfile(info, io.BytesIO(blob))
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    meta["archive_sha256"] = sha256_file(out)
    meta["archive_bytes"] = out.stat().st_size
    meta["checksummed_files"] = len(sums)
    return meta


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755 if info.name.endswith("runner.py") else 0o644
    return info


def extract_bundle(archive: Path, dest: Path) -> Path:
    """Extract safely (no absolute paths, no '..', no links) — used by tests and local runs."""
    dest = Path(dest)
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile() or member.name.startswith("/") or ".." in Path(member.name).parts:
                raise UsageError(f"{archive} holds an unsafe entry {member.name!r}")
        tar.extractall(dest)
    return dest
