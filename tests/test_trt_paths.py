"""The TensorRT path's GPU-free parts: cuda-python across majors, the INT8 recipe for TensorRT, the
legacy calibration-cache key, layer info from the engine inspector, Jetson support, the warm-up split.

cuda-python is the real installed package (no driver here); ONNX Runtime quantizes real exports.
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import onnx
import pytest
from conftest import ROOT

from edgebench.backends.tensorrt.qdq import qdq_summary
from edgebench.portable.errors import UsageError
from edgebench.portable.protocol import Protocol, time_loop
from edgebench.portable.tensorrt import api as trt_api
from edgebench.portable.tensorrt import cuda_compat
from edgebench.portable.tensorrt import layers as trt_layers
from edgebench.portable.tensorrt import rules as tc

# ---------------------------------------------------------------- cuda-python


def _cudart_names(path: Path) -> set[str]:
    """``cudart.X`` / ``self.cudart.X`` attributes a module uses."""
    tree = ast.parse(path.read_text())
    return {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
            and ast.unparse(node.value) in ("cudart", "self.cudart")}


def test_cudart_names_exist_in_the_installed_bindings():
    """Every cudart function trt_engine calls is in the cuda-python installed here (torch's cuda-bindings),
    and graphs are instantiated with the call whose signature CUDA 11, 12 and 13 share."""
    cudart = cuda_compat.import_cudart()
    used = _cudart_names(ROOT / "edgebench" / "portable" / "tensorrt" / "engine.py")
    assert {"cudaStreamCreate", "cudaEventElapsedTime", "cudaStreamBeginCapture"} <= used
    assert not [n for n in sorted(used) if not hasattr(cudart, n)]
    assert "cudaGraphInstantiate" not in used  # (graph, log buffer, size) on CUDA 11: see cuda_compat
    assert cudart.cudaGraphInstantiateWithFlags.__doc__.startswith("cudaGraphInstantiateWithFlags(graph, unsigned")


def test_stream_handle_uses_the_documented_accessor():
    cudart = cuda_compat.import_cudart()
    stream = cudart.cudaStream_t(0x1234)
    assert cuda_compat.handle(stream) == 0x1234
    from cuda.bindings.utils import get_cuda_native_handle  # 12.9.1+ / 13.x: int(obj) is deprecated there
    assert get_cuda_native_handle(stream) == 0x1234


@pytest.mark.parametrize("bindings,driver_cuda,driver,needle", [
    ("13.5.0", 12060, (540, 4, 0), ("cuda-bindings 13.5.0 needs an NVIDIA driver >= 580.65 (CUDA 13); this driver is "
                                   "540.4.0 (CUDA 12.6): pip install 'cuda-python>=12,<13'")),
    ("13.0.0", None, (550, 54, 15), "this driver is 550.54.15: pip install 'cuda-python>=12,<13'"),
    ("12.9.1", 11040, None, ("needs an NVIDIA driver >= 525.60 (CUDA 12); this driver is unknown (CUDA 11.4): "
                            "pip install 'cuda-python>=11.5,<11.8.3'")),
    ("13.5.0", 13000, (580, 65, 6), None),
    ("12.6.2.post1", 12060, None, None),  # JetPack 6.1/6.2
    ("13.5.0", None, None, None),  # nothing known about the driver: no claim
])
def test_driver_mismatch_names_the_fix(bindings, driver_cuda, driver, needle):
    found = cuda_compat.driver_mismatch(bindings, driver_cuda, driver)
    assert found is None if needle is None else needle in found, found


def test_doctor_names_the_mismatch_for_the_installed_bindings():
    """The hint doctor (TensorRTRuntime.availability) and the bundle runner add, from the cuda-bindings installed
    here and a 550 driver's report."""
    installed = cuda_compat.bindings_version()
    if not installed or not installed.startswith("13."):
        pytest.skip(f"needs cuda-bindings 13 installed (found {installed})")
    hint = cuda_compat.mismatch_hint("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024")
    assert hint == (f"cuda-bindings {installed} needs an NVIDIA driver >= 580.65 (CUDA 13); this driver is 550.54.15: "
                    "pip install 'cuda-python>=12,<13'")
    assert cuda_compat.mismatch_hint("NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.95.05  ...") is None


def test_driver_version_from_the_driver_reports():
    proc = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n"
    assert cuda_compat.driver_version(proc) == (550, 54, 15)
    assert cuda_compat.driver_version("NVIDIA A10, 535.161.08") == (535, 161, 8)
    assert cuda_compat.driver_version("Jetson (L4T) R36 (release), REVISION: 4.3") is None


# ---------------------------------------------------------------- the INT8 model TensorRT builds from

@pytest.fixture(scope="module")
def calibrated(tmp_path_factory, data_dir, artifact_cache):
    """mobilenet_v3 (squeeze-excitation blocks, Linear classifier) calibrated for ORT and TensorRT at once."""
    from edgebench.quantize.int8 import calibrate
    d = tmp_path_factory.mktemp("int8")
    photos = d / "photos"
    photos.mkdir()
    for p in sorted(data_dir.glob("*.jpg"))[:12]:
        shutil.copy(p, photos / p.name)
    art = artifact_cache.clone(artifact_cache.export("mobilenet_v3", ("ort",)), d / "artifacts")
    calibrate(art, ("ort", "trt"), photos, num=8)
    return art


@pytest.mark.integration
def test_tensorrt_int8_model_follows_the_ort_recipe(calibrated):
    """The TensorRT Q/DQ model leaves the same nodes in float as the ORT model (SE convs, classifier),
    puts Q/DQ only on the weighted ops' inputs, and its graph output is float, not 8-bit logits."""
    ort, qdq = calibrated.engine_entry("ort", "int8")["build"], calibrated.engine_entry("qdq", "int8")["build"]
    assert qdq["left_in_float"] == ort["left_in_float"] and len(qdq["left_in_float"]) == 22
    assert qdq["nodes_to_exclude"] == list(ort["left_in_float"]) and qdq["op_types_to_quantize"] == ["Conv", "MatMul",
                                                                                                   "Gemm", "ConvTranspose"]
    path = calibrated.engine_path("qdq", "int8")
    graph = onnx.load(str(path)).graph
    dequantized = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    assert not [n.name for n in graph.node if n.name in qdq["left_in_float"] and set(n.input) & dequantized]
    summary = qdq_summary(path)
    assert summary["tensorrt_ready"] and summary["dequantized_outputs"] == [] and not summary["problems"]


def test_dequantized_graph_output_is_refused_before_a_build(tmp_path):
    """A Q/DQ model whose logits leave through a DequantizeLinear is not tensorrt_ready, with the reason."""
    from onnx import TensorProto, helper
    scale = helper.make_tensor("s", TensorProto.FLOAT, [], [0.1])
    zero = helper.make_tensor("z", TensorProto.INT8, [], [0])
    graph = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q"),
         helper.make_node("DequantizeLinear", ["q", "s", "z"], ["logits"], name="dq")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], [scale, zero])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.onnx")
    summary = qdq_summary(tmp_path / "m.onnx")
    assert not summary["tensorrt_ready"] and summary["dequantized_outputs"] == ["logits"]
    assert any("graph output logits comes out of a DequantizeLinear" in p for p in summary["problems"])


