"""ExecuTorch programs: the PyTorch model -> ``torch.export`` -> XNNPACK lowering -> ``.pte``.

ExecuTorch starts from the PyTorch model, not the ONNX: the model is rebuilt from the artifact
manifest (the weights the ONNX was exported from). The batch is dynamic, bounded by ``MAX_BATCH``:
ExecuTorch plans memory for an upper bound, and the lowering may narrow it (mobilenet_v3 asks
for 32 and gets 15), so the bound the program really has is read back and recorded. Where the
dynamic program leaves compute to ExecuTorch's portable kernels (XNNPACK takes no ceil-mode max-pool
with a dynamic shape: squeezenet1_1's three pools), a static batch-1 program is lowered as well and
kept if XNNPACK takes more of it; the build records which (``batch``). Every program is run once at
batch 1 and at its bound before it is kept: a dynamic one that fails there (shufflenet_v2 keeps a
delegate output static at the example's batch of 2) gives way to the static batch-1 program.

INT8 is PT2E (``prepare_pt2e`` / ``convert_pt2e`` with ``XNNPACKQuantizer``: symmetric per-channel
weights, per-tensor activations), calibrated on the shared seeded calibration images, with the
same layers left in float as the ONNX recipes (squeeze-and-excitation blocks, a fully connected
classifier). The quantized graph is lowered to XNNPACK's QS8 kernels like the FP32 one.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import re
import time
import traceback
from pathlib import Path

import numpy as np

from edgebench.backends.executorch.native_log import native_log, reason
from edgebench.portable.errors import ExportError, UsageError

MAX_BATCH = 32
PTE_FILE = "model.pte"
#: Beside the ``.pte``: the graph nodes behind XNNPACK's "Fully Connected" operators, for the per-layer profile.
OPERATORS_FILE = "operators.json"
CALIBRATION_BATCH = 16
#: Modules left in float, by class name: their gate scales whole feature maps (as quantize.ort_quant).
SQUEEZE_EXCITATION = re.compile(r"SqueezeExcit|SEModule|SELayer|EffectiveSE")
#: Ops left outside XNNPACK that only move or relabel memory (the dim-order copies, the classifier's flatten).
LAYOUT_OPS = frozenset({"dim_order_ops__to_dim_order_copy_default", "aten_view_copy_default"})
#: Where a failure is located in the model's own code rather than in torch or executorch.
MODEL_CODE = re.compile(r"/(torchvision/models|timm/(models|layers)|edgebench/models)/")


def _example(input_shape: tuple[int, ...]):
    import torch
    return torch.randn(2, *input_shape)  # a batch of 2: a batch-1 example would specialise the batch to 1


def _dynamic_batch():
    import torch
    return ({0: torch.export.Dim("batch", min=1, max=MAX_BATCH)},)


def failure(stage: str, model: str, exc: BaseException) -> ExportError:
    """One line: the stage (torch.export, XNNPACK lowering, ...), the first line of the error, and where in
    the model's own code it was raised (the innermost frame in torchvision/timm/edgebench models)."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    message = lines[0][:240] if lines else type(exc).__name__
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if MODEL_CODE.search(f.filename)]
    found = re.findall(r'File "([^"]+)", line (\d+), in (\w+)', str(exc))
    where = ""
    if frames:
        f = frames[-1]
        where = f" (at {MODEL_CODE.split(f.filename)[-1]}:{f.lineno} in {f.name})"
    elif any(MODEL_CODE.search(path) for path, _line, _fn in found):
        path, line, fn = [x for x in found if MODEL_CODE.search(x[0])][-1]
        where = f" (at {MODEL_CODE.split(path)[-1]}:{line} in {fn})"
    return ExportError(f"{model}: {stage} failed: {type(exc).__name__}: {message}{where}")


def delegation(program) -> dict:
    """What XNNPACK took: delegated subgraphs and nodes, and the ops left to ExecuTorch's portable kernels."""
    from executorch.devtools.backend_debug import get_delegation_info
    info = get_delegation_info(program.exported_program().graph_module)
    frame = info.get_operator_delegation_dataframe()
    left = {row.op_type: int(row.occurrences_in_non_delegated_graphs) for row in frame.itertuples()
            if row.op_type not in ("Total", "getitem", "sym_size") and row.occurrences_in_non_delegated_graphs}
    return {"subgraphs": info.num_delegated_subgraphs, "delegated_nodes": info.num_delegated_nodes,
            "non_delegated_nodes": info.num_non_delegated_nodes, "not_delegated_ops": left}


def portable_compute(delegated: dict) -> int:
    """Nodes left to ExecuTorch's portable kernels that compute (not the layout copies and views)."""
    return sum(n for op, n in delegated["not_delegated_ops"].items() if op not in LAYOUT_OPS)


