"""Export: ONNX (dynamic batch, opset >= 17, checker) and engines verified against PyTorch on real runtimes."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
import tiny_onnx

from edgebench.build.artifacts import Artifacts
from edgebench.build.export import export_model, import_onnx
from edgebench.build.onnx_export import check_onnx
from edgebench.build.verify import agreement, check
from edgebench.models import list_models
from edgebench.portable.errors import UsageError

RUNTIMES = ("ort", "openvino")
SMOKE = "mobilenet_v3_small"  # `make check`'s export: depthwise, SE and hard-swish through both runtimes


def _params(specs):
    return [pytest.param(s.name, id=s.name, marks=[pytest.mark.slow] if s.slow else [pytest.mark.smoke] if
                         s.name == SMOKE else []) for s in specs if not set(RUNTIMES) & set(s.unsupported)]


@pytest.mark.integration
@pytest.mark.parametrize("name", _params(list_models()))
def test_every_registry_model_exports_and_matches_pytorch(name, artifact_cache):
    artifacts = artifact_cache.export(name, RUNTIMES)
    manifest = artifacts.manifest
    model = onnx.load(str(artifacts.path("fp32/model.onnx")), load_external_data=False)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    for key in ("onnx", "ort/fp32", "openvino/fp32"):
        figures = manifest["verification"][key]
        assert figures["passed"] and figures["rel_err"] < 1e-3 and figures["cosine_min"] > 0.9999, (key, figures)
        assert figures["samples"] == 8 and figures["batch1"]["samples"] == 1  # dynamic batch works
    assert all(artifacts.file_intact(f) for f in manifest["files"])


@pytest.mark.integration
def test_manifest_records_provenance_and_reuses(tmp_path, data_dir, weights_dir):
    first = export_model("squeezenet1_1", RUNTIMES, "fp32", "auto", str(weights_dir), tmp_path, data_dir)
    m = first.manifest
    assert m["weights"]["source"] == "local" and len(m["weights"]["sha256"]) == 64
    assert m["verification"]["inputs"]["source"] == "images"
    assert m["verification"]["openvino/fp32"]["top1_agreement"] == 1.0
    assert m["export"]["opset"] == 17 and m["versions"]["torch"] and m["versions"]["onnxruntime"]
    assert m["preprocess"]["resize"] == 256 and m["input"]["shape"] == ["batch", 3, 224, 224]
    assert {"fp32/model.onnx", "fp32/openvino/model.xml", "fp32/openvino/model.bin"} <= set(m["files"])
    ir_bin = first.path("fp32/openvino/model.bin")
    assert ir_bin.stat().st_size > 4 * 1.2e6  # weights stayed FP32 (FP16 would be half)
    stamp = {f: os.stat(first.path(f)).st_mtime_ns for f in m["files"]}

    again = export_model("squeezenet1_1", RUNTIMES, "fp32", "auto", str(weights_dir), tmp_path, data_dir)
    assert {f: os.stat(again.path(f)).st_mtime_ns for f in again.manifest["files"]} == stamp  # reused

    changed = export_model("squeezenet1_1", ("ort",), "fp32", "random", out=tmp_path)  # new weights: rebuilt
    assert changed.manifest["weights"]["source"] == "random"
    assert os.stat(changed.path("fp32/model.onnx")).st_mtime_ns != stamp["fp32/model.onnx"]


@pytest.mark.integration
def test_tampered_engine_is_rebuilt(tmp_path, artifact_cache):
    artifacts = artifact_cache.clone(artifact_cache.export("mobilenet_v3_small", ("openvino",)), tmp_path)
    xml = artifacts.path("fp32/openvino/model.xml")
    xml.write_text(xml.read_text() + "\n")
    again = export_model("mobilenet_v3_small", ("openvino",), "fp32", "random", out=tmp_path)
    assert again.file_intact("fp32/openvino/model.xml")


@pytest.mark.integration
def test_fp16_engine_records_effective_precision(artifact_cache):
    artifacts = artifact_cache.export("mobilenet_v3_small", ("openvino",), "fp16")
    entry = artifacts.engine_entry("openvino", "fp16")
    assert entry["build"]["compress_to_fp16"] is True
    assert artifacts.manifest["verification"]["openvino/fp16"]["effective_precision"] in ("fp16", "fp32", "bf16")


def test_corrupt_and_truncated_onnx(tmp_path):
    good = tiny_onnx.classifier(tmp_path / "good.onnx")
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\x01 definitely not protobuf" * 10)
    for bad in (truncated, garbage):
        with pytest.raises(UsageError, match="not a valid ONNX model"):
            check_onnx(bad)
    with pytest.raises(UsageError, match="does not exist"):
        check_onnx(tmp_path / "missing.onnx")


@pytest.mark.integration
def test_import_user_onnx(tmp_path, artifact_cache):
    source = artifact_cache.export("mobilenet_v3_small", ("ort",)).path("fp32/model.onnx")
    user = tmp_path / "my_classifier.onnx"
    user.write_bytes(source.read_bytes())
    artifacts = import_onnx(user, RUNTIMES, out=tmp_path / "b")
    assert artifacts.root.name == "my_classifier"
    assert artifacts.manifest["verification"]["openvino/fp32"]["passed"]


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="not writable"):
        export_model("mobilenet_v3_small", ("ort",), "fp32", "random", out=blocker / "sub")


def test_verification_uses_relative_error_not_only_absolute():
    import numpy as np
    ref = np.full((2, 10), 1e-9, np.float32)
    ref[:, 0] = 2e-9
    wrong = ref[:, ::-1].copy()  # tiny absolute error, completely different ranking
    figures = agreement(ref, wrong)
    assert figures["max_abs_err"] < 1e-8
    with pytest.raises(Exception, match="relative error"):
        check(figures, "fp32", "test")


def test_artifacts_engine_path_requires_export(tmp_path):
    with pytest.raises(UsageError, match="run `edgebench export` first"):
        Artifacts.open(tmp_path).engine_path("ort", "fp32")


def test_multihead_attention_exports(tmp_path):
    """nn.MultiheadAttention's inference fast path (torchvision's ViT) has no ONNX export: it is turned off."""
    import torch
    from torch import nn

    from edgebench.build.onnx_export import export_onnx

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(16, 4, batch_first=True)  # an even head count takes the fast path

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            tokens = x.flatten(2).transpose(1, 2).repeat(1, 1, 4)  # (B, 64, 16)
            return self.attn(tokens, tokens, tokens, need_weights=False)[0].mean(1)

    model = Tiny().eval()
    assert torch.backends.mha.get_fastpath_enabled()
    export_onnx(model, (4, 8, 8), tmp_path / "mha.onnx")
    assert torch.backends.mha.get_fastpath_enabled()  # restored
    import onnxruntime as ort
    x = torch.randn(2, 4, 8, 8)
    out = ort.InferenceSession(str(tmp_path / "mha.onnx")).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(out, model(x).numpy(), rtol=1e-4, atol=1e-5)
