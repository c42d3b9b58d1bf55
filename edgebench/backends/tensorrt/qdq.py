"""TensorRT's readiness check of a Q/DQ ONNX (explicit quantization): on the host, before a build or a bundle."""

from __future__ import annotations

from pathlib import Path

from edgebench.portable.errors import UsageError


def qdq_summary(onnx_path: Path) -> dict:
    """Check that ``onnx_path`` is a valid explicitly quantized (Q/DQ) ONNX; UsageError if not.

    TensorRT's explicit quantization wants QuantizeLinear/DequantizeLinear pairs with
    INT8 zero points equal to 0 (symmetric).
    """
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(onnx_path))
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"{onnx_path} is not a valid ONNX model: {str(exc).splitlines()[0][:200]}") from None
    ops = [n.op_type for n in model.graph.node]
    q, dq = ops.count("QuantizeLinear"), ops.count("DequantizeLinear")
    if not q or not dq:
        raise UsageError(f"{onnx_path} has no QuantizeLinear/DequantizeLinear nodes: not a Q/DQ ONNX")
    inits = {i.name: i for i in model.graph.initializer}
    zero_point_types, asymmetric = set(), []
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2 and node.input[2] in inits:
            zp = numpy_helper.to_array(inits[node.input[2]])
            zero_point_types.add(str(zp.dtype))
            if zp.any():
                asymmetric.append(node.name)
    # TensorRT's parser takes INT8 Q/DQ on activations; an INT32 DequantizeLinear (ORT's quantized
    # bias, QuantizeBias=True) or a DequantizeLinear fed straight by an INT8 initializer without a
    # QuantizeLinear (ORT without AddQDQPairToWeight) is rejected by older releases.
    int8_inits = {n for n, i in inits.items() if i.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.INT32)}
    weight_only_dq = [n.name for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in int8_inits]
    producer = {out: n.op_type for n in model.graph.node for out in n.output}
    dq_outputs = [o.name for o in model.graph.output if producer.get(o.name) == "DequantizeLinear"]
    problems = []
    if asymmetric:
        problems.append(f"{len(asymmetric)} Q/DQ nodes with non-zero zero points (TensorRT needs symmetric)")
    if zero_point_types - {"int8", "int32"}:
        problems.append(f"{'/'.join(sorted(zero_point_types - {'int8', 'int32'}))} Q/DQ: TensorRT takes INT8 only")
    if dq_outputs:
        problems.append(f"graph output {', '.join(dq_outputs)} comes out of a DequantizeLinear (8-bit outputs): "
                        "quantize only the inputs of Conv/MatMul/Gemm")
    if "int32" in zero_point_types:
        problems.append("INT32 DequantizeLinear (quantized bias): quantize with QuantizeBias=False")
    if weight_only_dq:
        problems.append(f"{len(weight_only_dq)} DequantizeLinear on stored INT8/INT32 initializers: "
                        "quantize with AddQDQPairToWeight=True for TensorRT < 10")
    return {"quantize_nodes": q, "dequantize_nodes": dq, "zero_point_types": sorted(zero_point_types),
            "asymmetric_nodes": asymmetric, "problems": problems,
            "tensorrt_ready": not asymmetric and zero_point_types <= {"int8"} and not dq_outputs,
            "dequantized_outputs": dq_outputs,
            "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None)}
