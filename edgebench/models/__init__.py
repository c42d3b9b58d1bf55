"""Reference PyTorch models and their registry.

Importing this package registers every model (it imports torch, torchvision and timm).
"""

from edgebench.models import conformer, cyclemlp, rest, timm_models, torchvision_models, visual_transformer, zfnet  # noqa: F401
from edgebench.models.complexity import Complexity, measure_complexity
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
from edgebench.models.weights import WeightsInfo, load_model

__all__ = ["FAMILIES", "Complexity", "ModelSpec", "Preprocess", "WeightSource", "WeightsInfo",
           "get_spec", "list_models", "load_model", "measure_complexity", "register_model",
           "resolve_name"]
