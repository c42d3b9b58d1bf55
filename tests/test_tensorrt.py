"""TensorRT: GPU-free rules here; the real build/run is marked `gpu` and skipped with the reason."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import assert_one_line_error, edgebench

from edgebench.backends import RUNTIMES, RuntimeOptions, canonical, require, runtime_class
from edgebench.backends.tensorrt.qdq import qdq_summary
from edgebench.backends.tensorrt.runtime import TensorRTRuntime
from edgebench.build.export import verify_batches
from edgebench.build.keys import engine_key
from edgebench.cli import main
from edgebench.cli.export import command as export
from edgebench.cli.options import TRT_BUILD_PARAMS, trt_build_from
from edgebench.portable.errors import EngineMismatch, RuntimeUnavailable, UsageError
from edgebench.portable.tensorrt import rules

AVAILABLE = TensorRTRuntime.availability()
gpu = pytest.mark.skipif(not AVAILABLE.usable, reason=f"TensorRT not usable here: {AVAILABLE.reason}")
no_trt = pytest.mark.skipif(AVAILABLE.usable, reason="TensorRT is usable here")


# ---------------------------------------------------------------- registry and availability

def test_registered_and_version_locked():
    assert RUNTIMES["trt"] == "edgebench.backends.tensorrt.runtime:TensorRTRuntime"
    assert canonical("tensorrt") == "trt"
    cls = runtime_class("trt")
    assert cls.version_locked is True and cls.engine_kind == "plan" and cls.builds_engine


def test_availability_names_what_is_missing():
    if AVAILABLE.usable:
        pytest.skip("TensorRT is usable here")
    reason = AVAILABLE.reason
    assert reason
    driver = Path("/proc/driver/nvidia/version").is_file()
    if not driver:
        assert "no NVIDIA driver" in reason
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        assert "TensorRT is not installed" in reason and "edgebench[tensorrt]" in reason


def test_run_and_doctor_report_the_reason(tmp_path):
    if AVAILABLE.usable:
        pytest.skip("TensorRT is usable here")
    proc = edgebench("run", "--runtime", "trt", "--model", "mobilenet_v3", cwd=tmp_path, timeout=120)
    assert_one_line_error(proc, "runtime trt is not usable here", AVAILABLE.reason.split(";")[0])
    doctor = edgebench("doctor", "--json", cwd=tmp_path, timeout=120)
    trt = next(r for r in json.loads(doctor.stdout)["runtimes"] if r["name"] == "trt")
    assert trt["usable"] is False and trt["reason"] == AVAILABLE.reason


@no_trt
def test_run_trt_with_options_still_reports_the_reason():
    """TensorRT options parse, then the missing TensorRT is the one error line (exit 2)."""
    result = CliRunner().invoke(main, ["run", "--runtime", "trt", "--model", "mobilenet_v3", "--batch", "1,8",
                                       "--trt-workspace", "512", "--cuda-graph", "--profile"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"error: runtime trt is not usable here: {AVAILABLE.reason}"
    with pytest.raises(RuntimeUnavailable, match="TensorRT|driver"):
        require("trt")


# ---------------------------------------------------------------- profiles and build configuration

def test_profile_rule_from_batches():
    """min = smallest, opt = first listed, max = largest (the rule `--batch` follows)."""
    assert rules.profile_batches([1, 8, 32]) == (1, 1, 32)
    assert rules.profile_batches([32, 1, 8]) == (1, 32, 32)
    assert rules.profile_batches([8]) == (8, 8, 8)
    options = rules.TrtBuildOptions(batches=(8, 1, 32))
    assert options.profile((3, 224, 224)) == {"min": [1, 3, 224, 224], "opt": [8, 3, 224, 224],
                                              "max": [32, 3, 224, 224]}
    assert all(rules.profile_covers(options.profile((3, 8, 8)), b) for b in options.batches)
    assert not rules.profile_covers(options.profile((3, 8, 8)), 33)


@pytest.mark.parametrize("kw,match", [({"batches": ()}, "positive"), ({"batches": (0, 4)}, "positive"),
                                      ({"workspace_mb": 0}, "at least 1 MiB"),
                                      ({"hardware_compatibility": "ampere+"}, "hardware compatibility")])
def test_build_options_validation(kw, match):
    with pytest.raises(UsageError, match=match):
        rules.TrtBuildOptions(**kw)


def test_run_options_survive_the_worker_json():
    """The measurement worker gets RuntimeOptions as JSON and rebuilds the typed TensorRT run options."""
    options = RuntimeOptions(precision="fp16", batches=(8,), profile=True, backend=rules.TrtRunOptions(cuda_graph=True))
    back = json.loads(json.dumps(options.to_dict()))
    again = RuntimeOptions.from_dict(back, runtime_class("trt").run_options_class)
    assert again == options and isinstance(again.backend, rules.TrtRunOptions)
    assert RuntimeOptions().backend is None and not RuntimeOptions().profile


def test_engine_key_covers_the_build_options():
    """A different profile, workspace, hardware level or GPU rebuilds the plan; the timing cache does not."""
    base = rules.TrtBuildOptions(batches=(1, 8, 32))

    def key(options: rules.TrtBuildOptions, runtime: str = "trt", precision: str = "fp16",
            devices: tuple[str, ...] = ("cuda:0 NVIDIA A10 (sm 8.6)",)) -> str:
        return engine_key("ab" * 32, runtime, "10.7.0", precision, options if runtime == "trt" else None,
                          list(devices))

    same = [rules.TrtBuildOptions(batches=(1, 32, 8)), rules.TrtBuildOptions(batches=(1, 8, 32), timing_cache="/x/cache")]
    assert all(key(o) == key(base) for o in same)  # same min/opt/max; the cache only speeds the build
    different = [rules.TrtBuildOptions(batches=(1, 8)), rules.TrtBuildOptions(batches=(8, 1, 32)),
                 rules.TrtBuildOptions(batches=(1, 8, 32), workspace_mb=512),
                 rules.TrtBuildOptions(batches=(1, 8, 32), hardware_compatibility="ampere_plus")]
    keys = {key(o) for o in different}
    assert len(keys) == len(different) and key(base) not in keys
    assert key(base, devices=("cuda:0 Orin (sm 8.7)",)) != key(base)
    legacy = rules.TrtBuildOptions(batches=(1, 8, 32), legacy_calibrator=True)
    assert key(legacy) == key(base) and key(legacy, precision="int8") != key(base, precision="int8")
    for other in ("ort", "openvino"):  # TensorRT options never touch other engines' keys
        assert key(different[2], other, devices=()) == key(base, other, devices=())


def test_verification_batches_stay_inside_the_profile():
    assert verify_batches(None, 8) == (8, 1)  # a backend without a profile (ORT, OpenVINO)
    assert verify_batches(rules.TrtBuildOptions(batches=(1, 8, 32)), 8) == (8, 1)
    assert verify_batches(rules.TrtBuildOptions(batches=(1,)), 8) == (1, 1)
    assert verify_batches(rules.TrtBuildOptions(batches=(16, 32)), 8) == (16, 16)


def _export_context(*args: str):
    return export.make_context("export", ["mobilenet_v3", "--runtime", "trt", *args])


def test_cli_options_reach_the_build_config(tmp_path):
    """export's options -> TrtBuildOptions -> the profile, the build recipe and the export job."""
    cache = tmp_path / "shared.timing-cache"
    ctx = _export_context("--batch", "8,1,32", "--trt-workspace", "512", "--trt-hw-compat", "ampere+",
                          "--trt-timing-cache", str(cache))
    options = trt_build_from(ctx, ("trt",), ctx.params["batches"], "fp16", ("batches", *TRT_BUILD_PARAMS))
    assert options == rules.TrtBuildOptions(batches=(8, 1, 32), workspace_mb=512, hardware_compatibility="ampere_plus",
                                         timing_cache=str(cache))
    assert options.profile((3, 224, 224))["opt"] == [8, 3, 224, 224]
    cfg = rules.derive_build_config("fp16", "10.7.0", legacy_calibrator=options.legacy_calibrator,
                                 workspace_mb=options.workspace_mb,
                                 hardware_compatibility=options.hardware_compatibility)
    assert (cfg.workspace_mb, cfg.hardware_compatibility, cfg.builder_flags) == (512, "ampere_plus", ["FP16"])
    defaults = _export_context()
    assert trt_build_from(defaults, ("trt",), defaults.params["batches"], "fp32") == rules.TrtBuildOptions()


