"""Weights: local files, hub errors, random init, files that do not fit."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from edgebench.data import open_dataset
from edgebench.data.loader import load_samples
from edgebench.models import get_spec, load_model
from edgebench.portable.errors import UsageError


def _top1(model, preprocess, data_dir, n=20):
    dataset = open_dataset(data_dir)
    batch = load_samples(dataset.samples[:: len(dataset) // n][:n], preprocess)
    with torch.no_grad():
        pred = model(torch.from_numpy(batch.inputs)).argmax(1).numpy()
    return float((pred == np.array(batch.labels)).mean())


@pytest.mark.parametrize("name", ["tf_efficientnet_lite0", "mobilenet_v2", "squeezenet1_1"])
def test_real_local_weights_predict_correctly(name, weights_dir, data_dir):
    spec = get_spec(name)
    model, info = load_model(spec, "auto", weights_dir)
    assert info.source == "local" and info.trained and len(info.sha256) == 64
    accuracy = _top1(model, info.preprocess, data_dir)
    assert accuracy >= (0.5 if name == "squeezenet1_1" else 0.7), accuracy


def _index_rows(weights_dir):
    with (weights_dir / "index.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_local_weights_take_their_index_preprocessing(weights_dir):
    for row in _index_rows(weights_dir):
        _, info = load_model(get_spec(row["architecture"]), "auto", weights_dir)
        p = info.preprocess
        assert info.preprocess_source == "index.csv", row["file"]
        assert (p.input_size, p.resize, p.interpolation) == (int(row["input"]), int(row["resize"]), row["interpolation"])
        assert p.mean == pytest.approx([float(x) for x in row["mean"].split(",")])
        assert p.std == pytest.approx([float(x) for x in row["std"].split(",")])


def test_weights_file_in_an_indexed_folder_takes_its_row(weights_dir):
    spec = get_spec("tf_efficientnet_lite1")
    _, info = load_model(spec, str(weights_dir / "tf_efficientnet_lite1.safetensors"))
    assert info.source == "file" and info.preprocess_source == "index.csv" and info.preprocess.resize == 274
    assert spec.preprocess.resize == 272  # timm's tf_efficientnet_lite1.in1k config


def test_index_with_another_input_size_is_refused(weights_dir, tmp_path):
    (tmp_path / "lite1.safetensors").symlink_to(weights_dir / "tf_efficientnet_lite1.safetensors")
    (tmp_path / "index.csv").write_text("file,architecture,input,resize,interpolation,mean,std\n"
                                        'lite1.safetensors,tf_efficientnet_lite1,260,297,bicubic,"0.5,0.5,0.5","0.5,0.5,0.5"\n')
    with pytest.raises(UsageError, match="input 260 px, but tf_efficientnet_lite1 is registered at 240"):
        load_model(get_spec("tf_efficientnet_lite1"), "auto", tmp_path)


@pytest.mark.integration
def test_exported_manifest_records_the_weights_preprocessing(weights_dir, tmp_path):
    from edgebench.build.export import export_model
    local = export_model("tf_efficientnet_lite1", ("ort",), "fp32", "auto", str(weights_dir), tmp_path).manifest
    assert local["preprocess"]["resize"] == 274 and local["weights"]["preprocess_source"] == "index.csv"
    random = export_model("tf_efficientnet_lite1", ("ort",), "fp32", "random", out=tmp_path / "random").manifest
    assert random["preprocess"]["resize"] == 272 and random["weights"]["preprocess_source"] == "registry"

    # The same weights file indexed with another resize: the export key changes, everything is rebuilt.
    other = tmp_path / "other"
    other.mkdir()
    (other / "tf_efficientnet_lite1.safetensors").symlink_to(weights_dir / "tf_efficientnet_lite1.safetensors")
    rows = [r for r in _index_rows(weights_dir) if r["architecture"] == "tf_efficientnet_lite1"]
    with (other / "index.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerow({**rows[0], "resize": "280"})
    again = export_model("tf_efficientnet_lite1", ("ort",), "fp32", "auto", str(other), tmp_path).manifest
    assert again["weights"]["sha256"] == local["weights"]["sha256"]
    assert again["preprocess"]["resize"] == 280 and again["key"] != local["key"]


def test_random_weights_are_seeded_and_not_degenerate():
    spec = get_spec("mobilenet_v3_large")
    a, info = load_model(spec, "random")
    b, _ = load_model(spec, "random")
    assert info.source == "random" and not info.trained and info.sha256 is None
    x = torch.randn(2, *spec.input_shape)
    with torch.no_grad():
        ya, yb = a(x), b(x)
    assert torch.equal(ya, yb)
    assert ya.std() > 1e-3  # torchvision's init gives ~1e-9 logits before BN recalibration


def test_random_vit_head_is_not_zero():
    spec = get_spec("deit_tiny")
    model, _ = load_model(spec, "random")
    with torch.no_grad():
        assert model(torch.randn(1, *spec.input_shape)).abs().max() > 0


def test_pth_file_loads_with_weights_only(tmp_path):
    spec = get_spec("squeezenet1_1")
    source, _ = load_model(spec, "random")
    path = tmp_path / "sq.pth"
    torch.save({"state_dict": source.state_dict()}, path)
    model, info = load_model(spec, str(path))
    assert info.source == "file" and info.sha256
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), source.state_dict().values()))


def test_weights_that_do_not_fit_name_the_keys(weights_dir):
    with pytest.raises(UsageError, match=r"do not fit.*missing: .*unexpected"):
        load_model(get_spec("resnet18"), str(weights_dir / "squeezenet1_1.safetensors"))


def test_corrupt_weights_file(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(UsageError, match="cannot read weights file"):
        load_model(get_spec("resnet18"), str(bad))


def test_pretrained_download_failure_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache
    try:
        load_model(get_spec("resnet18"), "pretrained")
    except UsageError as exc:
        assert "cannot download pretrained weights for resnet18" in str(exc)
        assert "\n" not in str(exc)
    else:  # a machine with internet access downloads them
        assert (tmp_path / "hub" / "checkpoints").is_dir()


def test_unknown_weights_value():
    with pytest.raises(UsageError, match="--weights must be"):
        load_model(get_spec("resnet18"), "no-such-file.safetensors")