# ---------------------------------------------------------------- legacy calibration cache

def test_calibration_cache_is_reused_only_for_the_same_onnx_and_images(tmp_path):
    cache = tmp_path / tc.CALIBRATION_CACHE_FILE
    blob = tc.write_calibration_cache({"input": 0.0187, "conv1": 0.042}, "8.5.2")
    key = tc.calibration_cache_key("8.5.2", "ab" * 32, "cd" * 32)
    assert tc.cached_calibration(cache, key, "8.5.2") is None  # nothing yet
    tc.store_calibration(cache, blob, key)
    assert tc.cached_calibration(cache, key, "8.5.2") == blob
    for other in (tc.calibration_cache_key("8.5.2", "ef" * 32, "cd" * 32),  # a re-export
                  tc.calibration_cache_key("8.5.2", "ab" * 32, "00" * 32)):  # another calibration set
        assert other != key and tc.cached_calibration(cache, other, "8.5.2") is None
    assert tc.cached_calibration(cache, key, "8.6.1") is None  # the header's release must match too
    cache.with_name(cache.name + ".key").unlink()
    assert tc.cached_calibration(cache, key, "8.5.2") is None  # a cache without its key is never reused
    with pytest.raises(UsageError):
        tc.store_calibration(cache, b"not a cache", key)


# ---------------------------------------------------------------- layer info from the engine inspector

ENGINE_INFORMATION = json.dumps({"Layers": [  # the shape of get_engine_information(JSON) at DETAILED verbosity
    {"Name": "/features/0/Conv + /features/0/Relu", "LayerType": "CaskConvolution",
     "Inputs": [{"Name": "input", "Dimensions": [1, 3, 224, 224], "Format/Datatype": "Row major linear FP32"}],
     "Outputs": [{"Name": "t0", "Format/Datatype": "Four wide channel vectorized row major Int8 format"}],
     "TacticName": "sm80_xmma_fprop_implicit_gemm_f32f32_tf32f32_f32_nhwckrsc_nhwc"},
    {"Name": "/features/1/Conv", "LayerType": "CaskConvolution",
     "Inputs": [{"Name": "t0", "Format/Datatype": "Thirty-two wide channel vectorized row major Int8 format."}],
     "TacticName": "sm80_xmma_fprop_implicit_gemm_interleaved_i8i8_i8i32_f32_nchw_vect_c_32kcrs_vect_c_32"},
    {"Name": "/classifier/Gemm", "LayerType": "CaskGemmMatrixMultiply",
     "Inputs": [{"Name": "t1", "Format/Datatype": "Row major linear FP16 format"}], "TacticName": "sm80_gemm_f16"},
    {"Name": "Reformatting CopyNode for Output Tensor 0", "LayerType": "Reformat",
     "Inputs": [{"Name": "t2", "Format/Datatype": "Half"}], "TacticName": "0x3e8"},
], "Bindings": ["input", "logits"]})


