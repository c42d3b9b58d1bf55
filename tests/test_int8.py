"""INT8: real quantization on real weights and photos, accuracy from the real engines, bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from conftest import assert_one_line_error, edgebench, edgebench_in_process

from edgebench.data import open_dataset
from edgebench.data.loader import load_samples
from edgebench.data.split import split_dataset
from edgebench.portable.errors import UsageError
from edgebench.portable.images import UnreadableImage, read_rgb
from edgebench.portable.preprocess import preprocess

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
    proc = edgebench_in_process("calibrate", "squeezenet1_1", "--weights", "random", "--data", empty,
                                "--out", tmp_path / "art", cwd=ROOT)
    assert_one_line_error(proc, "no images")
    proc = edgebench_in_process("calibrate", "squeezenet1_1", "--weights", "random", "--out", tmp_path / "art",
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


@pytest.mark.integration
@pytest.mark.parametrize("model", [pytest.param("squeezenet1_1", marks=pytest.mark.smoke), "tf_efficientnet_lite0"])
def test_int8_engines_on_real_weights(model, weights_dir, small_data, tmp_path, artifact_cache):
    from edgebench.backends import RuntimeOptions, runtime_class
    from edgebench.bench.accuracy import evaluate_model
    from edgebench.quantize.int8 import calibrate

    exported = artifact_cache.export(model, weights="auto", weights_dir=weights_dir, data=small_data)
    art = artifact_cache.clone(exported, tmp_path)  # calibrated here
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

    # shape arithmetic (timm's TF "same" padding in the Lite models) is never quantized
    shape_math = _shape_tensors(art.path("int8/ort/model.prep.onnx"))
    assert bool(shape_math) == (model == "tf_efficientnet_lite0")
    for key in ("ort", "qdq"):
        graph = onnx.load(str(art.engine_path(key, "int8"))).graph
        assert not {n.input[0] for n in graph.node if n.op_type == "QuantizeLinear"} & shape_math, key
        assert (art.engine_entry(key, "int8")["build"]["shape_nodes_not_quantized"] > 0) == bool(shape_math)

    # the Q/DQ model is laid out for TensorRT's parser: symmetric, float biases, Q/DQ pairs on weights
    from edgebench.backends.tensorrt.qdq import qdq_summary
    summary = qdq_summary(art.engine_path("qdq", "int8"))
    assert summary["problems"] == [] and summary["zero_point_types"] == ["int8"], summary

    # the Q/DQ model (TensorRT's input) runs on ONNX Runtime and on OpenVINO, and both agree with FP32
    # (16 photos, not broken rather than close: squeezenet1_1's symmetric-S8 model agrees 0.73 on ORT and 0.53
    # on OpenVINO with FP32 over 200 photos, with the TensorRT Q/DQ placement and with Q/DQ on every op alike)
    x = load_samples(open_dataset(small_data).samples[:16], art.manifest and _pre(art)).inputs
    qdq = art.engine_path("qdq", "int8")
    with runtime_class("ort")(art.engine_path("ort", "fp32"), RuntimeOptions(batches=(16,))) as rt:
        ref = rt.infer(x)
    for name in ("ort", "openvino"):
        with runtime_class(name)(qdq, RuntimeOptions(precision="int8", batches=(16,))) as rt:
            out = rt.infer(x)
        assert (out.argmax(1) == ref.argmax(1)).mean() >= 0.5, name

    for runtime in ("ort", "openvino"):
        s = evaluate_model(art, runtime, "int8", small_data, threads=2)
        assert s["images"] == N_PHOTOS - 24 and s["top1_meaningful"]
        fp32, int8 = s["engines"][f"{runtime}/fp32"], s["engines"][f"{runtime}/int8"]
        assert fp32["top1"] == s["engines"]["torch/fp32"]["top1"]
        assert fp32["top1"] > 40 and int8["top1"] > 30  # real weights on real photos
        pair = s["comparisons"][f"{runtime}/int8 vs {runtime}/fp32"]
        assert pair["top1_agreement"] >= 0.7 and pair["cosine_mean"] > 0.9
        assert pair["drop_top1_se_points"] >= 0

    # the INT8 engines really run INT8 convolutions: the runtimes' own per-layer profiles say so
    with runtime_class("ort")(art.engine_path("ort", "int8"), RuntimeOptions(precision="int8", threads=2)) as rt:
        ops = {r["op"] for r in rt.layer_profile(x[:1])}
    assert "QLinearConv" in ops and "Conv" not in ops, ops  # no conv of these two models is left in float
    with runtime_class("openvino")(art.engine_path("openvino", "int8"), RuntimeOptions(precision="int8")) as rt:
        kernels = {r["kernel"] for r in rt.layer_profile(x[:1]) if r["op"] == "Convolution"}
    assert kernels and all(k.lower().endswith("i8") for k in kernels), kernels


def _shape_tensors(path: Path) -> set[str]:
    """Outputs of the nodes ort_quant.shape_nodes names (computed from Shape and constants)."""
    from edgebench.quantize.ort_quant import shape_nodes
    names = set(shape_nodes(path))
    return {o for n in onnx.load(str(path)).graph.node if n.name in names for o in n.output}


def _pre(art):
    from edgebench.quantize.int8 import preprocess_of
    return preprocess_of(art.manifest)


@pytest.mark.integration
def test_random_weights_get_agreement_only(tmp_path, small_data, artifact_cache):
    from edgebench.bench.accuracy import evaluate_model
    from edgebench.quantize.int8 import calibrate
    art = artifact_cache.clone(artifact_cache.export("squeezenet1_1", ("ort",), data=small_data), tmp_path)
    assert art.manifest["verification"]["inputs"]["source"] == "random"  # photos verify trained weights only
    calibrate(art, ("ort",), small_data, num=30)
    s = evaluate_model(art, "ort", "int8", small_data, threads=2)
    assert s["top1_meaningful"] is False and "random" in s["top1_reason"]
    assert s["engines"]["ort/int8"]["top1"] is None
    assert s["comparisons"]["ort/int8 vs ort/fp32"]["top1_agreement"] is not None


# ---------------------------------------------------------------- the whole-registry INT8 table, --max-drop

@pytest.mark.integration
def test_sweep_int8_table_has_speedup_agreement_and_calibration_time(tmp_path, small_data, artifact_cache):
    results = tmp_path / "zoo.jsonl"
    artifact_cache.clone(artifact_cache.export("squeezenet1_1", ("ort",), data=small_data), tmp_path / "art")
    proc = edgebench("sweep", "--models", "squeezenet1_1,no_such_model_x", "--runtimes", "ort",
                     "--precisions", "fp32,int8", "--weights", "random", "--data", str(small_data), "--num", "16",
                     "--accuracy-images", "8", "--warmup", "2", "--warmup-seconds", "0", "--iterations", "5",
                     "--min-seconds", "0.2", "--retries", "0", "--out", str(tmp_path / "art"), "--results",
                     str(results), cwd=ROOT)
    assert_one_line_error(proc, "no_such_model_x")  # an unknown name fails before anything is measured
    proc = edgebench("sweep", "--models", "squeezenet1_1", "--runtimes", "ort", "--precisions", "fp32,int8",
                     "--weights", "random", "--data", str(small_data), "--num", "16", "--accuracy-images", "8",
                     "--warmup", "2", "--warmup-seconds", "0", "--iterations", "5", "--min-seconds", "0.2",
                     "--retries", "0", "--out", str(tmp_path / "art"), "--results", str(results), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "agreement" in proc.stdout
    rows = json.loads(edgebench("report", "--results", str(results), "--json", cwd=ROOT).stdout)
    (row,) = rows
    assert row["ort/int8_speedup"] > 0
    quality = row["ort/int8_quality"]
    assert 0 <= quality["agreement"] <= 1 and quality["images"] == 8
    assert quality["drop"] is None  # random weights: agreement only, no accuracy
    assert quality["calibration_s"] > 0


def test_int8_options_need_int8(tmp_path):
    proc = edgebench_in_process("run", "--runtime", "ort", "--model", "squeezenet1_1", "--max-drop", "0.5",
                                "--num", "20", "--out", tmp_path, cwd=ROOT)
    assert_one_line_error(proc, "--num, --max-drop only apply to INT8")


@pytest.mark.integration
def test_max_drop_restores_layers_until_the_budget(weights_dir, small_data, tmp_path, artifact_cache):
    """The ORT sensitivity fallback on real weights, with a budget it cannot meet: every step is taken,
    the most sensitive layers go back to float, and the top-1 figures are the real engines'."""
    from edgebench.quantize import ort_quant
    from edgebench.quantize.sensitivity import MAX_STEPS, restore_sensitive

    art = artifact_cache.export("squeezenet1_1", weights="auto", weights_dir=weights_dir, data=small_data)
    x = load_samples(open_dataset(small_data).samples[:16], _pre(art))
    prepared = ort_quant.pre_process(art.path("fp32/model.onnx"), tmp_path / "prep.onnx")
    out, cache = tmp_path / "int8.onnx", tmp_path / "ranges.json"
    ort_quant.quantize(prepared, out, x.inputs, "minmax", "cpu", cache)
    control = restore_sensitive(prepared, out, x.inputs, (x.inputs, np.asarray(x.labels)), "minmax", cache, {},
                                max_drop=-100.0)
    steps = control["steps"]
    assert control["met"] is False and 4 <= len(steps) <= MAX_STEPS + 1
    assert [s["excluded"] for s in steps] == [0] + [2 ** i for i in range(len(steps) - 1)]
    restored = control["restored_to_float"]
    assert len(restored) == steps[-1]["excluded"]
    assert restored[:10] == [name for name, _ in control["ranking_top10"]][:len(restored)]
    graph = onnx.load(str(out)).graph
    weights = {i.name for i in graph.initializer}
    for node in graph.node:  # restored convs read their float weights; the others a DequantizeLinear output
        if node.op_type == "Conv":
            assert (node.input[1] in weights) == (node.name in restored), node.name


