"""Reference models whose definitions come from torchvision.

Preprocessing is that of the torchvision weights listed for each model
(``weights.transforms()``): shorter-side resize, center crop, ImageNet mean/std.
"""

from __future__ import annotations

from torch import nn
from torchvision import models as tvm

from .registry import Preprocess, WeightSource, register_model

_BILINEAR_256 = Preprocess(224, 256, "bilinear")


def _tv(ref: str) -> tuple[WeightSource, ...]:
    return (WeightSource("torchvision", ref),)


def _tv_local(ref: str, arch: str) -> tuple[WeightSource, ...]:
    return (WeightSource("local", arch), WeightSource("torchvision", ref))


@register_model(family="mobile-cnn", preprocess=_BILINEAR_256,
                paper="Sandler et al. 2018, MobileNetV2: Inverted Residuals and Linear Bottlenecks (arXiv 1801.04381)",
                weights=_tv_local("MobileNet_V2_Weights.IMAGENET1K_V1", "mobilenet_v2"),
                paper_params_m=3.4, paper_gmacs=0.300)
def mobilenet_v2() -> nn.Module:
    """MobileNetV2 1.0: inverted residuals with linear bottlenecks and depthwise convs."""
    return tvm.mobilenet_v2()


@register_model(family="mobile-cnn", preprocess=_BILINEAR_256, aliases=("mobilenet_v3",),
                paper="Howard et al. 2019, Searching for MobileNetV3 (arXiv 1905.02244)",
                weights=_tv("MobileNet_V3_Large_Weights.IMAGENET1K_V1"),
                paper_params_m=5.4, paper_gmacs=0.219)
def mobilenet_v3_large() -> nn.Module:
    """MobileNetV3-Large: NAS-found blocks with squeeze-excite and hard-swish."""
    return tvm.mobilenet_v3_large()


@register_model(family="mobile-cnn", preprocess=_BILINEAR_256,
                paper="Howard et al. 2019, Searching for MobileNetV3 (arXiv 1905.02244)",
                weights=_tv("MobileNet_V3_Small_Weights.IMAGENET1K_V1"),
                paper_params_m=2.5, paper_gmacs=0.056)
def mobilenet_v3_small() -> nn.Module:
    """MobileNetV3-Small: the low-resource MobileNetV3 variant."""
    return tvm.mobilenet_v3_small()


@register_model(family="mobile-cnn", preprocess=Preprocess(224, 256, "bicubic"),
                paper="Tan & Le 2019, EfficientNet: Rethinking Model Scaling for CNNs (arXiv 1905.11946)",
                weights=_tv("EfficientNet_B0_Weights.IMAGENET1K_V1"),
                paper_params_m=5.3, paper_gmacs=0.39)
def efficientnet_b0() -> nn.Module:
    """EfficientNet-B0: the compound-scaling baseline (MBConv + SE + swish)."""
    return tvm.efficientnet_b0()


@register_model(family="mobile-cnn", preprocess=_BILINEAR_256,
                paper="Ma et al. 2018, ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design (arXiv 1807.11164)",
                weights=_tv("ShuffleNet_V2_X1_0_Weights.IMAGENET1K_V1"),
                paper_params_m=2.3, paper_gmacs=0.146)
def shufflenet_v2_x1_0() -> nn.Module:
    """ShuffleNetV2 1.0x: channel split and channel shuffle."""
    return tvm.shufflenet_v2_x1_0()


@register_model(family="mobile-cnn", preprocess=_BILINEAR_256,
                paper="Iandola et al. 2016, SqueezeNet: AlexNet-level accuracy with 50x fewer parameters (arXiv 1602.07360)",
                weights=_tv_local("SqueezeNet1_1_Weights.IMAGENET1K_V1", "squeezenet1_1"),
                paper_params_m=1.24)
def squeezenet1_1() -> nn.Module:
    """SqueezeNet 1.1: fire modules (squeeze 1x1, expand 1x1 + 3x3)."""
    return tvm.squeezenet1_1()


@register_model(family="cnn", preprocess=_BILINEAR_256,
                paper="He et al. 2015, Deep Residual Learning for Image Recognition (arXiv 1512.03385)",
                weights=_tv("ResNet18_Weights.IMAGENET1K_V1"),
                paper_params_m=11.7, paper_gmacs=1.8)
def resnet18() -> nn.Module:
    """ResNet-18: basic residual blocks."""
    return tvm.resnet18()


@register_model(family="cnn", preprocess=_BILINEAR_256,
                paper="He et al. 2015, Deep Residual Learning for Image Recognition (arXiv 1512.03385)",
                weights=_tv("ResNet50_Weights.IMAGENET1K_V1"),
                paper_params_m=25.6, paper_gmacs=4.1)
def resnet50() -> nn.Module:
    """ResNet-50: bottleneck residual blocks."""
    return tvm.resnet50()


@register_model(family="transformer", preprocess=_BILINEAR_256, slow=True,
                paper="Dosovitskiy et al. 2020, An Image is Worth 16x16 Words (arXiv 2010.11929)",
                weights=_tv("ViT_B_16_Weights.IMAGENET1K_V1"),
                paper_params_m=86.6, paper_gmacs=17.6)
def vit_b_16() -> nn.Module:
    """ViT-B/16: plain vision transformer on 16x16 patches."""
    return tvm.vit_b_16()


@register_model(family="transformer", preprocess=Preprocess(224, 232, "bicubic"),
                paper="Liu et al. 2021, Swin Transformer: Hierarchical ViT using Shifted Windows (arXiv 2103.14030)",
                weights=_tv("Swin_T_Weights.IMAGENET1K_V1"),
                paper_params_m=28.3, paper_gmacs=4.5)
def swin_t() -> nn.Module:
    """Swin-T: shifted-window hierarchical transformer."""
    return tvm.swin_t()