def test_legacy_calibrator_option(capsys):
    ctx = _export_context("--trt-legacy-calibrator", "--precision", "int8")
    options = trt_build_from(ctx, ("trt",), (1,), "int8")
    assert options.legacy_calibrator and "deprecated since TensorRT 10.1" in capsys.readouterr().err
    cfg = rules.derive_build_config("int8", "10.3.0", legacy_calibrator=options.legacy_calibrator)
    assert cfg.legacy_calibrator and cfg.builder_flags == ["FP16", "INT8"]
    with pytest.raises(UsageError, match="--precision int8 only"):
        trt_build_from(_export_context("--trt-legacy-calibrator"), ("trt",), (1,), "fp32")


@pytest.mark.parametrize("args,needle", [
    (["run", "--runtime", "ort", "--cuda-graph"], "--cuda-graph: TensorRT options, but the runtime is ort"),
    (["run", "--runtime", "openvino", "--profile", "--trt-workspace", "64"], "--trt-workspace: TensorRT options"),
    (["run", "--runtime", "ort", "--trt-hw-compat", "ampere+"], "--trt-hw-compat: TensorRT options"),
    (["export", "--runtime", "ort", "--batch", "8"], "--batch: TensorRT options, but the runtime is ort"),
    (["export", "--runtime", "ort", "--trt-timing-cache", "x.cache"], "--trt-timing-cache: TensorRT"),
    (["run", "--runtime", "trt", "--trt-legacy-calibrator"], "--trt-legacy-calibrator applies to --precision int8"),
])
def test_trt_options_refused_elsewhere_with_one_line(args, needle):
    model = ["--model", "mobilenet_v3"] if args[0] == "run" else ["mobilenet_v3"]
    result = CliRunner().invoke(main, [*args, *model])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr


