"""ExecuTorch (XNNPACK delegate) on the CPU, through ``executorch.runtime.Runtime``.

XNNPACK runs the kernels it runs on phones (x86-64 builds up to AVX-512, ARM64 NEON/dotprod),
so this is the measurable stand-in for "mobile". The Python runtime takes torch tensors: a
process measuring it holds torch as well (its ``after_import`` memory says so), which the C++
``executor_runner`` on a device does not.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np

from edgebench.backends.base import Availability, EngineRequest, InputMetadata, Runtime, lazy_import
from edgebench.backends.executorch import export
from edgebench.backends.executorch.export import OPERATORS_FILE
from edgebench.backends.executorch.native_log import native_log, reason
from edgebench.portable.errors import UsageError
from edgebench.portable.layer_profile import ACT, ATTN, DENSE, MOVE, NORM, QDQ, RUNS, SOFTMAX, UNMAPPED, layer_table

BACKEND = "XnnpackBackend"
#: ETDump events that wrap or sum others (the per-op events are kept).
_WRAPPERS = {"OPERATOR_CALL", "DELEGATE_CALL", "Method::execute", "Method::init", "Program::load_method"}
_XNN_EVENT = re.compile(r"^(?P<op>.*?) \((?P<layout>[^)]*)\)\s*(?P<impl>.*?)\s*#\d+$")


class ExecuTorchRuntime(Runtime):
    name = "executorch"
    #: XNNPACK's operator names (its profiler has no debug handles) and the portable kernels' names
    #: -> the report's operator class (:mod:`edgebench.portable.layer_profile`).
    op_classes: ClassVar[dict[str, str]] = {
        "Convolution": DENSE,  # DWConv kernels: depthwise, below
        "Fully Connected": UNMAPPED,  # a linear layer or a 1x1 conv: the build's map says which (``source``), below
        "Batch Matrix Multiply": ATTN,
        "Softmax": SOFTMAX,
        **dict.fromkeys(("native_layer_norm.out", "native_group_norm.out"), NORM),
        **dict.fromkeys(("HardSwish", "GELU", "Sigmoid", "Clamp", "Tanh", "SiLU", "ELU", "Leaky ReLU", "Multiply",
                         "gelu.out", "hardswish.out", "sigmoid.out"), ACT),
        "Convert": QDQ,
        **dict.fromkeys(("Transpose", "Copy", "Constant Pad", "Concatenate", "Even Split", "Slice", "Static Reshape",
                         "_to_dim_order_copy.out", "view_copy.out", "expand_copy.out", "select_copy.int_out",
                         "slice_copy.Tensor_out", "cat.out", "permute_copy.out", "clone.out", "split_copy.Tensor_out",
                         "split_with_sizes_copy.out", "unsqueeze_copy.out", "squeeze_copy.dims_out"), MOVE),
    }
    colour = "#9467bd"
    marker = "P"
    engine_kind = "executorch"
    int8_model = "executorch"  # its own PT2E .pte (quantize_int8), from the shared calibration split
    build_format = 2  # 2: zero-width pads dropped, run at batch 1 and its bound, operators.json beside the .pte

    @classmethod
    def availability_impl(cls) -> Availability:
        et_version = lazy_import("executorch.version", "executorch",
                                 "pip install 'edgebench[executorch]' (make setup-executorch)")
        import torch
        version = et_version.__version__.split("+")[0]
        try:  # the prebuilt extension is linked against one torch: a wrong pairing fails here
            from executorch.runtime import Runtime as EtRuntime
            backends = EtRuntime.get().backend_registry.registered_backend_names
        except (ImportError, OSError, RuntimeError) as exc:
            return Availability(cls.name, False, version,
                                f"executorch {version} does not load with torch {torch.__version__} "
                                f"({str(exc).splitlines()[0][:200]}); install the torch it was built for "
                                "(constraints.txt pins the pair)")
        if BACKEND not in backends:
            return Availability(cls.name, False, version, f"this executorch build has no {BACKEND}")
        return Availability(cls.name, True, version, "", ["cpu"])

    @classmethod
    def build_engine(cls, request: EngineRequest) -> dict:
        if request.precision != "fp32":
            raise UsageError(f"executorch builds FP32 programs here (INT8 through calibration); not "
                             f"{request.precision}")
        return export.fp32_program(request.manifest, request.folder, request.input_shape, request.status)

    @classmethod
    def quantize_int8(cls, request: EngineRequest) -> dict:
        return export.int8_program(request.manifest, request.folder, request.input_shape, request.calibration,
                                   request.options or {}, request.status)

    def activate_impl(self) -> None:
        import torch
        from executorch.extension.pybindings import portable_lib
        from executorch.runtime import Runtime as EtRuntime
        threads = self.options.threads or os.cpu_count() or 1
        portable_lib._unsafe_reset_threadpool(threads)  # XNNPACK's pthreadpool; the default is every core
        self._torch, self._lib = torch, portable_lib
        try:
            with native_log() as lines:
                self.program = EtRuntime.get().load_program(Path(self.engine))
                self.method = self.program.load_method("forward")
        except RuntimeError as exc:  # the reason is only in the C++ log (an XNNPACK node it cannot create)
            raise RuntimeError(f"{Path(self.engine).name}: {reason(lines, exc)}") from None
        self.capacity = self.method.metadata.input_tensor_meta(0).sizes()[0]

    def input_metadata_impl(self) -> InputMetadata:
        """Any batch: one above the program's bound runs in chunks (the timed loop's :meth:`bind_impl` refuses it)."""
        sizes = tuple(self.method.metadata.input_tensor_meta(0).sizes())
        return InputMetadata("forward input 0", (None, *sizes[1:]), "float32")

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        """Batches above the program's bound run in chunks (verification, evaluation): shufflenet_v2's lowering
        keeps a bound of 2, so its batch-8 verification runs four chunks."""
        x = self._torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        outs = [self.method.execute([x[i:i + self.capacity]])[0] for i in range(0, len(x), self.capacity)]
        return self._torch.cat(outs).numpy()

    def bind_impl(self, batch: np.ndarray) -> Callable[[], None]:
        """The timed loop runs one ``execute`` per batch, never chunks: a batch above the bound is refused."""
        if len(batch) > self.capacity:
            raise UsageError(f"{self.engine} takes batches up to {self.capacity} (ExecuTorch plans memory for a "
                             f"bounded batch), not {len(batch)}")
        self._bound = [self._torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))]
        method, inputs = self.method, self._bound
        return lambda: method.execute(inputs)

    def layer_profile_impl(self, batch: np.ndarray) -> list[dict]:
        """ETDump of a second load with profiling on, read by the devtools Inspector: XNNPACK's per-operator
        events (``op`` the XNNPACK operator, ``kernel`` its layout, type and implementation: ``NHWC, QS8 IGEMM``
        is INT8, ``NHWC, F32 ...`` float) and ExecuTorch's portable kernels for what was not delegated, over
        ``RUNS`` runs after one warm-up. "Fully Connected" rows say which graph node they ran (``node``,
        ``source``: a linear layer or a 1x1 convolution), from the map the build wrote beside the ``.pte``."""
        from executorch.devtools import Inspector
        from executorch.runtime import Runtime as EtRuntime
        program = EtRuntime.get().load_program(Path(self.engine), enable_etdump=True)
        method = program.load_method("forward")
        x = [self._torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))]
        for _ in range(RUNS + 1):
            method.execute(x)
        with tempfile.TemporaryDirectory(prefix="edgebench-etdump.") as scratch:
            etdump = str(Path(scratch) / "profile.etdp")
            program.write_etdump_result_to_file(etdump, str(Path(scratch) / "debug.bin"))
            inspector = Inspector(etdump_path=etdump)
        events = [event for block in inspector.event_blocks if block.name == "Execute" for event in block.events
                  if event.name not in _WRAPPERS and event.perf_data and len(event.perf_data.raw) > 1]
        ops = [_op_kernel(event.name, event.is_delegated_op) for event in events]
        origins = paired_fully_connected(Path(self.engine), ops)
        samples, seen = [], set()
        for i, (event, (op, kernel)) in enumerate(zip(events, ops)):
            name = event.name if event.name not in seen else f"{event.name} [{i}]"
            seen.add(name)
            samples.append((name, op, kernel, float(sum(event.perf_data.raw[1:])), origins.get(i)))
        return layer_table(samples, RUNS)

    def settings(self) -> dict:
        return {"device": "cpu", "delegate": BACKEND, "threads": self._lib._threadpool_get_thread_count(),
                "batch_capacity": self.capacity}

    def deactivate_impl(self) -> None:
        self.method = None  # type: ignore[assignment]
        self.program = None  # type: ignore[assignment]


def paired_fully_connected(pte: Path, ops: list[tuple[str, str]]) -> dict[int, dict]:
    """Event index -> ``{node, source}`` for the "Fully Connected" events among ``ops`` (each event's (op, kernel)),
    paired in order with the build's map (XNNPACK's profiler gives no debug handle: delegate_debug_id is -1).
    Paired only where the counts agree and every pair agrees on float vs quantized kernels; otherwise nothing is
    attributed."""
    path = pte.with_name(OPERATORS_FILE)
    if not path.is_file():
        return {}
    built = json.loads(path.read_text())["fully_connected"]
    found = [(i, "F32" not in kernel.replace(",", " ").split()) for i, (op, kernel) in enumerate(ops)
             if op == "Fully Connected"]
    if len(found) != len(built) or any(quantized != o["quantized"] for (_i, quantized), o in zip(found, built)):
        return {}
    return {i: {"node": o["node"], "source": o["source"]} for (i, _quantized), o in zip(found, built)}


def _op_kernel(event: str, delegated: bool) -> tuple[str, str]:
    """(op, kernel) of an ETDump event: ``Convolution (NHWC, QS8) IGEMM #3`` -> (Convolution, NHWC, QS8 IGEMM);
    ``native_call_add.out`` -> (add.out, portable)."""
    found = _XNN_EVENT.match(event) if delegated else None
    if found:
        return found["op"], f"{found['layout']} {found['impl']}".strip()
    return event.removeprefix("native_call_"), "portable"