def fully_connected_origins(edge) -> list[dict]:
    """The nodes XNNPACK runs as its "Fully Connected" operator, in execution order (delegates in call order,
    nodes in each delegate's order): linear layers and the unstrided, unpadded 1x1 convolutions XNNPACK rewrites
    to a GEMM. Its profiler names only the operator ("Fully Connected (NC, F32) GEMM #3"), so without this map
    mobilenet_v2's pointwise convolutions (74 % of its FP32 time) read as linear layers. Each entry: the node,
    its source (``linear``, ``conv 1x1``, or ``conv 1x1 on a 1x1 map``: squeeze-excitation), whether it is
    quantized. A graph this cannot read gives an empty map (the profile then attributes nothing), never a failed
    build."""
    graph = edge.exported_program().graph_module
    delegates = [getattr(graph, n.args[0].target, None) for n in graph.graph.nodes
                 if n.op == "call_function" and "executorch_call_delegate" in str(n.target)]
    if not all(hasattr(d, "original_module") for d in delegates):
        return []
    origins = []
    for delegate in delegates:
        for inner in delegate.original_module.graph.nodes:
            source = _fully_connected_source(inner)
            if source:
                weight = inner.args[1]
                origins.append({"node": _module_path(inner) or inner.name, "source": source,
                                "quantized": "dequantize" in str(getattr(weight, "target", ""))})
    return origins


def _fully_connected_source(node) -> str | None:
    target = str(node.target)
    if node.op != "call_function":
        return None
    if "aten.linear" in target:
        return "linear"
    if "aten.convolution" not in target:
        return None
    x, weight = (getattr(a, "meta", {}).get("val") for a in node.args[:2])
    stride, padding, groups = node.args[3], node.args[4], node.args[8]
    if weight is None or tuple(weight.shape[2:]) != (1, 1) or groups != 1 or set(stride) != {1} or any(padding):
        return None  # a strided or padded 1x1 conv stays an XNNPACK Convolution (IGEMM), measured
    return "conv 1x1 on a 1x1 map" if x is not None and tuple(x.shape[2:]) == (1, 1) else "conv 1x1"


def _module_path(node) -> str:
    paths = _module_paths(node)
    return paths[-1] if paths else ""


def operator_map(pte: Path, origins: list[dict]) -> Path:
    """Write the "Fully Connected" origins beside ``pte``; the runtime's profile reads them back."""
    path = pte.with_name(OPERATORS_FILE)
    path.write_text(json.dumps({"fully_connected": origins}, indent=1))
    return path


def checked_bound(pte: Path, model: str, input_shape: tuple[int, ...]) -> int:
    """Load the method once, run it at batch 1 and at the batch bound its memory was planned for, and return the
    bound. XNNPACK compiles its subgraphs at init, so a node the partitioner took but XNNPACK rejects fails only
    here (quantized swin_t: "Failed to create StaticConstantPad node 179 with code: xnn_status_invalid_parameter");
    and a dynamic program can keep a delegate output static at the export example's batch (shufflenet_v2's
    channel split and concat: "Attempted to resize a static tensor. Expected shape (2, 116, 28, 28), but received
    (1, ...)"), which fails only at execute. The reason is only in the C++ log, so that is read back."""
    import torch
    from executorch.runtime import Runtime
    stage = "XNNPACK init"
    try:
        with native_log() as lines:
            method = Runtime.get().load_program(pte).load_method("forward")
            bound = method.metadata.input_tensor_meta(0).sizes()[0]
            for batch in sorted({1, bound}):
                stage = f"execute at batch {batch} (the program's bound is {bound})"
                method.execute([torch.zeros(batch, *input_shape)])
        return bound
    except RuntimeError as exc:
        pte.unlink()
        raise ExportError(f"{model}: {stage} failed: {reason(lines, exc)}") from None


