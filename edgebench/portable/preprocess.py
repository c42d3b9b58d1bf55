"""The one preprocessing implementation, driven by a weight tag's :class:`Preprocess`.

Every runtime (and the PyTorch reference) gets its input from here, on the host and
in the device runner alike, so accuracy differences between runtimes or machines can
never come from preprocessing differences.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import cv2
import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Preprocess:
    """Shorter-side resize, center crop, RGB, scale to [0,1], mean/std, NCHW float32."""

    input_size: int = 224
    resize: int = 256
    interpolation: Literal["bilinear", "bicubic", "nearest"] = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @property
    def crop_pct(self) -> float:
        return self.input_size / self.resize

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (3, self.input_size, self.input_size)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Preprocess:
        """From ``to_dict()`` output, e.g. a manifest's or a bundle's ``preprocess``."""
        return cls(int(d["input_size"]), int(d["resize"]), d["interpolation"], tuple(d["mean"]), tuple(d["std"]))


def preprocess_for(input_size: int, crop_pct: float = 0.875, interpolation: str = "bilinear",
                   mean: tuple = IMAGENET_MEAN, std: tuple = IMAGENET_STD) -> Preprocess:
    """Preprocessing from timm-style (input size, crop_pct) figures."""
    return Preprocess(input_size, int(input_size / crop_pct), interpolation, tuple(mean), tuple(std))  # type: ignore[arg-type]


# Upscaling uses the spec's kernel; downscaling uses pixel-area averaging, OpenCV's
# counterpart of the antialiased resize that PIL (torchvision, timm) performs.
_UPSCALE = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC, "nearest": cv2.INTER_NEAREST}


def resize_shorter(rgb: np.ndarray, size: int, interpolation: str) -> np.ndarray:
    """Resize so the shorter side is ``size``, keeping the aspect ratio (torchvision's rule)."""
    h, w = rgb.shape[:2]
    if h <= w:
        new_h, new_w = size, int(size * w / h)
    else:
        new_h, new_w = int(size * h / w), size
    if (new_h, new_w) == (h, w):
        return rgb
    downscale = new_h < h and new_w < w
    mode = cv2.INTER_AREA if downscale and interpolation != "nearest" else _UPSCALE[interpolation]
    return cv2.resize(rgb, (new_w, new_h), interpolation=mode)


def center_crop(rgb: np.ndarray, size: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    if h < size or w < size:  # pad like torchvision's CenterCrop
        pad_h, pad_w = max(size - h, 0), max(size - w, 0)
        rgb = cv2.copyMakeBorder(rgb, pad_h // 2, pad_h - pad_h // 2, pad_w // 2, pad_w - pad_w // 2,
                                 cv2.BORDER_CONSTANT, value=0)
        h, w = rgb.shape[:2]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return rgb[top:top + size, left:left + size]


def preprocess(rgb: np.ndarray, spec: Preprocess) -> np.ndarray:
    """HWC uint8 RGB image -> CHW float32 tensor, normalised with the spec's mean/std."""
    img = center_crop(resize_shorter(rgb, spec.resize, spec.interpolation), spec.input_size)
    img = img.astype(np.float32) / 255.0
    img -= np.asarray(spec.mean, dtype=np.float32)
    img /= np.asarray(spec.std, dtype=np.float32)
    return np.ascontiguousarray(img.transpose(2, 0, 1))


def preprocess_batch(images: list[np.ndarray], spec: Preprocess) -> np.ndarray:
    """A list of RGB images -> one NCHW float32 batch."""
    return np.stack([preprocess(img, spec) for img in images])