@pytest.mark.parametrize("option", [["--trt-workspace", "0"], ["--trt-workspace", "lots"],
                                    ["--trt-hw-compat", "turing+"], ["--batch", "0"]])
def test_invalid_trt_option_values(option):
    result = CliRunner().invoke(main, ["run", "--runtime", "trt", "--model", "mobilenet_v3", *option])
    assert result.exit_code == 2 and "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and option[0] in errors[0], result.stderr


def test_profile_shapes_from_batches():
    assert rules.profile_shapes([1, 8, 32], [3, 224, 224]) == {
        "min": [1, 3, 224, 224], "opt": [1, 3, 224, 224], "max": [32, 3, 224, 224]}
    assert rules.profile_shapes([8, 1], (3, 32, 32))["opt"] == [8, 3, 32, 32]  # the first batch listed
    assert rules.profile_shapes([4], (3, 8, 8), opt=4) == {"min": [4, 3, 8, 8], "opt": [4, 3, 8, 8], "max": [4, 3, 8, 8]}
    assert rules.profile_covers(rules.profile_shapes([1, 16], (3, 8, 8)), 9)
    for bad in ([], [0], [-1, 2]):
        with pytest.raises(UsageError):
            rules.profile_shapes(bad, (3, 8, 8))
    with pytest.raises(UsageError, match="static C, H, W"):
        rules.profile_shapes([1], (3, -1, 8))
    with pytest.raises(UsageError, match="outside"):
        rules.profile_shapes([1, 4], (3, 8, 8), opt=8)