def lower(exported, model: str, out: Path, input_shape: tuple[int, ...], status) -> dict:
    """XNNPACK lowering of an exported program, written to ``out``; the build facts."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    status("ExecuTorch: lowering to XNNPACK")
    t0 = time.perf_counter()
    try:
        edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
        delegated = delegation(edge)
        program = edge.to_executorch()
    except Exception as exc:  # noqa: BLE001 - one line per model in a sweep, never a traceback
        raise failure("XNNPACK lowering", model, exc) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(program.buffer)
    return {"lower_seconds": round(time.perf_counter() - t0, 2), "delegation": delegated,
            "fully_connected": fully_connected_origins(edge),
            "batch_capacity": checked_bound(out, model, input_shape)}


def export_program(model, input_shape: tuple[int, ...], name: str, status, dynamic: bool = True):
    """``torch.export`` with a dynamic batch (or a static batch of 1), without its no-op pads; a model it cannot
    trace is one ExportError line. Returns the program and how many pads were dropped."""
    import torch
    status(f"ExecuTorch: torch.export ({'dynamic batch' if dynamic else 'static batch 1'})")
    try:
        with torch.no_grad():
            if dynamic:
                exported = torch.export.export(model, (_example(input_shape),), dynamic_shapes=_dynamic_batch())
            else:
                exported = torch.export.export(model, (_example(input_shape)[:1],))
    except Exception as exc:  # noqa: BLE001 - one line per model in a sweep, never a traceback
        raise failure("torch.export", name, exc) from None
    return exported, drop_noop_pads(exported)


def drop_noop_pads(exported) -> int:
    """Remove pads of zero width (swin_t pads every window partition and patch merging to a multiple that a
    224 input already is). They are copies in FP32; in a PT2E graph the partitioner hands XNNPACK a pad with a
    quantized input and a float output, which XNNPACK refuses at init ("Failed to create StaticConstantPad node
    ... xnn_status_invalid_parameter"), so quantized swin_t did not load."""
    import torch
    pads = {torch.ops.aten.pad.default, torch.ops.aten.constant_pad_nd.default}
    graph = exported.graph_module.graph
    noop = [n for n in graph.nodes if n.op == "call_function" and n.target in pads
            and all(isinstance(w, int) and w == 0 for w in n.args[1])]
    for node in noop:
        node.replace_all_uses_with(node.args[0])
        graph.erase_node(node)
    if noop:
        exported.graph_module.recompile()
    return len(noop)


def lowered_program(model, input_shape: tuple[int, ...], name: str, out: Path, status) -> dict:
    """The dynamic-batch program, or the static batch-1 one where XNNPACK takes more compute of it."""
    exported, pads = export_program(model, input_shape, name, status)
    return {**_dynamic_or_static(model, exported, input_shape, name, out, status), "noop_pads_dropped": pads}


def _dynamic_or_static(model, exported, input_shape: tuple[int, ...], name: str, out: Path, status) -> dict:
    try:
        dynamic = lower(exported, name, out, input_shape, status)
    except ExportError as exc:  # the static program may still load (and is the only one then)
        static = lower(export_program(model, input_shape, name, status, dynamic=False)[0], name, out, input_shape,
                       status)
        return {**static, "batch": {"dynamic": False, "static": 1, "asked": [1, MAX_BATCH],
                                    "why": f"the dynamic-batch program failed: {exc}"}}
    batch = {"dynamic": True, "asked": [1, MAX_BATCH],
             "portable_compute_nodes": portable_compute(dynamic["delegation"])}
    if not batch["portable_compute_nodes"]:
        return {**dynamic, "batch": batch}
    staged = out.with_name("static-" + out.name)
    try:
        static = lower(export_program(model, input_shape, name, status, dynamic=False)[0], name, staged, input_shape,
                       status)
    except ExportError as exc:
        return {**dynamic, "batch": {**batch, "static_tried": {"error": str(exc)}}}
    tried = {"portable_compute_nodes": portable_compute(static["delegation"]),
             "delegated_nodes": static["delegation"]["delegated_nodes"]}
    if tried["portable_compute_nodes"] < batch["portable_compute_nodes"]:
        staged.replace(out)
        return {**static, "lower_seconds": round(dynamic["lower_seconds"] + static["lower_seconds"], 2),
                "batch": {"dynamic": False, "static": 1, "asked": [1, MAX_BATCH],
                          "why": f"the dynamic-batch program left {batch['portable_compute_nodes']} compute nodes "
                                 f"to portable kernels, the static one {tried['portable_compute_nodes']}",
                          "dynamic_delegation": dynamic["delegation"]}}
    staged.unlink()
    return {**dynamic, "lower_seconds": round(dynamic["lower_seconds"] + static["lower_seconds"], 2),
            "batch": {**batch, "static_tried": tried}}


def fp32_program(manifest: dict, folder: Path, input_shape: tuple[int, ...], status) -> dict:
    """The FP32 ``.pte`` of the manifest's model, fully XNNPACK-lowered where XNNPACK takes the ops."""
    import torch

    from edgebench.models.rebuild import model_from_manifest  # noqa: PLC0415 - torch: a name lookup needs none
    name = manifest["model"]["name"]
    t0 = time.perf_counter()
    out = folder / "fp32" / "executorch" / PTE_FILE
    built = lowered_program(model_from_manifest(manifest), input_shape, name, out, status)
    files = [out, operator_map(out, built.pop("fully_connected"))]
    return {"tool": "torch.export + executorch.exir.to_edge_transform_and_lower(XnnpackPartitioner)",
            "torch": torch.__version__, "seconds": round(time.perf_counter() - t0, 2), **built, "files": files}


def fragile_modules(model) -> dict[str, str]:
    """Modules left in float, as the ONNX recipes leave their nodes: squeeze-and-excitation blocks and a fully
    connected classifier (the last ``nn.Linear`` giving the logits; a conv classifier stays quantized)."""
    from torch import nn
    found = {name: "squeeze-excitation block" for name, m in model.named_modules()
             if name and SQUEEZE_EXCITATION.search(type(m).__name__)}
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if linears:
        name, last = linears[-1]
        if last.out_features == getattr(model, "num_classes", 1000):
            found[name] = "fully connected classifier"
    return {k: v for k, v in found.items() if not any(k.startswith(o + ".") for o in found if o != k)}


def _module_paths(node) -> list[str]:
    return [re.sub(r"^L\['self'\]\.?", "", path) for path, _type in node.meta.get("nn_module_stack", {}).values()]


def quantizer_for(method: str, left_in_float: dict[str, str]):
    """``XNNPACKQuantizer``: symmetric, per-channel weights; activations observed with XNNPACK's default
    HistogramObserver (``--method auto``/``percentile``/``entropy``: an L2-optimal range search, the nearest
    PT2E has to clipping the range) or MinMax (``--method minmax``, as the ONNX recipes). Measured on
    tf_efficientnet_lite0 (100 calibration / 900 evaluation photos, AMD EPYC Zen 3): MinMax drops top-1 by
    11.0 ± 1.2 points, the histogram by 3.7 ± 0.9, so the histogram is the default. ``left_in_float`` is
    filtered out."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e import MinMaxObserver
    config = get_symmetric_quantization_config(is_per_channel=True)
    observer = "HistogramObserver"
    if method == "minmax":
        act = dataclasses.replace(config.input_activation,
                                  observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=2**-12))
        config = dataclasses.replace(config, input_activation=act, output_activation=act)
        observer = "MinMaxObserver"
    quantizer = XNNPACKQuantizer().set_global(config)
    names = tuple(left_in_float)
    quantizer.set_filter_function(
        lambda node: not any(p == n or p.startswith(n + ".") for p in _module_paths(node) for n in names))
    return quantizer, {"quantizer": "XNNPACKQuantizer", "weights": "int8 symmetric per-channel",
                       "activations": f"int8 per-tensor affine, {observer}"}


def int8_program(manifest: dict, folder: Path, input_shape: tuple[int, ...], images: np.ndarray,
                 options: dict, status) -> dict:
    """PT2E INT8 ``.pte``: prepare, calibrate on ``images`` (the shared calibration split), convert, re-export,
    lower to XNNPACK. Records what was quantized and what was left in float."""
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from edgebench.models.rebuild import model_from_manifest  # noqa: PLC0415 - torch: a name lookup needs none
    if options.get("max_drop") is not None:
        raise UsageError("--max-drop is not available for executorch: PT2E has no accuracy-aware fallback here; "
                         "calibrate without it")
    name = manifest["model"]["name"]
    model = model_from_manifest(manifest)
    left_in_float = fragile_modules(model)
    method = options.get("method", "auto")
    quantizer, recipe = quantizer_for(method, left_in_float)
    t0 = time.perf_counter()
    exported, pads = export_program(model, input_shape, name, status)
    graph = exported.module()
    try:
        prepared = prepare_pt2e(graph, quantizer)
    except Exception as exc:  # noqa: BLE001
        raise failure("PT2E prepare", name, exc) from None
    quantized = collections.Counter(str(n.target).split(".")[-2] if str(n.target).count(".") >= 2 else str(n.target)
                                    for n in prepared.graph.nodes if "quantization_annotation" in n.meta
                                    and n.op == "call_function")
    status(f"ExecuTorch: calibrating on {len(images)} images (PT2E)")
    with torch.no_grad():
        for i in range(0, len(images), CALIBRATION_BATCH):
            prepared(torch.from_numpy(np.ascontiguousarray(images[i:i + CALIBRATION_BATCH])))
    converted = convert_pt2e(prepared)
    calibrate_seconds = round(time.perf_counter() - t0, 2)
    out = folder / "int8" / "executorch" / PTE_FILE
    built = lowered_program(converted, input_shape, name, out, status)
    files = [out, operator_map(out, built.pop("fully_connected"))]
    return {"tool": "torchao PT2E (prepare_pt2e/convert_pt2e) + XNNPACK lowering", "torch": torch.__version__,
            **recipe, "recipe": f"PT2E S8 per-channel weights / S8 activations ({recipe['activations']})",
            "method": method, "calibration_images": len(images),
            "quantize_seconds": calibrate_seconds, "seconds": round(calibrate_seconds + built["lower_seconds"], 2),
            "quantized_ops": dict(sorted(quantized.items())), "left_in_float": left_in_float, **built,
            "noop_pads_dropped": pads, "files": files}  # pads: dropped before PT2E (the converted graph has none)