@pytest.mark.integration
def test_run_int8_max_drop_end_to_end(weights_dir, small_data, tmp_path, artifact_cache):
    """`run --precision int8 --max-drop` on both CPU runtimes: one record with the accuracy control, and
    when layers were kept in float, the every-layer INT8 engine measured beside it (the fallback's cost)."""
    results = tmp_path / "r.jsonl"
    exported = artifact_cache.export("squeezenet1_1", weights="auto", weights_dir=weights_dir, data=small_data)
    artifact_cache.clone(exported, tmp_path / "art")  # calibrated by the runs
    for runtime in ("ort", "openvino"):
        proc = edgebench("run", "--runtime", runtime, "--model", "squeezenet1_1", "--precision", "int8",
                         "--max-drop", "0", "--num", "20", "--data", str(small_data), "--weights-dir", str(weights_dir),
                         "--warmup", "2", "--warmup-seconds", "0", "--iterations", "5", "--min-seconds", "0.2",
                         "--retries", "0", "--out", str(tmp_path / "art"), "--results", str(results), "--json",
                         cwd=ROOT)
        assert proc.returncode == 0, proc.stderr
        record = json.loads(proc.stdout)
        build = record["int8_engine"]
        control = build.get("accuracy_control", build)
        assert control["max_drop_points"] == 0 and "restored_to_float" in control
        assert record["int8"]["requested"] == 20
        restored = control["restored_to_float"]
        if restored:
            assert record["int8_fallback"]["restored_to_float"] == restored
            assert record["int8_fallback"]["latency_cost_p50"]["b1"] > 0
            assert record["latency"]["int8-every-layer/b1"]["status"] == "ok"
        else:
            assert record["int8_fallback"] is None
        assert record["accuracy"]["comparisons"][f"{runtime}/int8 vs {runtime}/fp32"]["top1_agreement"] is not None
