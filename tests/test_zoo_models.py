"""Model zoo: paper figures vs computed complexity, preprocessing vs the weights' own transforms, Cycle FC vs
deformable convolution. The project's own models through ONNX Runtime and OpenVINO are in test_export.py
(every registry model, the same tolerances: relative L2 < 1e-3, cosine > 0.9999, batch 8 and 1); exporting
them here a second time cost 330 of this file's 389 s (AMD Zen 4, 2 cores shared with other jobs)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from edgebench.models import get_spec, list_models, measure_complexity

TOLERANCE = 0.02

# Paper figures the registered definition knowingly does not reproduce; each reason is also in
# the model's docstring. strict xfail: the test fails if a figure starts to agree.
KNOWN_DEVIATIONS = {
    ("googlenet", "params"): "torchvision's GoogLeNet uses 3x3 where the paper's inception branch has 5x5 (6.62M)",
    ("seresnet50", "gmacs"): "timm downsamples in the 3x3 conv (ResNet v1.5), the paper's Caffe ResNet in the 1x1",
    ("rest_lite", "gmacs"): "paper's 1.4G is below the conv+linear MACs of the architecture it describes (1.46G)",
    ("rest_small", "gmacs"): "paper's 1.94G is below the conv+linear MACs of the architecture it describes (2.00G)",
    ("mobilenet_v2", "params"): ("torchvision counts BatchNorm's 34,112 scales/shifts (3.50M); the paper's 3.4M "
                                 "is the authors' 3.47M (TF-slim README: conv + FC weights only) truncated"),
    # The Lite README's "MAdds" also count element-wise BatchNorm/ReLU6 work (~3 ops per BN output element).
    ("tf_efficientnet_lite0", "gmacs"): "Lite README's 407M MAdds include element-wise work; conv+linear 0.385G",
    ("tf_efficientnet_lite1", "gmacs"): "Lite README's 631M MAdds include element-wise work; conv+linear 0.600G",
    ("tf_efficientnet_lite2", "gmacs"): "Lite README's 899M MAdds include element-wise work; conv+linear 0.860G",
}


def _marks(spec) -> list:
    return [pytest.mark.slow] if spec.slow else []


def _printed_decimals(figure: float) -> int:
    text = repr(float(figure))
    return len(text.split(".")[1].rstrip("0")) if "." in text else 0


def agrees(measured: float, paper: float) -> bool:
    """Within 2% of the paper, or equal to it at the precision the paper prints (1.367 vs '1.4')."""
    return abs(measured / paper - 1) <= TOLERANCE or math.isclose(
        round(measured, _printed_decimals(paper)), paper, rel_tol=0, abs_tol=1e-9)


def _figure_cases():
    for spec in list_models():
        for kind in ("params", "gmacs"):
            marks = _marks(spec)
            paper = spec.paper_params_m if kind == "params" else spec.paper_gmacs
            if paper is not None and (spec.name, kind) in KNOWN_DEVIATIONS:
                marks = [*marks, pytest.mark.xfail(reason=KNOWN_DEVIATIONS[spec.name, kind], strict=True)]
            yield pytest.param(spec.name, kind, id=f"{spec.name}-{kind}", marks=marks)


_COMPLEXITY: dict[str, object] = {}


def _complexity(name: str):
    if name not in _COMPLEXITY:
        spec = get_spec(name)
        _COMPLEXITY[name] = measure_complexity(spec.build(), spec.input_shape)
    return _COMPLEXITY[name]


@pytest.mark.integration
@pytest.mark.parametrize(("name", "kind"), list(_figure_cases()))
def test_paper_figures(name: str, kind: str) -> None:
    spec = get_spec(name)
    paper = spec.paper_params_m if kind == "params" else spec.paper_gmacs
    if paper is None:
        pytest.skip(f"the paper gives no {kind} figure for {name}")
    found = _complexity(name)
    measured = found.params_m if kind == "params" else found.gmacs
    assert agrees(measured, paper), f"{name}: {kind} {measured:.4g} vs paper {paper} ({measured / paper - 1:+.1%})"


def test_agreement_rule() -> None:
    assert agrees(1.367, 1.4)  # printed as 1.4
    assert agrees(0.102, 0.1)
    assert not agrees(6.625, 6.8)
    assert not agrees(62.3, 60)


def test_known_deviations_are_recorded() -> None:
    for name, kind in KNOWN_DEVIATIONS:
        spec = get_spec(name)
        assert (spec.paper_params_m if kind == "params" else spec.paper_gmacs) is not None


# --- Preprocessing copied from the weights' own transforms ----------------------------------------

def _weight_cases():
    for spec in list_models():
        source = next((w for w in spec.weights if w.kind in ("torchvision", "timm")), None)
        if source is not None:
            yield pytest.param(spec.name, source.kind, source.ref, id=spec.name)


@pytest.mark.parametrize(("name", "kind", "ref"), list(_weight_cases()))
def test_preprocess_matches_weights(name: str, kind: str, ref: str) -> None:
    pre = get_spec(name).preprocess
    if kind == "torchvision":
        from torchvision.models import get_weight
        t = get_weight(ref).transforms()
        expected = (t.crop_size[0], t.resize_size[0], t.interpolation.value, tuple(t.mean), tuple(t.std))
    else:
        import timm
        cfg = timm.models.get_pretrained_cfg(ref)
        size = cfg.input_size[-1]
        expected = (size, int(size / cfg.crop_pct), cfg.interpolation, tuple(cfg.mean), tuple(cfg.std))
    found = (pre.input_size, pre.resize, pre.interpolation, pre.mean, pre.std)
    assert found[:3] == expected[:3]
    np.testing.assert_allclose(found[3:], expected[3:], rtol=0, atol=1e-6)


# --- Cycle FC is the official deformable-conv formulation, with standard ops ---------------------

@pytest.mark.parametrize("kernel", [(1, 3), (3, 1), (1, 7)])
def test_cycle_fc_matches_deform_conv(kernel: tuple[int, int]) -> None:
    from torchvision.ops import deform_conv2d

    from edgebench.models.cyclemlp import CycleFC, cycle_offsets

    torch.manual_seed(0)
    channels, k = 11, max(kernel)
    layer = CycleFC(channels, 5, kernel)
    offset = torch.zeros(1, 2 * channels, 1, 1)  # (dy, dx) per input channel, as in the official gen_offset
    for c, shift in enumerate(cycle_offsets(channels, k)):
        offset[0, 2 * c + (1 if kernel[0] == 1 else 0)] = shift
    x = torch.randn(2, channels, 6, 9)
    with torch.no_grad():
        expected = deform_conv2d(x, offset.expand(2, -1, 6, 9), layer.weight, layer.bias)
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)
