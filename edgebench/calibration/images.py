"""Image decoding with OpenCV: EXIF orientation, grayscale, CMYK and alpha handled; bad files reported."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})


class UnreadableImage(Exception):
    """A file that is not a decodable image (corrupt, truncated, wrong format)."""


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode an image to HWC uint8 RGB.

    ``IMREAD_COLOR`` applies the EXIF orientation and turns grayscale and CMYK
    into 3 channels. Images with an alpha channel are composited on white, as
    PIL's ``convert('RGB')`` would show them on a page rather than on black.
    """
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        raise UnreadableImage(f"{path}: empty file")
    unchanged = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if unchanged is None:
        raise UnreadableImage(f"{path}: not a decodable image")
    if unchanged.ndim == 3 and unchanged.shape[2] == 4 and Path(path).suffix.lower() in (".png", ".webp", ".tif", ".tiff"):
        bgr = unchanged[:, :, :3].astype(np.float32)
        alpha = unchanged[:, :, 3:4].astype(np.float32) / (65535.0 if unchanged.dtype == np.uint16 else 255.0)
        if unchanged.dtype == np.uint16:
            bgr /= 257.0
        rgb = (bgr * alpha + 255.0 * (1.0 - alpha))[:, :, ::-1]
        return np.ascontiguousarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise UnreadableImage(f"{path}: not a decodable image")
    return np.ascontiguousarray(bgr[:, :, ::-1])
