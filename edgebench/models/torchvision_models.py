"""Reference models whose definitions come from torchvision.

Preprocessing is that of the torchvision weights listed for each model
(``weights.transforms()``): shorter-side resize, center crop, ImageNet mean/std.
"""

from __future__ import annotations

from torch import nn
from torchvision import models as tvm

from edgebench.models.registry import Preprocess, WeightSource, register_model

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
    """MobileNetV2 1.0: inverted residuals with linear bottlenecks and depthwise convs.

    Paper, Table 4: 3.4M params, 300M multiply-adds. torchvision's definition (whose weights are
    listed) has the paper's layers: 0.301 GMACs, 3,504,872 params (3.50M, +3.1%), of which 34,112
    are BatchNorm scales/shifts. Without those it has 3,470,760, the 3.47M the authors' TF-slim
    README (tensorflow/models research/slim/nets/mobilenet) gives for mobilenet_v2_1.0_224: the
    paper's 3.4M is that figure truncated, and leaves BatchNorm out.
    """
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


# --- Classic CNNs -------------------------------------------------------------------------------


@register_model(family="cnn", preprocess=_BILINEAR_256,
                paper=("Krizhevsky 2014, One weird trick for parallelizing convolutional neural networks "
                       "(arXiv 1404.5997); AlexNet: Krizhevsky et al. 2012, NeurIPS"),
                weights=_tv("AlexNet_Weights.IMAGENET1K_V1"))
def alexnet() -> nn.Module:
    """AlexNet (single-tower 'one weird trick' variant): 5 convs + 3 FC layers.

    torchvision's AlexNet is the single-column variant of arXiv 1404.5997 (64-192-384-256-256
    filters), not the two-GPU network of the 2012 paper whose "60 million parameters" describe
    a different (grouped) layout; neither paper gives figures for this variant (61.1M params,
    0.71 GMACs).
    """
    return tvm.alexnet()


_VGG_PAPER = "Simonyan & Zisserman 2014, Very Deep Convolutional Networks for Large-Scale Image Recognition (arXiv 1409.1556)"


@register_model(family="cnn", preprocess=_BILINEAR_256, slow=True, paper=_VGG_PAPER,
                weights=_tv("VGG16_Weights.IMAGENET1K_V1"), paper_params_m=138)
def vgg16() -> nn.Module:
    """VGG-16 (configuration D): 13 3x3 convs + 3 FC layers."""
    return tvm.vgg16()


@register_model(family="cnn", preprocess=_BILINEAR_256, slow=True, paper=_VGG_PAPER,
                weights=_tv("VGG19_Weights.IMAGENET1K_V1"), paper_params_m=144)
def vgg19() -> nn.Module:
    """VGG-19 (configuration E): 16 3x3 convs + 3 FC layers."""
    return tvm.vgg19()


@register_model(family="cnn", preprocess=_BILINEAR_256, aliases=("inception_v1",),
                paper="Szegedy et al. 2014, Going Deeper with Convolutions (arXiv 1409.4842)",
                weights=_tv("GoogLeNet_Weights.IMAGENET1K_V1"), paper_params_m=6.8, paper_gmacs=1.5)
def googlenet() -> nn.Module:
    """GoogLeNet (Inception v1): stacked inception modules, no auxiliary classifiers at inference.

    Paper figures: Table 1's columns sum to 6.8M params and 1.5G multiply-adds (also stated in
    Section 5). torchvision's definition (whose weights are listed) uses a 3x3 conv where the
    paper's inception branch has a 5x5, and adds BatchNorm: 6.62M params (-2.6%), 1.50 GMACs.
    """
    return tvm.googlenet(aux_logits=False, init_weights=True)


@register_model(family="cnn", preprocess=_BILINEAR_256, slow=True,
                paper="He et al. 2015, Deep Residual Learning for Image Recognition (arXiv 1512.03385)",
                weights=_tv("ResNet152_Weights.IMAGENET1K_V1"), paper_gmacs=11.3)
def resnet152() -> nn.Module:
    """ResNet-152: 3-8-36-3 bottleneck residual blocks (Table 1: 11.3G FLOPs, i.e. multiply-adds)."""
    return tvm.resnet152()


@register_model(family="cnn", preprocess=_BILINEAR_256, aliases=("resnext50",),
                paper="Xie et al. 2016, Aggregated Residual Transformations for Deep Neural Networks (arXiv 1611.05431)",
                weights=_tv("ResNeXt50_32X4D_Weights.IMAGENET1K_V1"), paper_params_m=25.0, paper_gmacs=4.2)
def resnext50_32x4d() -> nn.Module:
    """ResNeXt-50 (32x4d): ResNet-50 with grouped 3x3 convs (cardinality 32)."""
    return tvm.resnext50_32x4d()


