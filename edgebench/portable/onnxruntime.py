"""ONNX Runtime session options: one definition for the host runtime and the device runner's fallback."""

from __future__ import annotations

GRAPH_OPTIMIZATION = "ORT_ENABLE_ALL"


def session_options(ort, threads: int | None):
    """Full graph optimisation, ``threads`` intra-op threads, one inter-op thread, sequential
    execution (``ort``: the imported onnxruntime module)."""
    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPTIMIZATION)
    if threads:
        so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return so


def session_settings(session, so, device: str) -> dict:
    """What a record says about an ORT session."""
    return {
        "providers": session.get_providers(),
        "device": device,
        "intra_op_num_threads": so.intra_op_num_threads,
        "inter_op_num_threads": so.inter_op_num_threads,
        "graph_optimization_level": GRAPH_OPTIMIZATION,
        "execution_mode": "sequential",
    }