@pytest.mark.parametrize("version,precision,kw,source,flags,strong,float_layers", [
    ("10.7.0", "fp32", {}, "fp32", [], False, "fp32"),
    ("10.3.0", "fp32", {}, "fp32", [], False, "fp32"),
    ("10.7.0", "fp16", {}, "fp32", ["FP16"], False, "fp16 where faster, else fp32"),
    ("10.3.0", "int8", {"qdq_available": True}, "qdq", ["FP16", "INT8"], False, "fp16 where faster, else fp32"),
    ("8.5.2.2", "int8", {"qdq_available": True}, "qdq", ["FP16", "INT8"], False, "fp16 where faster, else fp32"),
    ("8.5.2.2", "int8", {"legacy_calibrator": True}, "fp32", ["FP16", "INT8"], False, "fp16 where faster, else fp32"),
    ("11.1.0", "fp32", {}, "fp32", [], True, "fp32"),
    ("11.1.0", "fp16", {"fp16_onnx_available": True}, "fp16", [], True, "fp16 (the FP16 ONNX's types)"),
    ("11.1.0", "int8", {"qdq_available": True}, "qdq", [], True, "fp32 (strongly typed: the Q/DQ ONNX's float type)"),
])
def test_build_config(version, precision, kw, source, flags, strong, float_layers):
    """Per release: TF32 cleared on every build (fp32 plans compute FP32); FP16 with INT8 on 8.x/10.x;
    no precision flag and no calibrator on 11.x."""
    cfg = rules.derive_build_config(precision, version, **kw)
    assert (cfg.onnx_source, cfg.builder_flags, cfg.strongly_typed) == (source, flags, strong)
    assert cfg.cleared_flags == ["TF32"] and cfg.float_layers == float_layers
    assert cfg.legacy_calibrator == bool(kw.get("legacy_calibrator"))
    assert cfg.explicit_batch_flag == version.startswith("8.")
    assert cfg.to_dict()["workspace_mb"] == rules.DEFAULT_WORKSPACE_MB


def test_build_config_refusals():
    with pytest.raises(UsageError, match="no INT8 Q/DQ ONNX"):
        rules.derive_build_config("int8", "10.7.0")
    with pytest.raises(UsageError, match="removed implicit INT8"):
        rules.derive_build_config("int8", "11.0.0", legacy_calibrator=True)
    with pytest.raises(UsageError, match="needs an FP16 ONNX"):
        rules.derive_build_config("fp16", "11.0.0")
    with pytest.raises(UsageError, match=r"--trt-hw-compat ampere\+ needs TensorRT >= 8.6 \(this is 8.5.2\)"):
        rules.derive_build_config("fp32", "8.5.2", hardware_compatibility="ampere_plus")
    with pytest.raises(UsageError, match="same-compute-capability needs TensorRT >= 10.9"):
        rules.derive_build_config("fp32", "10.3.0", hardware_compatibility="same_compute_capability")
    assert rules.derive_build_config("fp32", "10.9.0", hardware_compatibility="same_compute_capability")
    with pytest.raises(UsageError):
        rules.derive_build_config("int4", "10.7.0")
    legacy = rules.derive_build_config("int8", "8.5.2", legacy_calibrator=True)
    assert legacy.legacy_calibrator and "deprecated since TensorRT 10.1" in legacy.notes[0]


# ---------------------------------------------------------------- engine manifest and compatibility

def _manifest(**over):
    base = {"trt_version": "10.7.0.23", "gpu_name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0",
                "precision": "fp16", "profile": rules.profile_shapes([1, 8], (3, 224, 224)), "onnx_sha256": "ab" * 32,
                "build": rules.derive_build_config("fp16", "10.7.0")}
    return rules.engine_manifest(**{**base, **over})


