"""What a user's own ONNX file must be before anything is built from it: an image classifier that takes what
edgebench feeds and that the installed runtimes load.

edgebench feeds one float32 NCHW batch of square RGB images and reads one (batch, classes) output.
A file with two inputs, an NHWC or uint8 input, or an image-to-image output is refused here with
the reason (an image-to-image model was once accepted and "verified" with top-1 agreement 1.00).
Whether the opset and IR version are ones the runtimes accept is asked of the runtimes themselves,
by loading the file, and their own message (which names their limit) is passed on in full.
"""

from __future__ import annotations

import re
from pathlib import Path

import onnx

from edgebench.backends import RuntimeOptions, runtime_class
from edgebench.portable.errors import UsageError, one_line

LOADS_ONNX = ("ort", "openvino")  # runtimes that load an ONNX file directly (a TensorRT plan is built later)
_ORT_NOISE = (re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : "), re.compile(r"Load model from .*? failed:"),
              re.compile(r"/onnxruntime_src/\S+:\d+ .*?\)\s+(?=[A-Z])"))


def check_onnx(path: Path) -> onnx.ModelProto:
    """Load and check an ONNX file; a one-line UsageError if it is corrupt or truncated."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"ONNX file {path} does not exist")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(str(path))
    except Exception as exc:  # noqa: BLE001 - protobuf and checker errors have various types
        raise UsageError(f"{path} is not a valid ONNX model ({one_line(exc)})") from None
    if not model.graph.input or not model.graph.output:
        raise UsageError(f"{path} has no graph inputs or outputs")
    return model


def opset_of(model: onnx.ModelProto) -> int:
    return max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """The inputs a caller feeds: graph inputs that are not initializers (older exporters list weights too)."""
    weights = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in weights]


def _dims(value: onnx.ValueInfoProto) -> list[int | str] | None:
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return [d.dim_param or (d.dim_value if d.HasField("dim_value") else "?") for d in tensor.shape.dim]


def _show(dims: list[int | str]) -> str:
    return " x ".join(str(d) for d in dims)


def check_classifier(model: onnx.ModelProto, path: Path, runtimes: tuple[str, ...]) -> list[int | str]:
    """The input shape ``[batch, 3, H, H]`` of a user's classifier; UsageError naming what is wrong."""
    inputs = graph_inputs(model)
    if len(inputs) != 1:
        raise UsageError(f"{path} has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); edgebench feeds "
                         "a classifier one image batch")
    image = inputs[0]
    dtype = onnx.TensorProto.DataType.Name(image.type.tensor_type.elem_type).lower()
    if dtype != "float":
        raise UsageError(f"{path} takes {dtype} input {image.name!r}; edgebench feeds float32 images, normalised "
                         "(put any Cast inside the model)")
    shape = _dims(image)
    if shape is None or len(shape) != 4:
        raise UsageError(f"{path} input {image.name!r} is {_show(shape) if shape else 'of unknown rank'}; edgebench "
                         "feeds a 4-D NCHW batch (batch x 3 x H x W)")
    if not all(isinstance(d, int) and d > 0 for d in shape[1:]):
        raise UsageError(f"{path} input {image.name!r} is {_show(shape)}; C, H and W must be fixed numbers")
    if shape[1] != 3:
        layout = "NHWC (channels last)" if shape[3] == 3 else f"{shape[1]}-channel"
        raise UsageError(f"{path} takes {layout} input {_show(shape)}; edgebench feeds NCHW RGB images "
                         "(batch x 3 x H x W): export the model channels first")
    if shape[2] != shape[3]:
        raise UsageError(f"{path} takes {shape[2]} x {shape[3]} images; edgebench's preprocessing makes square crops")
    _check_output(model, path)
    for runtime in dict.fromkeys(("ort", *runtimes)):
        if runtime in LOADS_ONNX:
            _check_loads(runtime, path)
    return shape


def _check_output(model: onnx.ModelProto, path: Path) -> None:
    outputs = model.graph.output
    if len(outputs) != 1:
        raise UsageError(f"{path} has {len(outputs)} outputs ({', '.join(o.name for o in outputs)}); a classifier "
                         "has one (batch x classes) output")
    try:
        inferred = onnx.shape_inference.infer_shapes(model).graph.output[0]
    except Exception:  # noqa: BLE001 - shape inference is a best effort; the reference run checks the rank too
        inferred = outputs[0]
    dims = _dims(inferred) or _dims(outputs[0])
    if dims is not None and len(dims) != 2:
        raise UsageError(f"{path} output {outputs[0].name!r} is {_show(dims)}, not batch x classes: "
                         "edgebench measures image classifiers")


def check_output_rank(path: Path, logits_shape: tuple[int, ...]) -> None:
    """The rank check again on a real output, for a file whose output shape the graph does not say."""
    if len(logits_shape) != 2:
        raise UsageError(f"{path} outputs {_show(list(logits_shape))}, not batch x classes: "
                         "edgebench measures image classifiers")


def _check_loads(runtime: str, path: Path) -> None:
    """Load ``path`` on ``runtime``; UsageError with the runtime's own reason in full (opset, IR version)."""
    cls = runtime_class(runtime)
    available = cls.availability()
    if not available.usable:
        return  # the runtime's absence is reported where it is required
    try:
        with cls(path, RuntimeOptions(threads=1)):
            pass
    except Exception as exc:  # noqa: BLE001 - each runtime has its own exception types
        reason = " ".join(str(exc).split()) or type(exc).__name__
        for noise in _ORT_NOISE:
            reason = noise.sub("", reason).strip()
        raise UsageError(f"{path}: {runtime} {available.version} cannot load it: {reason}") from None
