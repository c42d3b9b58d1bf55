"""ZFNet.

Zeiler & Fergus 2013, *Visualizing and Understanding Convolutional Networks*
(arXiv 1311.2901), Figure 3: an AlexNet-like network whose first layer is
7x7 stride 2 (instead of 11x11 stride 4), so that its features keep more
mid-frequency information. 224x224 input:

=======  ==============================  =========================
layer    operation                       output
=======  ==============================  =========================
1        96 x 7x7 / 2, ReLU              110 x 110
         3x3 / 2 max pool, contrast norm  55 x 55
2        256 x 5x5 / 2, ReLU             26 x 26
         3x3 / 2 max pool, contrast norm  13 x 13
3, 4     384 x 3x3, ReLU                 13 x 13
5        256 x 3x3, ReLU                 13 x 13
         3x3 / 2 max pool                6 x 6
6, 7     fully connected 4096, ReLU,     dropout 0.5
8        fully connected 1000 (softmax)
=======  ==============================  =========================

The paper's "contrast normalization across feature maps" is AlexNet's local
response normalization (size 5, alpha 1e-4, beta 0.75, k 2). Pooling uses
``ceil_mode`` to reproduce the paper's 55 and 13 map sizes. The paper gives no
parameter or FLOP count (this definition has 62.4M parameters, 1.17 GMACs).
"""

from __future__ import annotations

import torch
from torch import nn

from edgebench.models.layers import kaiming_conv_init_
from edgebench.models.registry import Preprocess, register_model


class ZFNet(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=7, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.Conv2d(96, 256, kernel_size=5, stride=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                kaiming_conv_init_(m)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


@register_model(family="cnn", preprocess=Preprocess(224, 256, "bilinear"), aliases=("zf_net",),
                paper="Zeiler & Fergus 2013, Visualizing and Understanding Convolutional Networks (arXiv 1311.2901)")
def zfnet() -> nn.Module:
    """ZFNet: AlexNet-like CNN with a 7x7 stride-2 first layer (ILSVRC 2013)."""
    return ZFNet()
