"""OpenVINO: the CPU device, and other devices (GPU, NPU) when present."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np

from edgebench.backends.base import Availability, EngineRequest, InputMetadata, Runtime, lazy_import
from edgebench.backends.openvino import build
from edgebench.portable.errors import RuntimeUnavailable
from edgebench.portable.layer_profile import ACT, ATTN, DENSE, DW, LINEAR, MOVE, NORM, QDQ, RUNS, SOFTMAX, layer_table

PERFORMANCE_HINT = "LATENCY"
_REPORTED = ("PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS", "INFERENCE_PRECISION_HINT",
             "EXECUTION_DEVICES")


class OpenVinoRuntime(Runtime):
    name = "openvino"
    #: OpenVINO's executed layer types (PERF_COUNT's node_type)
    #: -> the report's operator class (:mod:`edgebench.portable.layer_profile`).
    op_classes: ClassVar[dict[str, str]] = {
        **dict.fromkeys(("Convolution", "ConvolutionBackpropData"), DENSE),
        "GroupConvolution": DW,
        **dict.fromkeys(("FullyConnected", "FullyConnectedQuantizedLegacy", "FullyConnectedQuantized", "Gemm"),
                        LINEAR),
        **dict.fromkeys(("MatMul", "ScaledDotProductAttention", "MHA"), ATTN),
        "Softmax": SOFTMAX,
        **dict.fromkeys(("MVN", "NormalizeL2", "RMS"), NORM),
        **dict.fromkeys(("HSwish", "HardSigmoid", "Swish", "Sigmoid", "Gelu", "Eltwise", "Relu", "Clamp", "Math",
                         "Subgraph"), ACT),
        **dict.fromkeys(("FakeQuantize", "Convert"), QDQ),
        **dict.fromkeys(("ShuffleChannels", "Concat", "Split", "VariadicSplit", "Transpose", "Reshape", "Reorder",
                         "StridedSlice", "Gather", "Broadcast", "DepthToSpace", "SpaceToDepth"), MOVE),
    }
    colour = "#ff7f0e"
    marker = "s"
    engine_kind = "openvino"
    int8_model = "openvino"
    default_device = "CPU"

    @classmethod
    def availability_impl(cls) -> Availability:
        ov = lazy_import("openvino", "openvino")
        return Availability(cls.name, True, ov.get_version().split("-")[0], "", list(ov.Core().available_devices))

    @classmethod
    def build_engine(cls, request: EngineRequest) -> dict:
        return build.openvino_ir(request.onnx, request.folder / f"{request.precision}/openvino/model.xml",
                                 request.precision)

    def activate_impl(self) -> None:
        import openvino as ov
        options = self.options
        core = ov.Core()
        self.device = (options.device or "CPU").upper()
        if self.device not in core.available_devices:
            raise RuntimeUnavailable(f"OpenVINO device {self.device} is not present "
                                     f"(available: {', '.join(core.available_devices)})")
        model = core.read_model(str(self.engine))
        if len(options.batches) == 1:  # a static shape is what benchmark_app measures, and is faster
            shape = model.input(0).get_partial_shape()
            shape[0] = options.batches[0]
            model.reshape({model.input(0): shape})
        config: dict[str, object] = {"PERFORMANCE_HINT": PERFORMANCE_HINT}
        if options.threads and self.device == "CPU":
            config["INFERENCE_NUM_THREADS"] = options.threads
        if options.precision == "fp16":
            config["INFERENCE_PRECISION_HINT"] = "f16"
        else:  # int8: the layers left in float run FP32, not in the CPU's default (bf16 on AMX CPUs)
            config["INFERENCE_PRECISION_HINT"] = "f32"
        self.compiled = core.compile_model(model, self.device, config)
        self.request = self.compiled.create_infer_request()
        self._ov = ov
        self._core, self._model, self._config = core, model, config
        self.static_batch = options.batches[0] if len(options.batches) == 1 else None

    def input_metadata_impl(self) -> InputMetadata:
        """A static batch (one ``--batch``) takes any smaller batch too: :meth:`infer_impl` pads it."""
        port = self.compiled.input(0)
        shape = tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())
        batch = (1, self.static_batch) if self.static_batch else (1, shape[0])
        return InputMetadata(port.get_any_name(), shape, port.get_element_type().to_dtype().name, batch)

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        """A batch smaller than the static one is padded with zeros, and the padding's outputs dropped."""
        n = len(batch)
        if self.static_batch and n < self.static_batch:
            batch = np.concatenate([batch, np.zeros((self.static_batch - n, *batch.shape[1:]), batch.dtype)])
        return self.request.infer({0: batch})[0][:n].copy()

    def bind_impl(self, batch: np.ndarray) -> Callable[[], None]:
        self._bound = np.ascontiguousarray(batch)
        self.request.set_input_tensor(self._ov.Tensor(self._bound, shared_memory=True))
        return self.request.infer

    def layer_profile_impl(self, batch: np.ndarray) -> list[dict]:
        """OpenVINO's performance counters (``PERF_COUNT``) of a second compilation with the same
        configuration, over ``RUNS`` runs after one warm-up; ``op`` is the executed layer type,
        ``kernel`` the implementation and precision it ran in (``brgconv_avx512_amx_1x1_I8``, ``brgconv_avx512_f32``).
        The CPU plugin reports each counter averaged over every run so far: the warm-up is subtracted."""
        compiled = self._core.compile_model(self._model, self.device, {**self._config, "PERF_COUNT": True})
        request = compiled.create_infer_request()

        def counters() -> dict[str, tuple[str, str, float]]:
            return {p.node_name: (p.node_type, p.exec_type, p.real_time.total_seconds() * 1e3)
                    for p in request.profiling_info if p.status == p.Status.EXECUTED}

        request.infer({0: batch})
        warmup = counters()
        for _ in range(RUNS):
            request.infer({0: batch})
        total_runs = RUNS + 1
        return layer_table(((name, op, kernel, max(0.0, ms * total_runs - warmup.get(name, (op, kernel, 0.0))[2]))
                            for name, (op, kernel, ms) in counters().items()), RUNS)

    def settings(self) -> dict:
        found = {}
        for key in _REPORTED:
            try:
                value = self.compiled.get_property(key)
            except RuntimeError:
                continue
            found[key] = value if isinstance(value, (int, float, list)) else str(value)
        found["device"] = self.device
        found["static_batch"] = len(self.options.batches) == 1
        return found

    def effective_precision(self) -> str:
        """What the device really computes in: CPUs without FP16 run an FP16 request as FP32."""
        hint = str(self.compiled.get_property("INFERENCE_PRECISION_HINT")) if self.device == "CPU" else ""
        if self.options.precision == "int8":
            return "int8"
        return {"f16": "fp16", "bf16": "bf16", "f32": "fp32"}.get(hint.lower().split(".")[-1], self.options.precision)

    def deactivate_impl(self) -> None:
        self.request = None  # type: ignore[assignment]
        self.compiled = None  # type: ignore[assignment]
