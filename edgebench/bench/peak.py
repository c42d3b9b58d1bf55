"""This machine's attainable compute: a large FP32 GEMM and an INT8 GEMM through ONNX Runtime.

A model's GMACs / p50 is only meaningful against what the same CPU, runtime and thread count
reach on the friendliest workload: one big square matrix product (``MatMul`` in FP32,
``MatMulInteger`` u8 x s8 -> s32 in INT8, the kernels ORT's INT8 convolutions also run on).
Each is a ``kind: "peak"`` record (``gmacs_per_s`` from the median of the timed runs), measured
with the noise probe before and after, as the model latencies are.
"""

from __future__ import annotations

import time

import numpy as np

from edgebench.bench.noise import probe
from edgebench.results.records import PeakRecord

SIZE = 1024  # 1.07 GMAC per product: ~10-40 ms on 2 cores, well past the caches


def _gemm_model(precision: str, size: int):
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    if precision == "fp32":
        a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [size, size])
        b = numpy_helper.from_array(rng.standard_normal((size, size), dtype=np.float32), "b")
        node = helper.make_node("MatMul", ["a", "b"], ["y"])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [size, size])
    else:
        a = helper.make_tensor_value_info("a", TensorProto.UINT8, [size, size])
        b = numpy_helper.from_array(rng.integers(-128, 127, (size, size), dtype=np.int8), "b")
        node = helper.make_node("MatMulInteger", ["a", "b"], ["y"])
        y = helper.make_tensor_value_info("y", TensorProto.INT32, [size, size])
    graph = helper.make_graph([node], f"gemm_{precision}", [a], [y], initializer=[b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def measure_peak(threads: int, precision: str, size: int = SIZE, min_seconds: float = 2.0,
                 min_iterations: int = 10) -> dict:
    """One ``peak`` record: GMAC/s of a ``size``-cubed GEMM in ``precision`` through ONNX Runtime."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    session = ort.InferenceSession(_gemm_model(precision, size).SerializeToString(), so,
                                   providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    a = (rng.standard_normal((size, size), dtype=np.float32) if precision == "fp32"
         else rng.integers(0, 255, (size, size), dtype=np.uint8))
    before = probe(threads)
    for _ in range(3):
        session.run(None, {"a": a})
    times: list[float] = []
    begin = time.perf_counter()
    while len(times) < min_iterations or time.perf_counter() - begin < min_seconds:
        t0 = time.perf_counter()
        session.run(None, {"a": a})
        times.append((time.perf_counter() - t0) * 1e3)
    after = probe(threads)
    p50 = float(np.median(times))
    macs = size ** 3
    return PeakRecord(
        model={"name": f"gemm-{size}"}, precision=precision, threads=threads,
        runtime={"name": "ort", "version": ort.__version__}, extra=dict(
        gemm={"m": size, "n": size, "k": size, "op": "MatMul" if precision == "fp32" else "MatMulInteger u8s8"},
        gmacs_per_s=macs / (p50 / 1e3) / 1e9, best_gmacs_per_s=macs / (min(times) / 1e3) / 1e9,
        latency_ms={"p50": p50, "min": float(min(times)), "max": float(max(times)), "iterations": len(times)},
        stability={"verdict": "unstable" if before["bad"] or after["bad"] else "stable",
                   "before": before, "after": after})).to_dict()

