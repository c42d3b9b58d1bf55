"""The PyTorch model an artifact manifest describes, rebuilt from its name and weights record.

Runtimes that start from the PyTorch model rather than the ONNX (torch eager, ExecuTorch's
``torch.export``) rebuild it here, so both load exactly the weights the ONNX was exported from.
"""

from __future__ import annotations

from torch import nn

from edgebench.models.registry import get_spec
from edgebench.models.weights import load_model
from edgebench.portable.errors import UsageError


def model_from_manifest(manifest: dict) -> nn.Module:
    """``manifest["model"]["name"]`` with ``manifest["weights"]`` (a file, random or the pretrained ones), in eval mode."""
    weights = manifest.get("weights") or {}
    if weights.get("source") == "onnx-file":
        raise UsageError(f"{manifest['model']['name']} was imported from an ONNX file: there is no PyTorch model "
                         "to rebuild (export a registry model instead)")
    ref = weights["ref"] if weights["source"] in ("local", "file") else (
        "random" if weights["source"] == "random" else "pretrained")
    model, _ = load_model(get_spec(manifest["model"]["name"]), ref)
    return model.eval()
