"""CycleMLP.

Chen et al. 2021, *CycleMLP: A MLP-like Architecture for Dense Prediction*
(arXiv 2107.10224); structure as in the official implementation
(github.com/ShoufaChen/CycleMLP):

* overlapping patch embedding (7x7 stride-4 conv), four stages at 1/4..1/32
  joined by 3x3 stride-2 conv downsampling, channels-last tokens ``(B, H, W, C)``;
* each block: ``x + CycleMLP(LN(x))``, ``x + MLP(LN(x))``;
* the CycleMLP token mixer sums three branches, a channel FC and two Cycle FCs
  (pseudo-kernel 1x3 and 3x1), re-weighted per channel by a small MLP (split
  attention), then projects;
* Cycle FC: a channel FC whose input channel ``c`` is read at a spatial offset
  that cycles with ``c``; for pseudo-kernel ``1xK`` the offset is
  ``((c + K//2) mod K) - K//2`` along the width (and likewise along the height
  for ``Kx1``), positions outside the map read zero.

The official code samples with ``torchvision.ops.deform_conv2d`` (a constant
offset tensor, 1x1 kernel). Here the shift is exact and uses standard ops only:
zero-pad, take the K shifted slices, and pick each channel's slice with a
constant one-hot channel mask, then a 1x1 conv -- the same function (the test
suite checks it against ``deform_conv2d``), exportable to ONNX without custom ops.

Paper, Table 2: CycleMLP-B1 15M params, 2.1 GFLOPs (multiply-accumulates).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgebench.models.layers import Mlp, PreNormBlock, trunc_normal_init_
from edgebench.models.registry import Preprocess, register_model


def cycle_offsets(channels: int, kernel: int) -> list[int]:
    """Spatial offset of each input channel of a Cycle FC with pseudo-kernel size ``kernel``."""
    return [(c + kernel // 2) % kernel - kernel // 2 for c in range(channels)]


class CycleFC(nn.Module):
    """Cycle fully-connected layer on ``(B, C, H, W)`` maps; ``kernel_size`` is (1, K) or (K, 1)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int]):
        super().__init__()
        kh, kw = kernel_size
        if 1 not in (kh, kw):
            raise ValueError(f"pseudo-kernel must be 1xK or Kx1, got {kernel_size}")
        self.kernel_size = (kh, kw)
        self.dim = 3 if kh == 1 else 2  # axis the offsets move along (W for 1xK, H for Kx1)
        self.k = max(kh, kw)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.empty(out_channels))
        # masks[j, c] = 1 where channel c reads at offset j - K//2.
        offsets = torch.tensor(cycle_offsets(in_channels, self.k))
        masks = (offsets[None, :] == torch.arange(self.k)[:, None] - self.k // 2).float()
        self.register_buffer("masks", masks.reshape(self.k, 1, in_channels, 1, 1), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)
        fan_in = self.weight.shape[1]
        bound = 1 / fan_in ** 0.5
        nn.init.uniform_(self.bias, -bound, bound)

    def shift(self, x: torch.Tensor) -> torch.Tensor:
        """Each channel read at its cyclic offset (zero outside the map)."""
        p = self.k // 2
        size = x.shape[self.dim]
        x = F.pad(x, (p, p, 0, 0) if self.dim == 3 else (0, 0, p, p))
        out = None
        for j in range(self.k):
            part = x.narrow(self.dim, j, size) * self.masks[j]
            out = part if out is None else out + part
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.shift(x), self.weight, self.bias)


class CycleMLP(nn.Module):
    """Token mixer: channel FC + Cycle FC (1x3) + Cycle FC (3x1), split-attention re-weighting."""

    def __init__(self, dim: int, qkv_bias: bool = False):
        super().__init__()
        self.mlp_c = nn.Linear(dim, dim, bias=qkv_bias)
        self.sfc_h = CycleFC(dim, dim, (1, 3))
        self.sfc_w = CycleFC(dim, dim, (3, 1))
        self.reweight = Mlp(dim, dim // 4, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, C)
        c = x.shape[3]
        x_nchw = x.permute(0, 3, 1, 2)
        h = self.sfc_h(x_nchw).permute(0, 2, 3, 1)
        w = self.sfc_w(x_nchw).permute(0, 2, 3, 1)
        ch = self.mlp_c(x)
        a = (h + w + ch).mean(dim=(1, 2))  # (B, C)
        a = self.reweight(a).reshape(-1, c, 3).permute(2, 0, 1).softmax(dim=0)[:, :, None, None, :]
        return self.proj(h * a[0] + w * a[1] + ch * a[2])


class Downsample(nn.Module):
    """3x3 stride-2 conv between stages, on channels-last tokens."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_dim, out_dim, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class CycleNet(nn.Module):
    def __init__(self, layers=(2, 2, 4, 2), embed_dims=(64, 128, 320, 512), mlp_ratios=(4, 4, 4, 4),
                 qkv_bias: bool = False, num_classes: int = 1000):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, embed_dims[0], 7, 4, 2)
        network: list[nn.Module] = []
        for i, depth in enumerate(layers):
            network.append(nn.Sequential(*(PreNormBlock(embed_dims[i], CycleMLP(embed_dims[i], qkv_bias), mlp_ratios[i])
                                           for _ in range(depth))))
            if i < len(layers) - 1:
                network.append(Downsample(embed_dims[i], embed_dims[i + 1]))
        self.network = nn.Sequential(*network)
        self.norm = nn.LayerNorm(embed_dims[-1])
        self.head = nn.Linear(embed_dims[-1], num_classes)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, CycleFC)):  # the official init leaves the convs at PyTorch's default
            trunc_normal_init_(m.weight, m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.network(self.patch_embed(x).permute(0, 2, 3, 1))
        return self.head(self.norm(x).mean(dim=(1, 2)))


@register_model(family="mlp", preprocess=Preprocess(224, 256, "bicubic"), aliases=("cyclemlp",),
                paper="Chen et al. 2021, CycleMLP: A MLP-like Architecture for Dense Prediction (arXiv 2107.10224)",
                paper_params_m=15, paper_gmacs=2.1)
def cyclemlp_b1() -> nn.Module:
    """CycleMLP-B1: MLP with Cycle FC token mixing (dims 64-512, depths 2/2/4/2)."""
    return CycleNet(layers=(2, 2, 4, 2), embed_dims=(64, 128, 320, 512), mlp_ratios=(4, 4, 4, 4))
