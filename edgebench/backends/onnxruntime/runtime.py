"""ONNX Runtime: the CPU execution provider, or CUDA / TensorRT EPs when the build has them."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np

from edgebench.backends.base import Availability, EngineRequest, InputMetadata, Runtime, lazy_import
from edgebench.backends.onnxruntime import build
from edgebench.backends.onnxruntime.graph import conv_groups, profile_key
from edgebench.portable.errors import RuntimeUnavailable
from edgebench.portable.layer_profile import ACT, ATTN, DENSE, LINEAR, MOVE, NORM, QDQ, RUNS, SOFTMAX, layer_table
from edgebench.portable.onnxruntime import session_options, session_settings

log = logging.getLogger(__name__)

# Device name -> execution provider, best first for device "auto".
PROVIDERS = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider",
             "cpu": "CPUExecutionProvider"}


def _layer_facts(name: str, args: dict, groups: dict[str, dict]) -> dict:
    """A profiled node's input ``shapes`` (from the event's ``input_type_shape``: a squeeze-excitation Mul
    has an ``[N, C, 1, 1]`` input) and, for a conv, its ``conv_group`` (depthwise or dense)."""
    shapes = [next(iter(t.values()), []) for t in args.get("input_type_shape") or [] if isinstance(t, dict)]
    return {**({"shapes": shapes} if shapes else {}), **groups.get(profile_key(name), {})}


_ONNX_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
                "tensor(uint8)": "uint8", "tensor(int8)": "int8", "tensor(int64)": "int64"}

class OnnxRuntime(Runtime):
    name = "ort"
    #: ONNX Runtime's node op types (session profiling's op_name)
    #: -> the report's operator class (:mod:`edgebench.portable.layer_profile`).
    op_classes: ClassVar[dict[str, str]] = {
        **dict.fromkeys(("Conv", "FusedConv", "QLinearConv", "ConvInteger", "NhwcFusedConv", "NhwcConv"), DENSE),
        **dict.fromkeys(("MatMul", "FusedMatMul", "QLinearMatMul", "MatMulInteger", "MatMulIntegerToFloat",
                         "DynamicQuantizeMatMul"), LINEAR),
        **dict.fromkeys(("Gemm", "QGemm", "FusedGemm"), LINEAR),
        **dict.fromkeys(("Attention", "MultiHeadAttention", "QAttention"), ATTN),
        **dict.fromkeys(("Softmax", "QLinearSoftmax", "LogSoftmax"), SOFTMAX),
        **dict.fromkeys(("LayerNormalization", "SkipLayerNormalization", "SimplifiedLayerNormalization",
                         "QLinearLayerNormalization"), NORM),
        **dict.fromkeys(("HardSwish", "HardSigmoid", "Sigmoid", "QLinearSigmoid", "QuickGelu", "Gelu", "BiasGelu",
                         "FastGelu", "Erf", "Relu", "Clip", "LeakyRelu", "QLinearLeakyRelu", "Tanh", "Mul",
                         "QLinearMul"), ACT),
        **dict.fromkeys(("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"), QDQ),
        **dict.fromkeys(("Transpose", "Reshape", "Concat", "QLinearConcat", "Split", "Slice", "Gather", "Squeeze",
                         "Unsqueeze", "Flatten", "Expand", "Tile", "ReorderInput", "ReorderOutput", "Shape",
                         "Identity", "DepthToSpace", "SpaceToDepth"), MOVE),
    }
    colour = "#1f77b4"
    marker = "o"
    engine_kind = "onnx"
    int8_model = "ort"

    @classmethod
    def availability_impl(cls) -> Availability:
        ort = lazy_import("onnxruntime", "ort")
        eps = ort.get_available_providers()
        devices = [dev for dev, ep in PROVIDERS.items() if ep in eps]
        return Availability(cls.name, True, ort.__version__, "", devices)

    @classmethod
    def build_engine(cls, request: EngineRequest) -> dict:
        if request.precision == "fp32":
            optimized = request.folder / "fp32/model.ort-optimized.onnx"
            info = build.ort_optimized(request.onnx, optimized)
            return {**info, "files": [request.onnx, optimized]}  # the runtime loads the first file
        return {"tool": "the FP16 ONNX as it is", "files": [request.sources["fp16"]]}

    @classmethod
    def engine_sources(cls, precision: str, options: object = None) -> tuple[str, ...]:
        return ("fp16",) if precision == "fp16" else ()

    def activate_impl(self) -> None:
        import onnxruntime as ort
        available = ort.get_available_providers()
        device = self.options.device or "cpu"
        if device == "auto":
            device = next(dev for dev, ep in PROVIDERS.items() if ep in available)
        if device not in PROVIDERS:
            raise RuntimeUnavailable(f"ONNX Runtime has no device {device!r}; choose one of {', '.join(PROVIDERS)}")
        if PROVIDERS[device] not in available:
            raise RuntimeUnavailable(f"this onnxruntime build has no {PROVIDERS[device]} "
                                     f"(available: {', '.join(available)})")
        self.device = device
        so = self._make_session_options()
        providers = [PROVIDERS[device]] + (["CPUExecutionProvider"] if device != "cpu" else [])
        self.session = ort.InferenceSession(str(self.engine), so, providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self._session_options = so

    def input_metadata_impl(self) -> InputMetadata:
        meta = self.session.get_inputs()[0]
        shape = tuple(d if isinstance(d, int) and d > 0 else None for d in meta.shape)
        dtype = _ONNX_DTYPES.get(meta.type, meta.type)
        return InputMetadata(meta.name, shape, dtype, (1, None) if shape[0] is None else (shape[0], shape[0]))

    def _make_session_options(self):
        """The session options every session of this runtime uses (the measured one, the profiled one)."""
        import onnxruntime as ort
        return session_options(ort, self.options.threads)

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: batch})[0]

    def bind_impl(self, batch: np.ndarray) -> Callable[[], None]:
        binding = self.session.io_binding()
        binding.bind_cpu_input(self.input_name, np.ascontiguousarray(batch))
        binding.bind_output(self.output_name)
        return lambda: self.session.run_with_iobinding(binding)

    def layer_profile_impl(self, batch: np.ndarray) -> list[dict]:
        """ORT's session profiling (``enable_profiling``) on a second session with the same options: kernel
        time per node over ``RUNS`` runs after one warm-up; ``op`` is the kernel ORT ran (``QLinearConv``
        is INT8, ``Conv`` float), ``kernel`` its execution provider."""
        import onnxruntime as ort
        with tempfile.TemporaryDirectory(prefix="edgebench-ort-profile.") as scratch:
            so = self._make_session_options()
            so.enable_profiling = True
            so.profile_file_prefix = str(Path(scratch) / "ort")
            session = ort.InferenceSession(str(self.engine), so, providers=self.session.get_providers())
            for _ in range(RUNS + 1):
                session.run([self.output_name], {self.input_name: batch})
            events = json.loads(Path(session.end_profiling()).read_text())
        nodes = [e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")]
        first_run = len(nodes) // (RUNS + 1)  # the warm-up run's nodes come first
        groups = conv_groups(self.engine)
        return layer_table(((e["name"].removesuffix("_kernel_time"), e["args"].get("op_name", ""),
                             e["args"].get("provider", ""), e["dur"] / 1e3,
                             _layer_facts(e["name"], e["args"], groups)) for e in nodes[first_run:]), RUNS)

    def settings(self) -> dict:
        return session_settings(self.session, self._session_options, self.device)

    def effective_precision(self) -> str:
        """The CPU provider has no FP16 compute kernels on x86: it casts FP16 nodes back to FP32."""
        if self.options.precision == "fp16" and self.device == "cpu":
            return "fp32"
        return self.options.precision

    def deactivate_impl(self) -> None:
        self.session = None  # type: ignore[assignment]
