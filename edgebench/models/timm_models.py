"""Reference models whose definitions come from timm.

EfficientNet-Lite figures come from the Lite README (tensorflow/tpu,
models/official/efficientnet/lite/README.md): params and "MAdds" (multiply-adds,
i.e. MACs). Its MAdds exceed the conv + linear MACs of the very networks whose
checkpoints it lists (timm's definitions load them strictly, and the params agree)
by 22M / 31M / 39M for Lite0 / 1 / 2, about 3 operations per BatchNorm output
element (6.7M / 10.1M / 12.9M): the README evidently also counts element-wise
BatchNorm/ReLU6 work, which edgebench does not. Lite0's 407M is even above EfficientNet-B0's 0.39B
in the EfficientNet paper, though Lite0 is B0 without squeeze-excite.
"""

from __future__ import annotations

import timm
from torch import nn

from edgebench.models.registry import (
    INCEPTION_MEAN,
    INCEPTION_STD,
    Preprocess,
    WeightSource,
    preprocess_for,
    register_model,
)


def _lite(size: int, crop_pct: float) -> Preprocess:
    # timm's pretrained cfg of the tf_efficientnet_lite*.in1k tags: bicubic, mean=std=0.5. Local weights
    # from another port are evaluated as their index.csv says (see weights.py).
    return preprocess_for(size, crop_pct, "bicubic", INCEPTION_MEAN, INCEPTION_STD)


def _lite_weights(name: str) -> tuple[WeightSource, ...]:
    return (WeightSource("local", name), WeightSource("timm", f"{name}.in1k"))


_LITE_PAPER = ("Tan & Le 2019, EfficientNet (arXiv 1905.11946); Lite variants: Liu et al. 2020, "
               "Higher accuracy on vision models with EfficientNet-Lite (TensorFlow blog); figures: "
               "tensorflow/tpu models/official/efficientnet/lite/README.md")


@register_model(family="mobile-cnn", preprocess=_lite(224, 0.875), paper=_LITE_PAPER,
                weights=_lite_weights("tf_efficientnet_lite0"), aliases=("efficientnet_lite0",),
                paper_params_m=4.7, paper_gmacs=0.407)
def tf_efficientnet_lite0() -> nn.Module:
    """EfficientNet-Lite0: EfficientNet-B0 without SE, ReLU6 instead of swish (TF 'same' padding).

    Lite README: 4.7M params, 407M MAdds; 4.65M params and 0.385 GMACs here (-5.4%), as the README
    also counts element-wise BatchNorm/ReLU6 work (see the module docstring).
    """
    return timm.create_model("tf_efficientnet_lite0", pretrained=False)


@register_model(family="mobile-cnn", preprocess=_lite(240, 0.882), paper=_LITE_PAPER,
                weights=_lite_weights("tf_efficientnet_lite1"), aliases=("efficientnet_lite1",),
                paper_params_m=5.4, paper_gmacs=0.631)
def tf_efficientnet_lite1() -> nn.Module:
    """EfficientNet-Lite1: compound-scaled Lite at 240 px.

    Lite README: 5.4M params, 631M MAdds; 5.42M params and 0.600 GMACs here (-4.9%), as the README
    also counts element-wise BatchNorm/ReLU6 work (see the module docstring).
    """
    return timm.create_model("tf_efficientnet_lite1", pretrained=False)


@register_model(family="mobile-cnn", preprocess=_lite(260, 0.89), paper=_LITE_PAPER,
                weights=_lite_weights("tf_efficientnet_lite2"), aliases=("efficientnet_lite2",),
                paper_params_m=6.1, paper_gmacs=0.899)
def tf_efficientnet_lite2() -> nn.Module:
    """EfficientNet-Lite2: compound-scaled Lite at 260 px.

    Lite README: 6.1M params, 899M MAdds; 6.09M params and 0.860 GMACs here (-4.4%), as the README
    also counts element-wise BatchNorm/ReLU6 work (see the module docstring).
    """
    return timm.create_model("tf_efficientnet_lite2", pretrained=False)


@register_model(family="transformer", preprocess=preprocess_for(224, 0.9, "bicubic"),
                aliases=("vit_tiny", "vit_ti", "deit_tiny_patch16_224"),
                paper="Touvron et al. 2020, Training data-efficient image transformers (DeiT, arXiv 2012.12877)",
                weights=(WeightSource("timm", "deit_tiny_patch16_224.fb_in1k"),),
                paper_params_m=5.7, paper_gmacs=1.3)
def deit_tiny() -> nn.Module:
    """DeiT-Tiny (ViT-Ti/16): a small ViT trained with data-efficient recipes."""
    return timm.create_model("deit_tiny_patch16_224", pretrained=False)


@register_model(family="cnn", preprocess=preprocess_for(224, 0.875, "bicubic"), aliases=("se_resnet50",),
                paper="Hu et al. 2017, Squeeze-and-Excitation Networks (arXiv 1709.01507)",
                weights=(WeightSource("timm", "seresnet50.ra2_in1k"),), paper_gmacs=3.87)
def seresnet50() -> nn.Module:
    """SE-ResNet-50: ResNet-50 bottlenecks with squeeze-and-excitation channel gating.

    Paper, Table 2: 3.87 GFLOPs (multiply-adds) for the Caffe-style ResNet-50 whose stride-2
    blocks downsample in the first 1x1 conv. timm's seresnet50 (whose weights are listed)
    downsamples in the 3x3 conv (torchvision style, "ResNet v1.5"), which costs 4.09 GMACs.
    The paper states the parameter count only approximately ("~2.5M more than ResNet-50's
    ~25M"): 28.1M here.
    """
    return timm.create_model("seresnet50", pretrained=False)


@register_model(family="mobile-cnn", preprocess=preprocess_for(224, 0.875, "bicubic", INCEPTION_MEAN, INCEPTION_STD),
                aliases=("mobilenet_v1", "mobilenetv1"),
                paper=("Howard et al. 2017, MobileNets: Efficient Convolutional Neural Networks for Mobile Vision "
                       "Applications (arXiv 1704.04861)"),
                weights=(WeightSource("timm", "mobilenetv1_100.ra4_e3600_r224_in1k"),),
                paper_params_m=4.2, paper_gmacs=0.569)
def mobilenetv1_100() -> nn.Module:
    """MobileNetV1 1.0-224: depthwise-separable conv stack."""
    return timm.create_model("mobilenetv1_100", pretrained=False)


@register_model(family="mlp", preprocess=preprocess_for(224, 0.875, "bicubic", INCEPTION_MEAN, INCEPTION_STD),
                slow=True, aliases=("mixer_b16", "mlp_mixer_b16"),
                paper="Tolstikhin et al. 2021, MLP-Mixer: An all-MLP Architecture for Vision (arXiv 2105.01601)",
                weights=(WeightSource("timm", "mixer_b16_224.goog_in21k_ft_in1k"),), paper_params_m=59)
def mixer_b16_224() -> nn.Module:
    """MLP-Mixer B/16: token-mixing and channel-mixing MLPs on 16x16 patches."""
    return timm.create_model("mixer_b16_224", pretrained=False)