def test_layer_info_fills_the_profile_op_and_kernel_columns():
    info = trt_layers.layer_info(ENGINE_INFORMATION)
    assert trt_layers.op_and_kernel(info, "/features/1/Conv") == (
        "CaskConvolution INT8", "sm80_xmma_fprop_implicit_gemm_interleaved_i8i8_i8i32_f32_nchw_vect_c_32kcrs_vect_c_32")
    assert trt_layers.op_and_kernel(info, "/classifier/Gemm") == ("CaskGemmMatrixMultiply FP16", "sm80_gemm_f16")
    assert trt_layers.op_and_kernel(info, "not in the plan") == ("", "")
    assert trt_layers.precision_counts(info) == {"FP16": 2, "FP32": 1, "INT8": 1}
    names_only = trt_layers.layer_info(json.dumps({"Layers": ["conv1", "fc"]}))  # a plan built before DETAILED
    assert trt_layers.op_and_kernel(names_only, "conv1") == ("", "")
    assert trt_layers.precision_counts(names_only) == {"unknown": 2}


# ---------------------------------------------------------------- hardware compatibility and Jetson

def test_hardware_compat_gpu_generations():
    tc.check_hardware_compat_gpu("same_compute_capability", "7.5", integrated=False)  # Turing: NvInfer.h
    tc.check_hardware_compat_gpu("ampere_plus", "8.0", integrated=False)
    with pytest.raises(UsageError, match="Turing or newer"):
        tc.check_hardware_compat_gpu("same_compute_capability", "7.0", integrated=False)
    with pytest.raises(UsageError, match="Ampere or newer"):
        tc.check_hardware_compat_gpu("ampere_plus", "7.5", integrated=False)
    with pytest.raises(UsageError, match="Jetson"):
        tc.check_hardware_compat_gpu("ampere_plus", "8.7", integrated=True)


def test_jetson_supported_tensorrt():
    jp6 = trt_api.l4t_release("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64\n")
    jp5 = trt_api.l4t_release("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64\n")
    assert jp6 == (36, 4, 3) and jp5 == (35, 4, 1)
    assert trt_api.jetson_problem("10.3.0", jp6) is None and trt_api.jetson_problem("8.5.2.2", jp5) is None
    problem = trt_api.jetson_problem("11.4.1", jp6)
    assert "JetPack 7.2.2" in problem and "JetPack 6 (L4T R36.4.3)" in problem and "10.3" in problem
    assert trt_api.jetson_problem("11.4.1", (38, 4, 0)) is None
    assert "older than 8.5" in trt_api.jetson_problem("8.2.1", (32, 7, 1))
    assert trt_api.jetson_problem("11.4.1", None) is None  # not a Jetson
    assert trt_api.l4t_release("") is None


# ---------------------------------------------------------------- timing: warm-up is not in the GPU times

def test_protocol_tells_the_timed_function_when_warmup_ends():
    class Counted:
        def __init__(self) -> None:
            self.calls, self.at_warmup_done = 0, []

        def __call__(self) -> None:
            self.calls += 1

        def warmup_done(self) -> None:
            self.at_warmup_done.append(self.calls)

    fn = Counted()
    times, loop = time_loop(fn, Protocol(warmup_iterations=7, warmup_seconds=0, min_iterations=5, min_seconds=0))
    assert fn.at_warmup_done == [loop["warmup_iterations_run"]] and loop["warmup_iterations_run"] >= 7
    assert fn.calls - fn.at_warmup_done[0] == loop["iterations"] == len(times)
    plain, _ = time_loop(lambda: None, Protocol(warmup_iterations=1, warmup_seconds=0, min_iterations=3, min_seconds=0))
    assert len(plain) == 3  # a plain function has no warmup_done


def test_plan_key_covers_the_build_recipe():
    assert tc.TrtBuildOptions().key("fp32")["recipe"] == tc.BUILD_RECIPE >= 2


# ---------------------------------------------------------------- the bundle's modules on JetPack 5's Python

