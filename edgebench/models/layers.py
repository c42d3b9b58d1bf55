"""Building blocks shared by the project's own model definitions.

Written for export: no data-dependent Python control flow, attention as explicit
matmul + softmax (counted by FlopCounterMode and exported as plain MatMul/Softmax),
and reshapes that keep the batch axis symbolic (``-1`` or ``x.shape[0]``). The
weight-init helpers reproduce the official codebases' inits.
"""

from __future__ import annotations

import torch
from torch import nn


class Mlp(nn.Module):
    """Transformer feed-forward: Linear -> activation -> Linear (on the last axis)."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int | None = None,
                 act_layer: type[nn.Module] = nn.GELU, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Attention(nn.Module):
    """Multi-head self-attention over tokens ``(B, N, C)`` (ViT style)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = False, attn_drop: float = 0.0,
                 proj_drop: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[1], x.shape[2]
        qkv = self.qkv(x).reshape(-1, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        x = (self.attn_drop(attn) @ v).transpose(1, 2).reshape(-1, n, c)
        return self.proj_drop(self.proj(x))


class PreNormBlock(nn.Module):
    """Pre-norm residual block around a token mixer: x + mixer(LN(x), *args), then x + MLP(LN(x)).

    Extra forward arguments (such as the map's height and width) go to the mixer.
    """

    def __init__(self, dim: int, mixer: nn.Module, mlp_ratio: float = 4.0, norm_eps: float = 1e-5,
                 drop: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = mixer
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x: torch.Tensor, *args: int) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), *args)
        return x + self.mlp(self.norm2(x))


class TransformerBlock(PreNormBlock):
    """Pre-norm ViT encoder block: x + MHSA(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = False,
                 norm_eps: float = 1e-6, drop: float = 0.0, attn_drop: float = 0.0):
        mixer = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        super().__init__(dim, mixer, mlp_ratio, norm_eps, drop)


class ConvBnAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> optional activation."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 1, stride: int = 1, groups: int = 1,
                 act_layer: type[nn.Module] | None = nn.ReLU, bn_eps: float = 1e-5):
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, kernel_size // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch, eps=bn_eps),
            act_layer() if act_layer is not None else nn.Identity(),
        )


def trunc_normal_init_(weight: torch.Tensor, bias: torch.Tensor | None = None, std: float = 0.02) -> None:
    """ViT-style init: truncated-normal weight (std 0.02, cut at +-2), zero bias."""
    nn.init.trunc_normal_(weight, std=std)
    if bias is not None:
        nn.init.zeros_(bias)


def kaiming_conv_init_(conv: nn.Conv2d, zero_bias: bool = True) -> None:
    """ResNet-style init: Kaiming-normal conv weight (fan-out, ReLU gain); bias zeroed unless told not to."""
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    if zero_bias and conv.bias is not None:
        nn.init.zeros_(conv.bias)


def init_weights(m: nn.Module, zero_conv_bias: bool = True) -> None:
    """Hybrid CNN/transformer init (for ``model.apply``): Linear truncated normal, Conv2d Kaiming normal."""
    if isinstance(m, nn.Linear):
        trunc_normal_init_(m.weight, m.bias)
    elif isinstance(m, nn.Conv2d):
        kaiming_conv_init_(m, zero_conv_bias)


def tokens_to_map(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``(B, H*W, C)`` tokens -> ``(B, C, H, W)`` map (batch axis stays symbolic)."""
    return x.transpose(1, 2).reshape(-1, x.shape[2], h, w)


def map_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` map -> ``(B, H*W, C)`` tokens."""
    return x.flatten(2).transpose(1, 2)
