"""torch -> ONNX with the TorchScript-based exporter, dynamic batch, onnx checker.

The dynamo exporter was measured to silently fix the batch at 1 (vit_b_16), fail
(swin_t) unless the example batch is >=2, and ignore opset 17; the legacy
exporter exported every registry model with a working dynamic batch, so it is
the one used here.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import torch
from torch import nn

from edgebench.build.onnx_check import check_onnx
from edgebench.models.complexity import unfused_attention
from edgebench.portable.errors import ExportError, UsageError, one_line

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
EXPORTER = "torch.onnx.export(dynamo=False)"
MIN_OPSET = 17


def export_onnx(model: nn.Module, input_shape: tuple[int, int, int], path: Path, opset: int = MIN_OPSET) -> dict:
    """Export ``model`` to ``path`` with a dynamic batch axis; return what was done."""
    if opset < MIN_OPSET:
        raise UsageError(f"opset {opset} is too old; edgebench exports opset {MIN_OPSET} or newer")
    example = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    partial = path.with_name(f".{path.name}.partial")  # renamed when whole: a failed export leaves no model.onnx
    try:
        with warnings.catch_warnings(), torch.no_grad(), unfused_attention():
            warnings.simplefilter("ignore")
            torch.onnx.export(model.eval(), (example,), str(partial), dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                              do_constant_folding=True)
        seconds = time.perf_counter() - start
        graph = check_onnx(partial)
        partial.replace(path)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - exporter errors come in many types
        raise ExportError(f"ONNX export failed: {one_line(exc, with_type=True)}") from None
    finally:
        partial.unlink(missing_ok=True)
    return {"exporter": EXPORTER, "opset": opset, "seconds": round(seconds, 2), "nodes": len(graph.graph.node),
            "dynamic_batch": True}
