"""Reference PyTorch models and their registry.

The registry (names, families, specs) imports no torch; the model definitions, weights loading and
complexity counting (torch, torchvision, timm) are imported on first use.
"""

import importlib

from edgebench.models.registry import (
    FAMILIES,
    ModelSpec,
    Preprocess,
    WeightSource,
    get_spec,
    list_models,
    register_model,
    resolve_name,
)

_LAZY = {"Complexity": "complexity", "measure_complexity": "complexity", "WeightsInfo": "weights",
         "load_model": "weights"}


def __getattr__(name: str):
    """``load_model``, ``measure_complexity`` & co., imported (with torch) only when asked for."""
    if name in _LAZY:
        return getattr(importlib.import_module(f"edgebench.models.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'edgebench.models' has no attribute {name!r}")


__all__ = ["FAMILIES", "Complexity", "ModelSpec", "Preprocess", "WeightSource", "WeightsInfo",
           "get_spec", "list_models", "load_model", "measure_complexity", "register_model",
           "resolve_name"]