@register_model(family="cnn", preprocess=_BILINEAR_256, slow=True, aliases=("wrn50_2",),
                paper="Zagoruyko & Komodakis 2016, Wide Residual Networks (arXiv 1605.07146)",
                weights=_tv("Wide_ResNet50_2_Weights.IMAGENET1K_V1"), paper_params_m=68.9)
def wide_resnet50_2() -> nn.Module:
    """Wide ResNet-50-2: ResNet-50 bottlenecks with twice the inner width."""
    return tvm.wide_resnet50_2()


@register_model(family="cnn", preprocess=_BILINEAR_256,
                paper="Huang et al. 2016, Densely Connected Convolutional Networks (arXiv 1608.06993)",
                weights=_tv("DenseNet121_Weights.IMAGENET1K_V1"))
def densenet121() -> nn.Module:
    """DenseNet-121: dense blocks (growth rate 32) joined by transition layers.

    The paper shows DenseNet-121's size only in a plot (Figure 3); 7.98M params, 2.83 GMACs here.
    """
    return tvm.densenet121()


# --- Mobile CNNs --------------------------------------------------------------------------------


@register_model(family="mobile-cnn", preprocess=_BILINEAR_256,
                paper=("Ma et al. 2018, ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design "
                       "(arXiv 1807.11164)"),
                weights=_tv("ShuffleNet_V2_X0_5_Weights.IMAGENET1K_V1"),
                paper_params_m=1.4, paper_gmacs=0.041)
def shufflenet_v2_x0_5() -> nn.Module:
    """ShuffleNetV2 0.5x: channel split and channel shuffle at half width."""
    return tvm.shufflenet_v2_x0_5()


@register_model(family="mobile-cnn", preprocess=_BILINEAR_256, aliases=("mnasnet",),
                paper="Tan et al. 2018, MnasNet: Platform-Aware Neural Architecture Search for Mobile (arXiv 1807.11626)",
                weights=_tv("MNASNet1_0_Weights.IMAGENET1K_V1"))
def mnasnet1_0() -> nn.Module:
    """MnasNet 1.0: NAS-found mobile CNN (torchvision's B1 variant, no squeeze-excite).

    The paper's headline figures (3.9M params, 312M MACs) are for MnasNet-A1, which has SE
    blocks; torchvision implements the B1 variant (4.38M params, 0.314 GMACs), so none are recorded.
    """
    return tvm.mnasnet1_0()


_EFFNET_PAPER = "Tan & Le 2019, EfficientNet: Rethinking Model Scaling for CNNs (arXiv 1905.11946)"


@register_model(family="mobile-cnn", preprocess=Preprocess(240, 256, "bicubic"), paper=_EFFNET_PAPER,
                weights=_tv("EfficientNet_B1_Weights.IMAGENET1K_V1"), paper_params_m=7.8, paper_gmacs=0.70)
def efficientnet_b1() -> nn.Module:
    """EfficientNet-B1: compound-scaled EfficientNet at 240 px."""
    return tvm.efficientnet_b1()


@register_model(family="mobile-cnn", preprocess=Preprocess(288, 288, "bicubic"), paper=_EFFNET_PAPER,
                weights=_tv("EfficientNet_B2_Weights.IMAGENET1K_V1"), paper_params_m=9.2)
def efficientnet_b2() -> nn.Module:
    """EfficientNet-B2: compound-scaled EfficientNet, evaluated at 288 px as its torchvision weights are.

    The paper's 1.0B FLOPs are at its 260 px resolution (0.99 GMACs there); torchvision's
    weights are evaluated at 288 px (resize 288, crop 288), where it is 1.09 GMACs, so no
    paper MACs are recorded for this input size.
    """
    return tvm.efficientnet_b2()


@register_model(family="mobile-cnn", preprocess=Preprocess(300, 320, "bicubic"), paper=_EFFNET_PAPER,
                weights=_tv("EfficientNet_B3_Weights.IMAGENET1K_V1"), paper_params_m=12, paper_gmacs=1.8)
def efficientnet_b3() -> nn.Module:
    """EfficientNet-B3: compound-scaled EfficientNet at 300 px."""
    return tvm.efficientnet_b3()


# --- Transformers -------------------------------------------------------------------------------


@register_model(family="transformer", preprocess=Preprocess(256, 260, "bicubic"), aliases=("swinv2_t",),
                paper="Liu et al. 2021, Swin Transformer V2: Scaling Up Capacity and Resolution (arXiv 2111.09883)",
                weights=_tv("Swin_V2_T_Weights.IMAGENET1K_V1"))
def swin_v2_t() -> nn.Module:
    """Swin V2-T: Swin with scaled cosine attention and log-spaced continuous position bias (256 px, window 8).

    The paper tabulates no figures for V2-T at 256 px (28.4M params, 5.94 GMACs here).
    """
    return tvm.swin_v2_t()