def test_engine_manifest_round_trip(tmp_path):
    plan = tmp_path / "model.plan"
    plan.write_bytes(b"plan")
    m = _manifest(plan_sha256="00" * 32, plan_bytes=4)
    rules.write_engine_manifest(plan, m)
    assert rules.manifest_path_for(plan).name == "model.plan.json"
    back = rules.read_engine_manifest(plan)
    assert back == json.loads(json.dumps(m))
    for key in ("tensorrt_version", "gpu_name", "compute_capability", "precision", "profile", "onnx_sha256"):
        assert back[key]
    rules.check_compatible(back, trt_version="10.7.0.23", gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0")
    rules.check_compatible(back, trt_version="10.7.0", gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0")


def test_engine_mismatch_is_refused_with_how_to_rebuild(tmp_path):
    m = _manifest()
    with pytest.raises(EngineMismatch, match=r"built with TensorRT 10.7.0.23 but this is TensorRT 10.8.0.*"
                                             r"edgebench export MODEL --runtime trt --precision fp16"):
        rules.check_compatible(m, trt_version="10.8.0", gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0")
    with pytest.raises(EngineMismatch, match="built for NVIDIA H100 80GB HBM3 .* but this GPU is Orin.*rebuild"):
        rules.check_compatible(m, trt_version="10.7.0", gpu_name="Orin", compute_capability="8.7")
    compat = _manifest(build=rules.derive_build_config("fp32", "10.7.0", hardware_compatibility="ampere_plus"))
    rules.check_compatible(compat, trt_version="10.7.0", gpu_name="NVIDIA A10", compute_capability="8.6")
    with pytest.raises(EngineMismatch, match="Ampere"):
        rules.check_compatible(compat, trt_version="10.7.0", gpu_name="Tesla T4", compute_capability="7.5")
    plan = tmp_path / "x.plan"
    with pytest.raises(EngineMismatch, match="no engine manifest"):
        rules.read_engine_manifest(plan)
    assert issubclass(EngineMismatch, Exception) and EngineMismatch.exit_code == 2


# ---------------------------------------------------------------- legacy calibration cache

def test_calibration_cache_format_round_trip():
    scales = {"input": 0.0186584, "/conv1/Conv_output_0": 0.0421, "logits": 1.5}
    blob = rules.write_calibration_cache(scales, "8.6.1")
    lines = blob.decode().splitlines()
    assert lines[0] == "TRT-8601-EntropyCalibration2"
    assert lines[1] == f"input: {struct.pack('>f', 0.0186584).hex()}"
    parsed = rules.read_calibration_cache(blob)
    assert parsed["version"] == 8601 and parsed["algorithm"] == "EntropyCalibration2"
    assert parsed["scales"].keys() == scales.keys()
    assert all(abs(parsed["scales"][k] - v) <= 1e-7 * v for k, v in scales.items())
    assert rules.trt_version_number("10.1.0") == 100100
    assert rules.cache_matches(parsed, "8.6.1") and not rules.cache_matches(parsed, "10.3.0")
    # a cache as TensorRT writes it (float bits in hex, big-endian)
    real = rules.read_calibration_cache("TRT-100100-EntropyCalibration2\ninput: 3c91e7b3\n(Unnamed Layer* 3) [Shuffle]_output: 3d2a3e2b\n")
    assert set(real["scales"]) == {"input", "(Unnamed Layer* 3) [Shuffle]_output"}
    assert abs(real["scales"]["input"] - 0.017810) < 1e-5


@pytest.mark.parametrize("text", ["", "input: 3c91e7b3\n", "TRT-8601-EntropyCalibration2\ninput 3c91e7b3\n",
                                  "TRT-8601-EntropyCalibration2\ninput: zz\n"])
def test_calibration_cache_rejects_garbage(text):
    with pytest.raises(UsageError):
        rules.read_calibration_cache(text)


def test_calibration_cache_writer_refuses_bad_scales():
    with pytest.raises(UsageError):
        rules.write_calibration_cache({"x": 0.0}, "10.0.0")
    with pytest.raises(UsageError):
        rules.write_calibration_cache({"a:b": 1.0}, "10.0.0")


# ---------------------------------------------------------------- the INT8 input: a Q/DQ ONNX

class _SqueezeExcite(__import__("torch").nn.Module):
    """A tiny CNN with what the INT8 recipe leaves in float: a squeeze-excitation branch, a Linear classifier."""

    def __init__(self) -> None:
        import torch
        super().__init__()
        self.stem, self.conv = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 3)
        self.se_reduce, self.se_expand = torch.nn.Conv2d(8, 4, 1), torch.nn.Conv2d(4, 8, 1)
        self.fc = torch.nn.Linear(8, 10)

    def forward(self, x):
        import torch
        x = torch.relu(self.stem(x))
        x = x * torch.sigmoid(self.se_expand(torch.relu(self.se_reduce(x.mean((2, 3), keepdim=True)))))
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


@pytest.fixture(scope="module")
def qdq_onnx(tmp_path_factory) -> Path:
    """The INT8 work's TensorRT Q/DQ ONNX, made by its own code (ort_quant.pre_process, fragile_nodes,
    quantize(target="trt")): symmetric INT8 activations and weights in QDQ format, the squeeze-excitation
    convs and the classifier left in float. Next to it: ORT's defaults, which TensorRT's Q/DQ is not."""
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from edgebench.quantize import ort_quant

    d = tmp_path_factory.mktemp("qdq")
    model = _SqueezeExcite().eval()
    torch.onnx.export(model, torch.randn(1, 3, 32, 32), str(d / "fp32.onnx"), input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}}, opset_version=17, dynamo=False)
    images = np.random.default_rng(0).standard_normal((8, 3, 32, 32), dtype=np.float32)
    prepared = ort_quant.pre_process(d / "fp32.onnx", d / "fp32.prep.onnx")
    fragile = ort_quant.fragile_nodes(prepared)
    ort_quant.quantize(prepared, d / "model.qdq.onnx", images, "minmax", "trt", d / "ranges.json", list(fragile))
    (d / "fragile.json").write_text(json.dumps(fragile))

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{"input": image[None]} for image in images])

        def get_next(self):
            return next(self.items, None)

    quantize_static(str(d / "fp32.onnx"), str(d / "ort-default.qdq.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    return d / "model.qdq.onnx"


def test_tensorrt_qdq_keeps_the_recipe_exclusions_and_float_outputs(qdq_onnx):
    """One recipe for ORT and TensorRT: the same excluded nodes, Q/DQ only on the weighted ops' inputs, no
    graph output from a DequantizeLinear (ORT's every-op default gave 8-bit logits)."""
    import onnx
    fragile = json.loads(qdq_onnx.with_name("fragile.json").read_text())
    assert sorted(fragile.values()) == ["fully connected classifier (last layer)", "squeeze-excitation conv",
                                        "squeeze-excitation conv"]
    graph = onnx.load(str(qdq_onnx)).graph
    dequantized = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    fed_by_dq = {n.name for n in graph.node if any(i in dequantized for i in n.input)}
    assert not fed_by_dq & set(fragile)
    assert {n.op_type for n in graph.node if n.name in fed_by_dq} <= {"Conv", "Mul", "Relu"}
    summary = qdq_summary(qdq_onnx)
    assert summary["dequantized_outputs"] == [] and summary["tensorrt_ready"]


def test_qdq_onnx_is_valid_explicit_quantization(qdq_onnx):
    summary = qdq_summary(qdq_onnx)
    assert summary["quantize_nodes"] > 0 and summary["dequantize_nodes"] >= summary["quantize_nodes"]
    assert summary["zero_point_types"] == ["int8"] and summary["tensorrt_ready"] and not summary["problems"]
    import onnxruntime as ort
    out = ort.InferenceSession(str(qdq_onnx), providers=["CPUExecutionProvider"]).run(
        None, {"input": np.zeros((2, 3, 32, 32), np.float32)})[0]
    assert out.shape == (2, 10)


def test_ort_default_qdq_is_flagged_for_tensorrt(qdq_onnx):
    """ORT's defaults (U8 activations, INT32 bias, weights stored INT8) are valid ONNX but not TensorRT's Q/DQ."""
    summary = qdq_summary(qdq_onnx.with_name("ort-default.qdq.onnx"))
    assert summary["quantize_nodes"] > 0 and not summary["tensorrt_ready"]
    assert any("QuantizeBias=False" in p for p in summary["problems"])


def test_plain_onnx_is_not_qdq(qdq_onnx):
    with pytest.raises(UsageError, match="not a Q/DQ ONNX"):
        qdq_summary(qdq_onnx.with_name("fp32.onnx"))


def test_real_int8_artifact_when_present():
    """Checks the INT8 work's real Q/DQ ONNX if an artifacts folder here has one."""
    from edgebench.build.artifacts import Artifacts
    found = [(root, rel) for root in sorted(Path("artifacts").glob("*")) if (root / "manifest.json").is_file()
             for rel in [(Artifacts.open(root).engine_entry("qdq", "int8") or {}).get("files", [None])[0]] if rel]
    if not found:
        pytest.skip("no INT8 Q/DQ ONNX in ./artifacts (run `edgebench export MODEL --precision int8 --data DIR`)")
    import warnings
    for root, rel in found:
        summary = qdq_summary(root / rel)  # a valid ONNX with Q/DQ nodes, or UsageError
        assert summary["quantize_nodes"] > 0 and not summary["asymmetric_nodes"], root / rel
        if summary["problems"]:
            warnings.warn(f"{root / rel} may not parse in TensorRT: {'; '.join(summary['problems'])}", stacklevel=1)


# ---------------------------------------------------------------- on a GPU

@pytest.mark.gpu
@gpu
def test_build_and_run_fp32_fp16_int8_plans(qdq_onnx, tmp_path):
    import tensorrt as trt

    from edgebench.backends.base import RuntimeOptions
    from edgebench.portable.tensorrt.engine import build_plan
    onnx_fp32 = qdq_onnx.with_name("fp32.onnx")
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32), dtype=np.float32)
    import onnxruntime as ort
    ref = ort.InferenceSession(str(onnx_fp32), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    major = rules.parse_version(trt.__version__)[0]
    cases = [("fp32", onnx_fp32, 1e-3), ("int8", qdq_onnx, 0.5)] + ([("fp16", onnx_fp32, 5e-2)] if major < 11 else [])
    cache = tmp_path / rules.TIMING_CACHE_FILE
    for precision, src, tol in cases:
        cfg = rules.derive_build_config(precision, trt.__version__, qdq_available=True)
        plan = tmp_path / precision / "model.plan"
        manifest = build_plan(src, plan, cfg, rules.profile_shapes([1, 4], (3, 32, 32)), timing_cache=cache)
        assert cache.is_file() and manifest["precision"] == precision
        assert manifest["build"]["cleared_flags"] == ["TF32"]
        with TensorRTRuntime(plan, RuntimeOptions(precision=precision, batches=(4,))) as rt:
            out = rt.infer(x)
            assert np.abs(out - ref).max() <= tol * max(1.0, np.abs(ref).max()), precision
            run = rt.bind(x)
            for _ in range(5):
                run()
            run.warmup_done()  # what the protocol calls: the GPU times are the timed loop's only
            for _ in range(20):
                run()
            settings = rt.settings()
            timing = settings["timing"]
            assert timing["gpu_compute_ms"]["p50"] > 0 and timing["iterations"] == 20
            assert sum(settings["layer_precisions"].values()) > 0
            assert ("INT8" in settings["layer_precisions"]) == (precision == "int8"), settings["layer_precisions"]
            rows = rt.layer_profile(x)  # op and kernel from the engine inspector
            assert any(r["op"] and r["kernel"] for r in rows), rows[:3]
            assert any(r["op"].endswith(" INT8") for r in rows) == (precision == "int8"), rows[:5]
            mem = rt.device_memory()
            assert mem["plan_file"] > 0 and mem["engine_device_memory"] >= 0
        bad = json.loads(rules.manifest_path_for(plan).read_text())
        bad["tensorrt_version"] = "9.0.0"
        rules.write_engine_manifest(plan, bad)
        with pytest.raises(EngineMismatch, match="rebuild"):
            TensorRTRuntime(plan, RuntimeOptions(precision=precision, batches=(1,))).activate()


@pytest.mark.gpu
@gpu
def test_legacy_calibration_cache_follows_the_onnx_and_images(qdq_onnx, tmp_path):
    import tensorrt as trt

    from edgebench.portable.tensorrt import api as trt_api
    from edgebench.portable.tensorrt.engine import build_plan
    if not trt_api.uses("legacy_calibrator", trt.__version__):
        pytest.skip(f"TensorRT {trt.__version__} has no implicit INT8 calibration")
    cfg = rules.derive_build_config("int8", trt.__version__, legacy_calibrator=True)
    profile = rules.profile_shapes([1, 4], (3, 32, 32))
    rng = np.random.default_rng(0)
    images = rng.standard_normal((8, 3, 32, 32), dtype=np.float32)

    def build(batches) -> dict:
        return build_plan(qdq_onnx.with_name("fp32.onnx"), tmp_path / "model.plan", cfg, profile,
                          calibration_batches=rules.calibration_batches(batches, profile),
                          calibration_cache=tmp_path / rules.CALIBRATION_CACHE_FILE)["calibration_cache"]

    assert build(images)["reused"] is False
    assert build(images)["reused"] is True
    assert build(images[::-1].copy())["reused"] is False  # another calibration set recalibrates


@pytest.mark.gpu
@gpu
def test_edgebench_run_trt_end_to_end(tmp_path):
    cache = tmp_path / "shared.timing-cache"

    def run(*batch: str, extra: tuple[str, ...] = ()) -> list[dict]:
        results = tmp_path / "r.jsonl"
        results.unlink(missing_ok=True)
        proc = edgebench("run", "--runtime", "trt", "--model", "mobilenet_v3", "--weights", "random",
                         "--batch", ",".join(batch), "--trt-workspace", "1024", "--trt-timing-cache", str(cache),
                         *extra, "--iterations", "50", "--min-seconds", "1", "--results", str(results),
                         "--out", str(tmp_path / "artifacts"), cwd=tmp_path, timeout=1200)
        assert proc.returncode == 0, proc.stderr
        return [json.loads(line) for line in results.read_text().splitlines()]

    records = run("1", "8", extra=("--profile", "--cuda-graph"))
    for r in records:
        settings = r["runtime"]["settings"]
        assert r["runtime"]["name"] == "trt" and r["status"] == "ok"
        assert settings["profile"] == {"min": [1, 3, 224, 224], "opt": [1, 3, 224, 224], "max": [8, 3, 224, 224]}
        assert settings["workspace_mb"] == 1024 and settings["hardware_compatibility"] == "none"
        assert settings["timing_cache"]["path"] == str(cache) and settings["timing_cache"]["saved_bytes"] > 0
        assert settings["cuda_graph"] and settings["timing"]["cuda_graph"]
        assert settings["timing"]["gpu_compute_ms"]["p50"] > 0 and settings["layer_profile"]
        assert settings["timing"]["iterations"] == r["loop"]["iterations"]  # warm-up runs are not in the GPU times
        assert settings["build"]["cleared_flags"] == ["TF32"] and settings["float_layers"] == "fp32"
        assert settings["layer_precisions"] and any(row["op"] for row in settings["layer_profile"])
        assert r["device_memory_mb"]["engine_device_memory"] >= 0
    manifest = json.loads((tmp_path / "artifacts" / "mobilenet_v3_large" / "manifest.json").read_text())
    assert manifest["verification"]["trt/fp32"]["rel_err"] <= 1e-3  # FP32, not TF32 (emulated TF32: 5.6e-3)
    again = run("16", "4")  # another --batch list rebuilds with its own profile, reusing the timing cache
    assert again[0]["runtime"]["settings"]["profile"]["max"][0] == 16
    assert again[0]["runtime"]["settings"]["timing_cache"]["reused"] is True
    assert "layer_profile" not in again[0]["runtime"]["settings"]


def test_legacy_calibration_batches_follow_the_profile_opt():
    from edgebench.portable.tensorrt.rules import calibration_batches, profile_shapes
    images = np.arange(10 * 3 * 2 * 2, dtype=np.float32).reshape(10, 3, 2, 2)
    batches = calibration_batches(images, profile_shapes((4, 1, 16), (3, 2, 2)))
    assert [len(b) for b in batches] == [4, 4, 4]
    np.testing.assert_array_equal(np.concatenate(batches)[:10], images)
    np.testing.assert_array_equal(batches[-1][2:], images[:2])  # the last batch is filled from the start
