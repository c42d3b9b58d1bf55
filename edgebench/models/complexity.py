"""Parameter count and MACs, computed from the model itself (never typed in)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class Complexity:
    params: int
    macs: int

    @property
    def params_m(self) -> float:
        return self.params / 1e6

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9


def measure_complexity(model: nn.Module, input_shape: tuple[int, int, int]) -> Complexity:
    """Parameters and multiply-accumulates of one forward pass at batch 1.

    MACs are torch's FlopCounterMode FLOPs / 2: convolutions, linear layers and
    attention matmuls, the convention of the papers (elementwise ops are not counted).
    """
    params = sum(p.numel() for p in model.parameters())
    model.eval()
    counter = FlopCounterMode(display=False)
    # Fused attention kernels hide their matmuls from the counter: use the math paths.
    with unfused_attention(), counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        model(torch.zeros(1, *input_shape))
    return Complexity(params=params, macs=counter.get_total_flops() // 2)


@contextlib.contextmanager
def unfused_attention() -> Iterator[None]:
    """``nn.MultiheadAttention`` without its inference fast path (``_native_multi_head_attention``),
    which hides its matmuls from the FLOP counter and which the ONNX exporter cannot export
    (torchvision's ViT)."""
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
