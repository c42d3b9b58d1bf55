"""The one preprocessing implementation, driven by a model spec's :class:`Preprocess`.

Every runtime (and the PyTorch reference) gets its input from here, so accuracy
differences between runtimes can never come from preprocessing differences.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from ..models.registry import Preprocess

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


def preprocess(rgb: np.ndarray, spec: "Preprocess") -> np.ndarray:
    """HWC uint8 RGB image -> CHW float32 tensor, normalised with the spec's mean/std."""
    img = center_crop(resize_shorter(rgb, spec.resize, spec.interpolation), spec.input_size)
    img = img.astype(np.float32) / 255.0
    img -= np.asarray(spec.mean, dtype=np.float32)
    img /= np.asarray(spec.std, dtype=np.float32)
    return np.ascontiguousarray(img.transpose(2, 0, 1))


def preprocess_batch(images: list[np.ndarray], spec: "Preprocess") -> np.ndarray:
    """A list of RGB images -> one NCHW float32 batch."""
    return np.stack([preprocess(img, spec) for img in images])
