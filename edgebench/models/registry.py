"""Model registry in timm's style: one decorator, one entry per model.

Each registered constructor returns an ``nn.Module`` with randomly initialised
weights; the registry entry (:class:`ModelSpec`) carries everything else the
pipeline needs: input size, preprocessing, family, paper, weight sources.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from torch import nn

import importlib

from edgebench.portable.errors import UsageError
from edgebench.portable.preprocess import (  # noqa: F401 - the registry's vocabulary
    IMAGENET_MEAN,
    IMAGENET_STD,
    INCEPTION_MEAN,
    INCEPTION_STD,
    Preprocess,
    preprocess_for,
)


class Family(str, Enum):
    """The design families, in report order; the one list the CLI choices, the reports and the
    INT8 recipe (which keeps attention-era models' normalisations in float) derive from."""

    MOBILE_CNN = "mobile-cnn"
    CNN = "cnn"
    TRANSFORMER = "transformer"
    HYBRID = "hybrid"
    MLP = "mlp"

    @property
    def transformer_like(self) -> bool:
        return self in (Family.TRANSFORMER, Family.HYBRID, Family.MLP)


FAMILIES: tuple[str, ...] = tuple(f.value for f in Family)

@dataclass(frozen=True)
class WeightSource:
    """Where trained weights for a model can come from.

    ``kind`` is ``torchvision`` (``ref`` is a weights enum such as
    ``MobileNet_V3_Large_Weights.IMAGENET1K_V1``), ``timm`` (``ref`` is a
    pretrained tag such as ``tf_efficientnet_lite0.in1k``) or ``local`` (``ref``
    is the architecture name a local weights directory indexes files by).
    """

    kind: Literal["torchvision", "timm", "local"]
    ref: str


@dataclass(frozen=True)
class ModelSpec:
    """Everything the pipeline knows about one registered model."""

    name: str
    builder: Callable[[], nn.Module]
    family: str  # a Family value
    # That of the listed hub weights (their timm pretrained cfg / torchvision transforms); a local
    # weights directory's index.csv may give its own file's (see weights.py).
    preprocess: Preprocess
    description: str
    paper: str
    weights: tuple[WeightSource, ...] = ()
    aliases: tuple[str, ...] = ()
    num_classes: int = 1000
    # Figures published in the paper, for tests; None where the paper gives none.
    paper_params_m: float | None = None
    paper_gmacs: float | None = None
    # Runtime name -> precise reason the model cannot go through that runtime.
    unsupported: dict[str, str] = field(default_factory=dict)
    # Part of the test suite that is too slow for `make test` (run by `make test-all`).
    slow: bool = False

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.preprocess.input_shape

    @property
    def is_transformer_like(self) -> bool:
        """Whether INT8 should use transformer settings (NNCF ``ModelType.TRANSFORMER``)."""
        return Family(self.family).transformer_like

    def build(self) -> nn.Module:
        return self.builder()

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "family": self.family,
            "description": self.description,
            "paper": self.paper,
            "input_shape": list(self.input_shape),
            "preprocess": self.preprocess.to_dict(),
            "weights": [asdict(w) for w in self.weights],
            "aliases": list(self.aliases),
            "num_classes": self.num_classes,
            "paper_params_m": self.paper_params_m,
            "paper_gmacs": self.paper_gmacs,
            "unsupported": dict(self.unsupported),
        }


_REGISTRY: dict[str, ModelSpec] = {}
_ALIASES: dict[str, str] = {}


def register_model(*, family: str, paper: str, preprocess: Preprocess | None = None,
                   weights: tuple[WeightSource, ...] = (), aliases: tuple[str, ...] = (),
                   paper_params_m: float | None = None, paper_gmacs: float | None = None,
                   unsupported: dict[str, str] | None = None, slow: bool = False,
                   name: str | None = None) -> Callable:
    """Register a model constructor; the function name is the registry name.

    The constructor's docstring (first line) becomes the model's description.
    """

    def decorator(fn: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        model_name = name or fn.__name__
        if model_name in _REGISTRY or model_name in _ALIASES:
            raise ValueError(f"model {model_name!r} registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()
        _REGISTRY[model_name] = ModelSpec(
            name=model_name, builder=fn, family=family, preprocess=preprocess or Preprocess(),
            description=doc[0] if doc else model_name, paper=paper, weights=tuple(weights),
            aliases=tuple(aliases), paper_params_m=paper_params_m, paper_gmacs=paper_gmacs,
            unsupported=dict(unsupported or {}), slow=slow)
        for alias in aliases:
            if alias in _REGISTRY or alias in _ALIASES:
                raise ValueError(f"alias {alias!r} registered twice")
            _ALIASES[alias] = model_name
        return fn

    return decorator


# The modules whose decorators fill the registry; imported on the first look-up, so that importing the
# registry (the CLI's family choices, a report) does not import torch (~10 s of every CLI start under load).
_MODEL_MODULES = ("conformer", "cyclemlp", "rest", "timm_models", "torchvision_models", "visual_transformer", "zfnet")
_loaded = False


def _register_all() -> None:
    global _loaded
    if not _loaded:
        for module in _MODEL_MODULES:
            importlib.import_module(f"edgebench.models.{module}")
        _loaded = True


def list_models(family: str | None = None) -> list[ModelSpec]:
    """All registered models, optionally of one family, sorted by family then name."""
    _register_all()
    specs = [s for s in _REGISTRY.values() if family is None or s.family == family]
    return sorted(specs, key=lambda s: (FAMILIES.index(s.family), s.name))


def resolve_name(name: str) -> str:
    """Canonical registry name for ``name`` or an alias; UsageError with suggestions otherwise."""
    _register_all()
    if name in _REGISTRY:
        return name
    if name in _ALIASES:
        return _ALIASES[name]
    close = difflib.get_close_matches(name, [*_REGISTRY, *_ALIASES], n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see `edgebench models`"
    raise UsageError(f"unknown model {name!r}{hint}")


def get_spec(name: str) -> ModelSpec:
    return _REGISTRY[resolve_name(name)]
