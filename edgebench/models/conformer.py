"""Conformer.

Peng et al. 2021, *Conformer: Local Features Coupling Global Representations for
Visual Recognition* (arXiv 2105.03889). Structure follows the official
implementation (github.com/pengzhiliang/Conformer):

* stem: 7x7/2 conv (64) + BN + ReLU + 3x3/2 max pool -> 56x56;
* CNN branch: ResNet bottlenecks (``ConvBlock``), 4 + 4 + 4 blocks at 56/28/14
  (channels 64*r, 128*r, 256*r with channel ratio r: Ti = 1, S = 4);
* transformer branch: 4x4/4 conv patch embedding of the stem output (14x14
  tokens) + cls token, no positional embedding, 12 ViT blocks (dim 384, 6 heads,
  mlp ratio 4, qkv bias);
* Feature Coupling Unit in each of blocks 2-12: down (1x1 conv, average pool
  to 14x14, LayerNorm, GELU) adds CNN features to the tokens, up (1x1 conv,
  BatchNorm, ReLU, nearest interpolation) injects tokens into the next
  bottleneck's 3x3 conv input;
* two heads, a linear head on the pooled CNN features and one on the cls token,
  whose logits are summed at inference (the official evaluation).

Paper, Table 2: Conformer-Ti 23.5M params / 5.2 GFLOPs, Conformer-S 37.7M /
10.6 GFLOPs (GFLOPs there are multiply-accumulates).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgebench.models.layers import TransformerBlock, init_weights, map_to_tokens, tokens_to_map, trunc_normal_init_
from edgebench.models.registry import Preprocess, register_model

_BN_EPS = 1e-6  # the official ConvBlock / FCUUp BatchNorm eps


class ConvBlock(nn.Module):
    """ResNet bottleneck (1x1, 3x3, 1x1; expansion 4) that can take the FCU-up
    features ``x_t`` added to the input of its 3x3 conv, and return the 3x3
    conv's output (the features FCU-down reads)."""

    expansion = 4

    def __init__(self, inplanes: int, outplanes: int, stride: int = 1, res_conv: bool = False):
        super().__init__()
        med = outplanes // self.expansion
        self.conv1 = nn.Conv2d(inplanes, med, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(med, eps=_BN_EPS)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(med, med, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(med, eps=_BN_EPS)
        self.act2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(med, outplanes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(outplanes, eps=_BN_EPS)
        self.act3 = nn.ReLU(inplace=True)
        if res_conv:
            self.residual_conv = nn.Conv2d(inplanes, outplanes, 1, stride, bias=False)
            self.residual_bn = nn.BatchNorm2d(outplanes, eps=_BN_EPS)
        self.res_conv = res_conv

    def forward(self, x: torch.Tensor, x_t: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        residual = x
        x = self.act1(self.bn1(self.conv1(x)))
        x2 = self.act2(self.bn2(self.conv2(x if x_t is None else x + x_t)))
        x = self.bn3(self.conv3(x2))
        if self.res_conv:
            residual = self.residual_bn(self.residual_conv(residual))
        return self.act3(x + residual), x2


class FCUDown(nn.Module):
    """CNN feature map -> patch tokens: 1x1 conv, average pool, LayerNorm, GELU (cls token kept)."""

    def __init__(self, inplanes: int, outplanes: int, dw_stride: int):
        super().__init__()
        self.conv_project = nn.Conv2d(inplanes, outplanes, 1)
        self.sample_pooling = nn.AvgPool2d(dw_stride, dw_stride) if dw_stride > 1 else nn.Identity()
        self.ln = nn.LayerNorm(outplanes, eps=1e-6)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        x = self.act(self.ln(map_to_tokens(self.sample_pooling(self.conv_project(x)))))
        return torch.cat([x_t[:, :1], x], dim=1)


class FCUUp(nn.Module):
    """Patch tokens -> CNN feature map: 1x1 conv, BatchNorm, ReLU, nearest upsampling."""

    def __init__(self, inplanes: int, outplanes: int, up_stride: int):
        super().__init__()
        self.up_stride = up_stride
        self.conv_project = nn.Conv2d(inplanes, outplanes, 1)
        self.bn = nn.BatchNorm2d(outplanes, eps=_BN_EPS)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = self.act(self.bn(self.conv_project(tokens_to_map(x[:, 1:], h, w))))
        if self.up_stride == 1:
            return x
        return F.interpolate(x, scale_factor=float(self.up_stride), mode="nearest")


class ConvTransBlock(nn.Module):
    """One Conformer block: bottleneck, FCU down, transformer block, FCU up, fusion bottleneck."""

    def __init__(self, inplanes: int, outplanes: int, res_conv: bool, stride: int, dw_stride: int,
                 embed_dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, last_fusion: bool = False):
        super().__init__()
        self.cnn_block = ConvBlock(inplanes, outplanes, stride=stride, res_conv=res_conv)
        if last_fusion:
            self.fusion_block = ConvBlock(outplanes, outplanes, stride=2, res_conv=True)
        else:
            self.fusion_block = ConvBlock(outplanes, outplanes)
        med = outplanes // ConvBlock.expansion
        self.squeeze_block = FCUDown(med, embed_dim, dw_stride)
        self.expand_block = FCUUp(embed_dim, med, dw_stride)
        self.trans_block = TransformerBlock(embed_dim, num_heads, mlp_ratio, qkv_bias=qkv_bias)
        self.dw_stride = dw_stride

    def forward(self, x: torch.Tensor, x_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, x2 = self.cnn_block(x)
        h, w = x2.shape[2] // self.dw_stride, x2.shape[3] // self.dw_stride
        x_t = self.trans_block(self.squeeze_block(x2, x_t) + x_t)
        x, _ = self.fusion_block(x, self.expand_block(x_t, h, w))
        return x, x_t


class Conformer(nn.Module):
    def __init__(self, patch_size: int = 16, num_classes: int = 1000, base_channel: int = 64,
                 channel_ratio: int = 4, embed_dim: int = 384, depth: int = 12, num_heads: int = 6,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True):
        super().__init__()
        if depth % 3:
            raise ValueError("depth must be a multiple of 3")
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        # Stem (ResNet): 1/4 resolution, 64 channels.
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.act1 = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        # Stage 1: one bottleneck, patch embedding and the first transformer block (no coupling).
        ch1 = base_channel * channel_ratio
        trans_dw_stride = patch_size // 4
        self.conv_1 = ConvBlock(64, ch1, res_conv=True)
        self.trans_patch_conv = nn.Conv2d(64, embed_dim, trans_dw_stride, trans_dw_stride)
        self.trans_1 = TransformerBlock(embed_dim, num_heads, mlp_ratio, qkv_bias=qkv_bias)
        # Blocks 2..depth with coupling; CNN resolution halves at the start of the 2nd and 3rd thirds.
        common = {"embed_dim": embed_dim, "num_heads": num_heads, "mlp_ratio": mlp_ratio, "qkv_bias": qkv_bias}
        blocks = []
        third = depth // 3
        for i in range(2, depth + 1):
            stage = (i - 1) // third  # 0, 1, 2
            out_ch = ch1 * 2 ** stage
            first = stage > 0 and (i - 1) % third == 0
            in_ch = out_ch // 2 if first else out_ch
            blocks.append(ConvTransBlock(in_ch, out_ch, res_conv=first, stride=2 if first else 1,
                                         dw_stride=trans_dw_stride // 2 ** stage, last_fusion=i == depth,
                                         **common))
        self.blocks = nn.ModuleList(blocks)
        # Heads.
        self.trans_norm = nn.LayerNorm(embed_dim)
        self.trans_cls_head = nn.Linear(embed_dim, num_classes)
        self.pooling = nn.AdaptiveAvgPool2d(1)
        self.conv_cls_head = nn.Linear(ch1 * 4, num_classes)
        trunc_normal_init_(self.cls_token)
        for m in self.modules():
            init_weights(m, zero_conv_bias=False)  # the official init keeps PyTorch's default conv biases

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_base = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        x, _ = self.conv_1(x_base)
        x_t = map_to_tokens(self.trans_patch_conv(x_base))
        x_t = self.trans_1(torch.cat([self.cls_token.expand(x_t.shape[0], -1, -1), x_t], dim=1))
        for block in self.blocks:
            x, x_t = block(x, x_t)
        return x, x_t

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x, x_t = self.forward_features(x)
        conv_cls = self.conv_cls_head(self.pooling(x).flatten(1))
        tran_cls = self.trans_cls_head(self.trans_norm(x_t)[:, 0])
        if self.training:  # trained with a loss on each head
            return conv_cls, tran_cls
        return conv_cls + tran_cls


_PAPER = ("Peng et al. 2021, Conformer: Local Features Coupling Global Representations for Visual Recognition "
          "(arXiv 2105.03889)")
_PREPROCESS = Preprocess(224, 256, "bicubic")  # DeiT-style evaluation (crop 0.875, bicubic) of the official code


@register_model(family="hybrid", preprocess=_PREPROCESS, paper=_PAPER, aliases=("conformer_tiny",),
                paper_params_m=23.5, paper_gmacs=5.2)
def conformer_ti() -> nn.Module:
    """Conformer-Ti/16: CNN (channel ratio 1) and ViT (384-d) branches coupled by FCUs."""
    return Conformer(patch_size=16, channel_ratio=1, embed_dim=384, depth=12, num_heads=6, mlp_ratio=4)


@register_model(family="hybrid", preprocess=_PREPROCESS, paper=_PAPER, aliases=("conformer_small",),
                paper_params_m=37.7, paper_gmacs=10.6)
def conformer_s() -> nn.Module:
    """Conformer-S/16: CNN (channel ratio 4) and ViT (384-d) branches coupled by FCUs."""
    return Conformer(patch_size=16, channel_ratio=4, embed_dim=384, depth=12, num_heads=6, mlp_ratio=4)
