"""INT8: real quantization on real weights and photos, accuracy from the real engines, bad inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import assert_one_line_error, edgebench
from edgebench.calibration import open_dataset, read_rgb
from edgebench.calibration.images import UnreadableImage
from edgebench.calibration.loader import load_samples
from edgebench.calibration.preprocess import preprocess
from edgebench.calibration.split import split_dataset
from edgebench.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent
N_PHOTOS = 40


# ---------------------------------------------------------------- decoding and datasets (no weights needed)

def _photo(h: int = 120, w: int = 160) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    img[:, :, 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    img[:, :, 2] = rng.integers(0, 255, (h, w), dtype=np.uint8)
    return img


def test_decoding_variants(tmp_path):
    from PIL import Image
    rgb = _photo()
    Image.fromarray(rgb).save(tmp_path / "rgb.jpg", quality=95)
    Image.fromarray(rgb).convert("L").save(tmp_path / "gray.jpg", quality=95)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    Image.fromarray(rgba[:, :, [0, 3]][:, :, :2], "LA").save(tmp_path / "gray_alpha.png")
    # EXIF orientation 6 (rotate 90° clockwise to display)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb).save(tmp_path / "rotated.jpg", quality=95, exif=exif)
    for name in ("rgb.jpg", "gray.jpg", "cmyk.jpg", "alpha.png", "gray_alpha.png"):
        img = read_rgb(tmp_path / name)
        assert img.shape == (120, 160, 3) and img.dtype == np.uint8, name
    assert np.abs(read_rgb(tmp_path / "cmyk.jpg").astype(int) - rgb).mean() < 12
    gray = read_rgb(tmp_path / "gray.jpg")
    assert (gray[:, :, 0] == gray[:, :, 1]).all()
    # alpha 128 over white: composited, not dropped
    ref = np.asarray(Image.alpha_composite(Image.new("RGBA", (160, 120), "white"),
                                           Image.fromarray(rgba, "RGBA")).convert("RGB"))
    assert np.abs(read_rgb(tmp_path / "alpha.png").astype(int) - ref).max() <= 2
    assert read_rgb(tmp_path / "rotated.jpg").shape == (160, 120, 3)  # EXIF applied


def test_truncated_and_corrupt_are_skipped(tmp_path):
    rgb = _photo()
    ok, data = cv2.imencode(".jpg", rgb)
    (tmp_path / "good.jpg").write_bytes(data.tobytes())
    (tmp_path / "truncated.jpg").write_bytes(data.tobytes()[: len(data) // 2])
    (tmp_path / "garbage.jpg").write_bytes(b"not an image at all")
    (tmp_path / "empty.png").write_bytes(b"")
    ok, png = cv2.imencode(".png", rgb)
    (tmp_path / "truncated.png").write_bytes(png.tobytes()[: len(png) // 2])
    for bad in ("truncated.jpg", "garbage.jpg", "empty.png", "truncated.png"):
        with pytest.raises(UnreadableImage):
            read_rgb(tmp_path / bad)
    dataset = open_dataset(tmp_path)
    assert dataset.layout == "unlabelled" and len(dataset) == 5
    from edgebench.models.registry import Preprocess
    loaded = load_samples(dataset.samples, Preprocess())
    assert len(loaded.inputs) == 1 and len(loaded.skipped) == 4


def test_dataset_layouts_and_errors(tmp_path):
    ok, data = cv2.imencode(".jpg", _photo())
    folder = tmp_path / "imagefolder"
    for wnid in ("n01440764", "n01443537"):
        (folder / wnid).mkdir(parents=True)
        for i in range(3):
            (folder / wnid / f"{i}.jpg").write_bytes(data.tobytes())
    ds = open_dataset(folder)
    assert ds.layout == "imagefolder" and sorted({s.label for s in ds.samples}) == [0, 1] and len(ds) == 6

    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(4):
        (flat / f"{i}.jpg").write_bytes(data.tobytes())
    (flat / "labels.csv").write_text("file,class_index\n0.jpg,1\n1.jpg,5000\n2.jpg,-3\n3.jpg,7\n")
    ds = open_dataset(flat)
    assert len(ds) == 2 and any("2 rows" in w for w in ds.warnings)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match="no images"):
        open_dataset(empty)
    with pytest.raises(UsageError, match="does not exist"):
        open_dataset(tmp_path / "missing")


def test_split_is_seeded_disjoint_and_small_folders_warn(tmp_path):
    ok, data = cv2.imencode(".jpg", _photo())
    for i in range(30):
        (tmp_path / f"{i:02d}.jpg").write_bytes(data.tobytes())
    ds = open_dataset(tmp_path)
    a, b = split_dataset(ds, 20, seed=1), split_dataset(ds, 20, seed=1)
    assert [s.path for s in a.calibration] == [s.path for s in b.calibration]
    assert not {s.path for s in a.calibration} & {s.path for s in a.evaluation}
    assert len(a.calibration) == 20 and len(a.evaluation) == 10 and a.info["calibration_hash"]
    assert split_dataset(ds, 20, seed=2).info["calibration_hash"] != a.info["calibration_hash"]
    small = split_dataset(ds, 300)
    assert small.evaluation and len(small.calibration) + len(small.evaluation) == 30 and small.warnings


def test_cli_bad_data_is_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = edgebench("calibrate", "squeezenet1_1", "--weights", "random", "--data", str(empty),
                     "--out", str(tmp_path / "art"), cwd=ROOT)
    assert_one_line_error(proc, "no images")
    proc = edgebench("calibrate", "squeezenet1_1", "--weights", "random", "--out", str(tmp_path / "art"),
                     cwd=ROOT, env={"EDGEBENCH_DATA": ""})
    assert_one_line_error(proc, "--data")


# ---------------------------------------------------------------- preprocessing matches timm / torchvision

@pytest.fixture(scope="module")
def photos(data_dir) -> list[Path]:
    return sorted(data_dir.glob("*.jpg"))[:N_PHOTOS]


def test_preprocessing_matches_timm_and_torchvision(photos):
    import timm
    import torch  # noqa: F401
    from PIL import Image
    from torchvision.models import SqueezeNet1_1_Weights

    from edgebench.models import get_spec
    lite = get_spec("tf_efficientnet_lite0")
    cfg = timm.data.resolve_data_config({}, model=timm.create_model("tf_efficientnet_lite0", pretrained=False))
    cfg["crop_pct"] = 0.875  # the weights README: resize 256, crop 224
    timm_tf = timm.data.create_transform(**cfg)
    tv_tf = SqueezeNet1_1_Weights.IMAGENET1K_V1.transforms()
    squeeze = get_spec("squeezenet1_1")
    diffs = {"timm": [], "torchvision": []}
    for path in photos[:12]:
        rgb = read_rgb(path)
        pil = Image.open(path).convert("RGB")
        for name, tf, spec in (("timm", timm_tf, lite), ("torchvision", tv_tf, squeeze)):
            ours = preprocess(rgb, spec.preprocess)
            ref = tf(pil).numpy()
            assert ours.shape == ref.shape
            std = np.asarray(spec.preprocess.std, np.float32)[:, None, None]
            diffs[name].append(np.abs((ours - ref) * std).mean())  # in [0,1] pixel units
    for name, d in diffs.items():
        assert np.mean(d) < 0.01, (name, np.mean(d))


# ---------------------------------------------------------------- real INT8 engines

@pytest.fixture(scope="module")
def small_data(photos, tmp_path_factory, data_dir) -> Path:
    """A labelled folder of real photos (labels.csv subset)."""
    folder = tmp_path_factory.mktemp("photos")
    names = {p.name for p in photos}
    lines = [line for line in (data_dir / "labels.csv").read_text().splitlines()[1:] if line.split(",")[0] in names]
    for p in photos:
        shutil.copy(p, folder / p.name)
    (folder / "labels.csv").write_text("file,class_index,wnid,name\n" + "\n".join(lines) + "\n")
    return folder


@pytest.mark.parametrize("model", ["squeezenet1_1", "tf_efficientnet_lite0"])
def test_int8_engines_on_real_weights(model, weights_dir, small_data, tmp_path):
    from edgebench.bench.accuracy import evaluate_model
    from edgebench.calibration.int8 import calibrate
    from edgebench.export.pipeline import export_model
    from edgebench.runtimes import RuntimeOptions, runtime_class

    art = export_model(model, ("ort", "openvino"), "fp32", "auto", str(weights_dir), tmp_path, small_data)
    assert art.manifest["weights"]["trained"] is True
    section = calibrate(art, ("ort", "openvino"), small_data, num=24, method="minmax", seed=0)
    cal = section["calibration"]
    assert cal["used"] == 24 and cal["evaluation_count"] == N_PHOTOS - 24 and cal["calibration_hash"]
    for key in ("ort/int8", "openvino/int8", "qdq/int8"):
        assert art.engine_entry(*key.split("/")), key
    # cached by content key: a second call rebuilds nothing
    before = {k: v["key"] for k, v in art.manifest["engines"].items()}
    assert calibrate(art, ("ort", "openvino"), small_data, num=24)["calibration"]["used"] == 24
    assert {k: v["key"] for k, v in art.manifest["engines"].items()} == before

    # the Q/DQ model (TensorRT's input) runs on ONNX Runtime and on OpenVINO, and both agree with FP32
    x = load_samples(open_dataset(small_data).samples[:4], art.manifest and _pre(art)).inputs
    qdq = art.engine_path("qdq", "int8")
    with runtime_class("ort")(art.engine_path("ort", "fp32"), RuntimeOptions(batches=(4,))) as rt:
        ref = rt.infer(x)
    for name in ("ort", "openvino"):
        with runtime_class(name)(qdq, RuntimeOptions(precision="int8", batches=(4,))) as rt:
            out = rt.infer(x)
        assert (out.argmax(1) == ref.argmax(1)).mean() >= 0.75, name

    for runtime in ("ort", "openvino"):
        s = evaluate_model(art, runtime, "int8", small_data, threads=2)
        assert s["images"] == N_PHOTOS - 24 and s["top1_meaningful"]
        fp32, int8 = s["engines"][f"{runtime}/fp32"], s["engines"][f"{runtime}/int8"]
        assert fp32["top1"] == s["engines"]["torch/fp32"]["top1"]
        assert fp32["top1"] > 40 and int8["top1"] > 30  # real weights on real photos
        pair = s["comparisons"][f"{runtime}/int8 vs {runtime}/fp32"]
        assert pair["top1_agreement"] >= 0.7 and pair["cosine_mean"] > 0.9
        assert pair["drop_top1_se_points"] >= 0


def _pre(art):
    from edgebench.calibration.int8 import preprocess_of
    return preprocess_of(art.manifest)


def test_random_weights_get_agreement_only(tmp_path, small_data):
    from edgebench.bench.accuracy import evaluate_model
    from edgebench.calibration.int8 import calibrate
    from edgebench.export.pipeline import export_model
    art = export_model("squeezenet1_1", ("ort",), "fp32", "random", None, tmp_path, small_data)
    calibrate(art, ("ort",), small_data, num=30)
    s = evaluate_model(art, "ort", "int8", small_data, threads=2)
    assert s["top1_meaningful"] is False and "random" in s["top1_reason"]
    assert s["engines"]["ort/int8"]["top1"] is None
    assert s["comparisons"]["ort/int8 vs ort/fp32"]["top1_agreement"] is not None
