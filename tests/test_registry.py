"""The model registry: names, aliases, specs, computed complexity."""

from __future__ import annotations

import pytest

from edgebench.models import FAMILIES, get_spec, list_models, measure_complexity, resolve_name
from edgebench.portable.errors import UsageError

FOUNDATION = ["mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_b0", "tf_efficientnet_lite0",
              "tf_efficientnet_lite1", "tf_efficientnet_lite2", "shufflenet_v2_x1_0", "squeezenet1_1", "resnet18",
              "resnet50", "deit_tiny", "vit_b_16", "swin_t"]


def test_foundation_models_registered():
    names = {s.name for s in list_models()}
    assert set(FOUNDATION) <= names


def test_alias_resolves():
    assert resolve_name("mobilenet_v3") == "mobilenet_v3_large"
    assert get_spec("mobilenet_v3").name == "mobilenet_v3_large"


def test_unknown_model_suggests_close_names():
    with pytest.raises(UsageError, match="did you mean.*mobilenet_v3"):
        get_spec("mobilenet_v33")


@pytest.mark.parametrize("spec", list_models(), ids=lambda s: s.name)
def test_spec_is_complete(spec):
    assert spec.family in FAMILIES
    assert spec.description and spec.paper
    p = spec.preprocess
    assert p.resize >= p.input_size > 0
    assert p.interpolation in ("bilinear", "bicubic", "nearest")
    assert len(p.mean) == len(p.std) == 3 and all(s > 0 for s in p.std)


def test_complexity_is_computed_from_the_model():
    spec = get_spec("resnet18")
    found = measure_complexity(spec.build(), spec.input_shape)
    assert found.params == 11_689_512  # torchvision's documented count
    assert found.gmacs == pytest.approx(1.814, rel=0.01)


def test_complexity_counts_attention_matmuls():
    # Fused attention kernels hide matmuls from the counter; ViT-Ti is 1.26 GMACs with them, 1.08 without.
    spec = get_spec("deit_tiny")
    assert measure_complexity(spec.build(), spec.input_shape).gmacs == pytest.approx(1.254, rel=0.01)
