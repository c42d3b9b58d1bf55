"""ResT: an efficient transformer for visual recognition.

Zhang & Yang 2021, *ResT: An Efficient Transformer for Visual Recognition*
(arXiv 2105.13677); structure as in the official implementation
(github.com/wofmanaf/ResT):

* stem: three 3x3 convs (stride 2, 1, 2; BN + ReLU after the first two), 1/4
  resolution, then pixel-attention positional encoding (PA);
* four stages at 1/4, 1/8, 1/16, 1/32; stages 2-4 start with a patch embedding
  (3x3 stride-2 conv + BN + PA);
* PA: ``x * sigmoid(depthwise3x3(x))``;
* EMSA (efficient multi-head self-attention): keys/values from a spatially
  reduced map (depth-wise conv, kernel ``s+1``, stride ``s``, then LayerNorm;
  sr ratio 8/4/2/1), and, when a stage has more than one head, the attention
  maps are mixed across heads by a 1x1 conv, softmaxed, then instance-normalised;
* head: LayerNorm, global average pool, linear.

Paper, Table 1/2: ResT-Lite 10.49M params / 1.4 GFLOPs, ResT-Small 13.66M /
1.94 GFLOPs (the paper's FLOPs are multiply-accumulates).

Paper figures against this definition: docs/models.md.
"""

from __future__ import annotations

import torch
from torch import nn

from edgebench.models.layers import PreNormBlock, init_weights, map_to_tokens, tokens_to_map
from edgebench.models.registry import Preprocess, register_model


class PA(nn.Module):
    """Pixel attention positional encoding: x * sigmoid(depthwise 3x3 conv(x))."""

    def __init__(self, dim: int):
        super().__init__()
        self.pa_conv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.pa_conv(x))


class EMSA(nn.Module):
    """Efficient multi-head self-attention with depth-wise spatial reduction of keys/values."""

    def __init__(self, dim: int, num_heads: int, sr_ratio: int = 1, qkv_bias: bool = True,
                 apply_transform: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio + 1, sr_ratio, sr_ratio // 2, groups=dim)
            self.sr_norm = nn.LayerNorm(dim)
        self.apply_transform = apply_transform and num_heads > 1
        if self.apply_transform:
            self.transform_conv = nn.Conv2d(num_heads, num_heads, 1)
            self.transform_norm = nn.InstanceNorm2d(num_heads)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        n, c = x.shape[1], x.shape[2]
        q = self.q(x).reshape(-1, n, self.num_heads, self.head_dim).transpose(1, 2)
        if self.sr_ratio > 1:
            x = self.sr_norm(map_to_tokens(self.sr(tokens_to_map(x, h, w))))
        kv = self.kv(x).reshape(-1, x.shape[1], 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        k, v = kv[0], kv[1]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        if self.apply_transform:
            attn = self.transform_norm(self.transform_conv(attn).softmax(dim=-1))
        else:
            attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(-1, n, c)
        return self.proj(x)


class Stem(nn.Module):
    """Three 3x3 convs (strides 2, 1, 2) to 1/4 resolution, then PA."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        hidden = out_ch // 2
        self.conv1 = nn.Conv2d(in_ch, hidden, 3, 2, 1, bias=False)
        self.norm1 = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, 1, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(hidden)
        self.conv3 = nn.Conv2d(hidden, out_ch, 3, 2, 1, bias=False)
        self.act = nn.ReLU(inplace=True)
        self.pos = PA(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm1(self.conv1(x)))
        x = self.act(self.norm2(self.conv2(x)))
        return self.pos(self.conv3(x))


class PatchEmbed(nn.Module):
    """Overlapping patch embedding: 3x3 stride-2 conv, BN, PA."""

    def __init__(self, in_ch: int, out_ch: int, patch_size: int = 2):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, patch_size + 1, patch_size, patch_size // 2)
        self.norm = nn.BatchNorm2d(out_ch)
        self.pos = PA(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pos(self.norm(self.conv(x)))


class ResT(nn.Module):
    def __init__(self, embed_dims=(64, 128, 256, 512), num_heads=(1, 2, 4, 8), mlp_ratios=(4, 4, 4, 4),
                 depths=(2, 2, 2, 2), sr_ratios=(8, 4, 2, 1), qkv_bias: bool = True, apply_transform: bool = True,
                 num_classes: int = 1000):
        super().__init__()
        self.stem = Stem(3, embed_dims[0])
        self.patch_embeds = nn.ModuleList(
            [nn.Identity()] + [PatchEmbed(embed_dims[i - 1], embed_dims[i]) for i in range(1, 4)])
        self.stages = nn.ModuleList(
            nn.ModuleList(PreNormBlock(embed_dims[i], EMSA(embed_dims[i], num_heads[i], sr_ratios[i], qkv_bias,
                                                           apply_transform), mlp_ratios[i])
                          for _ in range(depths[i]))
            for i in range(4))
        self.norm = nn.LayerNorm(embed_dims[3])
        self.head = nn.Linear(embed_dims[3], num_classes)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, C, H, W)
        for i, (embed, stage) in enumerate(zip(self.patch_embeds, self.stages)):
            x = embed(x) if i else x
            h, w = x.shape[2], x.shape[3]
            t = map_to_tokens(x)
            for block in stage:
                t = block(t, h, w)
            x = tokens_to_map(t, h, w)
        return self.head(self.norm(t).mean(dim=1))


_PAPER = "Zhang & Yang 2021, ResT: An Efficient Transformer for Visual Recognition (arXiv 2105.13677)"
_PREPROCESS = Preprocess(224, 256, "bicubic")  # DeiT-style evaluation (crop 0.875, bicubic) of the official code


@register_model(family="transformer", preprocess=_PREPROCESS, paper=_PAPER, paper_params_m=10.49, paper_gmacs=1.4)
def rest_lite() -> nn.Module:
    """ResT-Lite: EMSA transformer (dims 64-512, depths 2/2/2/2) with PA positional encoding."""
    return ResT(depths=(2, 2, 2, 2))


@register_model(family="transformer", preprocess=_PREPROCESS, paper=_PAPER, paper_params_m=13.66, paper_gmacs=1.94)
def rest_small() -> nn.Module:
    """ResT-Small: EMSA transformer (dims 64-512, depths 2/2/6/2) with PA positional encoding."""
    return ResT(depths=(2, 2, 6, 2))
