"""Visual Transformer on ResNet-18 (VT-ResNet-18).

Wu et al. 2020, *Visual Transformers: Token-based Image Representation and
Processing for Computer Vision* (arXiv 2006.03677; ICCV 2021 as "Visual
Transformers: Where Do Transformers Really Belong in Vision Models?").

A VT module turns a feature map ``X`` (HW x C) into L visual tokens, relates the
tokens with a transformer, and projects them back onto the map (Section 3):

* filter-based tokenizer (Eq. 1): ``A = softmax_HW(X W_A)``, ``T = A^T X``;
* recurrent tokenizer (Eq. 2): ``W_R = T_in W_T->R``, ``T = softmax_HW(X W_R)^T X``;
* transformer (Eq. 3-4): ``T' = T + softmax_L((T K)(T Q)^T) T``,
  ``T_out = T' + ReLU(T' F1) F2`` with ``K, Q`` (C_T x C_T/2) and ``F1, F2`` (C_T x C_T);
* projector (Eq. 5): ``X_out = X + softmax_L((X W_Q)(T W_K)^T) T``.

VT-ResNet-18 (Section 4): ResNet-18's stages 1-4, then its last stage (two basic
blocks) replaced by two VT modules at 14x14 with the stage-4 channel size
C = 256, 16 tokens; the first module has a filter-based tokenizer, the second
a recurrent one; the tokens are fed to the classification head (average pool
over tokens + fully-connected), so the last module's projector, whose output
nothing reads, is left out (an exporter would drop it as dead code anyway). Tokens have C_T = 1024 channels (the token
width the paper uses for its VT modules). Where the paper is silent on shapes
this implementation adds the minimal linear maps the equations need to change
width: the pooled tokens are lifted C -> C_T, ``W_T->R`` maps C_T -> C, and the
projector's values ``T`` are mapped C_T -> C (``W_K`` is C_T x C); attention
logits are scaled by 1/sqrt(width) as in the standard transformer.

Paper figures against this definition: docs/models.md.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

from edgebench.models.layers import kaiming_conv_init_
from edgebench.models.registry import Preprocess, register_model


def _attend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, dim: int) -> torch.Tensor:
    """softmax(query key^T / sqrt(d)) value, softmax over the keys (``dim`` = -1) or the queries (-2)."""
    logits = (query * query.shape[-1] ** -0.5) @ key.transpose(-2, -1)
    return logits.softmax(dim=dim) @ value


class FilterTokenizer(nn.Module):
    """Eq. 1: ``T = softmax_HW(X W_A)^T X`` (L tokens), lifted to the token width."""

    def __init__(self, channels: int, token_channels: int, tokens: int):
        super().__init__()
        self.attn = nn.Linear(channels, tokens, bias=False)  # W_A
        self.lift = nn.Linear(channels, token_channels, bias=False)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor | None = None) -> torch.Tensor:
        a = self.attn(x).softmax(dim=1)  # (B, HW, L), softmax over the pixels
        return self.lift(a.transpose(1, 2) @ x)


class RecurrentTokenizer(nn.Module):
    """Eq. 2: the previous tokens give the grouping weights ``W_R = T_in W_T->R``."""

    def __init__(self, channels: int, token_channels: int):
        super().__init__()
        self.query = nn.Linear(token_channels, channels, bias=False)  # W_T->R
        self.lift = nn.Linear(channels, token_channels, bias=False)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        w_r = self.query(tokens)  # (B, L, C)
        a = ((x * x.shape[-1] ** -0.5) @ w_r.transpose(1, 2)).softmax(dim=1)  # (B, HW, L)
        return self.lift(a.transpose(1, 2) @ x)


class TokenTransformer(nn.Module):
    """Eq. 3-4: self-attention among the tokens (values = the tokens), then a ReLU feed-forward."""

    def __init__(self, token_channels: int):
        super().__init__()
        self.key = nn.Linear(token_channels, token_channels // 2, bias=False)  # K
        self.query = nn.Linear(token_channels, token_channels // 2, bias=False)  # Q
        self.f1 = nn.Linear(token_channels, token_channels)
        self.f2 = nn.Linear(token_channels, token_channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        t = t + _attend(self.key(t), self.query(t), t, dim=-1)
        return t + self.f2(self.act(self.f1(t)))


class Projector(nn.Module):
    """Eq. 5: pixels query the tokens; the result is added to the feature map."""

    def __init__(self, channels: int, token_channels: int):
        super().__init__()
        self.query = nn.Linear(channels, channels, bias=False)  # W_Q
        self.key = nn.Linear(token_channels, channels, bias=False)  # W_K
        self.value = nn.Linear(token_channels, channels, bias=False)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return x + _attend(self.query(x), self.key(t), self.value(t), dim=-1)


class VTModule(nn.Module):
    """Tokenizer -> transformer -> projector on ``(B, HW, C)`` pixels; returns (pixels, tokens)."""

    def __init__(self, channels: int, token_channels: int, tokens: int, recurrent: bool, project: bool = True):
        super().__init__()
        self.tokenizer = (RecurrentTokenizer(channels, token_channels) if recurrent
                          else FilterTokenizer(channels, token_channels, tokens))
        self.transformer = TokenTransformer(token_channels)
        self.projector = Projector(channels, token_channels) if project else None

    def forward(self, x: torch.Tensor, tokens: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.transformer(self.tokenizer(x, tokens))
        return (x if self.projector is None else self.projector(x, tokens)), tokens


class VTResNet(nn.Module):
    def __init__(self, layers=(2, 2, 2, 2), tokens: int = 16, token_channels: int = 1024, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.inplanes = 64
        self.layer1 = self._make_layer(64, layers[0], 1)
        self.layer2 = self._make_layer(128, layers[1], 2)
        self.layer3 = self._make_layer(256, layers[2], 2)
        # The last stage: as many VT modules as the basic blocks they replace. The head reads the
        # tokens, so the last module's projector would compute an unused map: it is not built.
        n = layers[3]
        self.vt = nn.ModuleList(VTModule(256, token_channels, tokens, recurrent=i > 0, project=i < n - 1)
                                for i in range(n))
        self.fc = nn.Linear(token_channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                kaiming_conv_init_(m)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = x.flatten(2).transpose(1, 2)  # (B, HW, C)
        tokens = None
        for module in self.vt:
            x, tokens = module(x, tokens)
        return self.fc(tokens.mean(dim=1))


@register_model(family="hybrid", preprocess=Preprocess(224, 256, "bilinear"), aliases=("vt_r18",),
                paper=("Wu et al. 2020, Visual Transformers: Token-based Image Representation and Processing for "
                       "Computer Vision (arXiv 2006.03677)"),
                paper_params_m=11.7, paper_gmacs=1.569)
def vt_resnet18() -> nn.Module:
    """VT-ResNet-18: ResNet-18 whose last stage is two Visual Transformer modules (16 tokens)."""
    return VTResNet(layers=(2, 2, 2, 2), tokens=16, token_channels=1024)
