"""Reference models whose definitions come from timm."""

from __future__ import annotations

import timm
from torch import nn

from .registry import INCEPTION_MEAN, INCEPTION_STD, Preprocess, WeightSource, register_model


def _lite(size: int) -> Preprocess:
    # Preprocessing of the TF EfficientNet-Lite checkpoints: crop_pct 0.875, bicubic, mean=std=0.5.
    return Preprocess(size, round(size / 0.875), "bicubic", INCEPTION_MEAN, INCEPTION_STD)


def _lite_weights(name: str) -> tuple[WeightSource, ...]:
    return (WeightSource("local", name), WeightSource("timm", f"{name}.in1k"))


_LITE_PAPER = ("Tan & Le 2019, EfficientNet (arXiv 1905.11946); Lite variants: Liu et al. 2020, "
               "Higher accuracy on vision models with EfficientNet-Lite (TensorFlow blog)")


@register_model(family="mobile-cnn", preprocess=_lite(224), paper=_LITE_PAPER,
                weights=_lite_weights("tf_efficientnet_lite0"), aliases=("efficientnet_lite0",),
                paper_params_m=4.7, paper_gmacs=0.41)
def tf_efficientnet_lite0() -> nn.Module:
    """EfficientNet-Lite0: EfficientNet-B0 without SE, ReLU6 instead of swish (TF 'same' padding)."""
    return timm.create_model("tf_efficientnet_lite0", pretrained=False)


@register_model(family="mobile-cnn", preprocess=_lite(240), paper=_LITE_PAPER,
                weights=_lite_weights("tf_efficientnet_lite1"), aliases=("efficientnet_lite1",),
                paper_params_m=5.4, paper_gmacs=0.63)
def tf_efficientnet_lite1() -> nn.Module:
    """EfficientNet-Lite1: compound-scaled Lite at 240 px."""
    return timm.create_model("tf_efficientnet_lite1", pretrained=False)


@register_model(family="mobile-cnn", preprocess=_lite(260), paper=_LITE_PAPER,
                weights=_lite_weights("tf_efficientnet_lite2"), aliases=("efficientnet_lite2",),
                paper_params_m=6.1, paper_gmacs=0.90)
def tf_efficientnet_lite2() -> nn.Module:
    """EfficientNet-Lite2: compound-scaled Lite at 260 px."""
    return timm.create_model("tf_efficientnet_lite2", pretrained=False)


@register_model(family="transformer", preprocess=Preprocess(224, 256, "bicubic"),
                aliases=("vit_tiny", "vit_ti", "deit_tiny_patch16_224"),
                paper="Touvron et al. 2020, Training data-efficient image transformers (DeiT, arXiv 2012.12877)",
                weights=(WeightSource("timm", "deit_tiny_patch16_224.fb_in1k"),),
                paper_params_m=5.7, paper_gmacs=1.3)
def deit_tiny() -> nn.Module:
    """DeiT-Tiny (ViT-Ti/16): a small ViT trained with data-efficient recipes."""
    return timm.create_model("deit_tiny_patch16_224", pretrained=False)