def _python38() -> str | None:
    """A Python 3.8 interpreter (JetPack 5 ships 3.8): $EDGEBENCH_PY38, python3.8, or a pyenv one."""
    import glob
    import os
    import subprocess
    candidates = [os.environ.get("EDGEBENCH_PY38"), shutil.which("python3.8"),
                  *sorted(glob.glob(str(Path.home() / ".pyenv" / "versions" / "3.8*" / "bin" / "python")))]
    for exe in filter(None, candidates):
        if subprocess.run([exe, "-c", "import sys; assert sys.version_info[:2] == (3, 8)"],
                          capture_output=True, check=False).returncode == 0:
            return exe
    return None


def test_bundle_modules_run_on_python38(tmp_path):
    """The runner and the TensorRT modules it ships import and derive the JetPack 5 recipe on Python 3.8
    (trt_engine too where that interpreter has numpy)."""
    import subprocess

    from edgebench.deploy.bundle import runner_files
    exe = _python38()
    if exe is None:
        pytest.skip("no Python 3.8 here (set EDGEBENCH_PY38)")
    if subprocess.run([exe, "-c", "import numpy"], capture_output=True, check=False).returncode != 0:
        pytest.skip(f"{exe} has no numpy, which the runner and its portable package need (set EDGEBENCH_PY38)")
    for name, src in runner_files().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, tmp_path / name)
    script = (
        "import importlib.util, json, runner\n"
        "from portable.tensorrt import api as trt_api, cuda_compat, layers as trt_layers, rules as tc\n"
        "cfg = tc.derive_build_config('int8', '8.5.2.2', qdq_available=True)\n"
        "legacy = tc.derive_build_config('int8', '8.5.2.2', legacy_calibrator=True)\n"
        "numpy = importlib.util.find_spec('numpy') is not None\n"
        "if numpy:\n    from portable.tensorrt import engine\n"
        "print(json.dumps([cfg.builder_flags, cfg.cleared_flags, cfg.explicit_batch_flag, legacy.legacy_calibrator,\n"
        "  trt_api.jetson_problem('8.5.2.2', (35, 4, 1)), cuda_compat.handle.__name__, numpy]))\n")
    proc = subprocess.run([exe, "-I", "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n" + script],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    flags, cleared, explicit_batch, legacy, problem, _handle, numpy = json.loads(proc.stdout.splitlines()[-1])
    assert (flags, cleared, explicit_batch, legacy, problem) == (["FP16", "INT8"], ["TF32"], True, True, None)
    print(f"{exe}: trt_engine imported: {numpy}")


# ---------------------------------------------------------------- why every plan clears TF32

def _tf32(t):
    """Round FP32 to TF32's 10-bit mantissa (round to nearest even; TF32 keeps FP32's exponent)."""
    import torch
    i = t.contiguous().view(torch.int32)
    return ((i + 0x0FFF + ((i >> 13) & 1)) & ~0x1FFF).view(torch.float32)


@pytest.mark.parametrize("model,weights", [("mobilenet_v3", "random"), ("tf_efficientnet_lite0", "auto"),
                                           pytest.param("resnet50", "random", marks=pytest.mark.slow)])
def test_tf32_rounding_fails_the_fp32_verification(model, weights, request, capsys):
    """Conv/Linear with TF32-rounded inputs and weights (what TensorRT's default TF32 flag allows on Ampere+)
    against FP32, measured as export/verify.py does: beyond its 1e-3, so an fp32 plan must clear TF32."""
    import torch
    import torch.nn.functional as F

    from edgebench.build.export import verification_inputs
    from edgebench.build.verify import TOLERANCES, agreement
    from edgebench.models import get_spec, load_model
    weights_dir = request.getfixturevalue("weights_dir") if weights == "auto" else None
    data = request.getfixturevalue("data_dir") if weights == "auto" else None
    net, info = load_model(get_spec(model), weights, str(weights_dir) if weights_dir else None)
    x, _source = verification_inputs(info.preprocess, data if info.trained else None)
    conv, linear = F.conv2d, F.linear
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
        try:
            F.conv2d = lambda i, w, b=None, *a, **k: conv(_tf32(i), _tf32(w), b, *a, **k)
            F.linear = lambda i, w, b=None: linear(_tf32(i), _tf32(w), b)
            out = net(torch.from_numpy(x)).numpy()
        finally:
            F.conv2d, F.linear = conv, linear
    rel_err = agreement(ref, out)["rel_err"]
    with capsys.disabled():
        print(f"\n{model} ({weights} weights): emulated TF32 relative error {rel_err:.2e} "
              f"(fp32 tolerance {TOLERANCES['fp32'].max_rel_err:.0e})")
    assert rel_err > TOLERANCES["fp32"].max_rel_err
