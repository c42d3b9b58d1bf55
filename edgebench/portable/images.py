"""Image decoding with OpenCV: EXIF orientation, grayscale, CMYK and alpha handled; bad files reported."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .image_header import MAX_PIXELS, image_size

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})


class UnreadableImage(Exception):
    """A file that is not a decodable image (corrupt, truncated, wrong format)."""


def truncation(data: bytes) -> str | None:
    """Why a JPEG or PNG file is cut short, or None.

    OpenCV decodes a truncated JPEG without an error (the missing rows come out
    grey), so the end-of-image marker (0xFFD9 after the last scan) and PNG's
    IEND chunk are checked before decoding.
    """
    if data[:2] == b"\xff\xd8":
        last_scan = data.rfind(b"\xff\xda")
        if last_scan < 0:
            return "truncated JPEG (no image scan)"
        if data.rfind(b"\xff\xd9") < last_scan:
            return "truncated JPEG (no end-of-image marker 0xFFD9)"
    elif data[:8] == b"\x89PNG\r\n\x1a\n" and data.rfind(b"IEND") < 0:
        return "truncated PNG (no IEND chunk)"
    return None


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode an image to HWC uint8 RGB.

    ``IMREAD_COLOR`` applies the EXIF orientation and turns grayscale and CMYK
    into 3 channels. Images with an alpha channel are composited on white, as
    PIL's ``convert('RGB')`` would show them on a page rather than on black.
    """
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        raise UnreadableImage(f"{path}: empty file")
    raw = data.tobytes()
    truncated = truncation(raw)
    if truncated:
        raise UnreadableImage(f"{path}: {truncated}")
    size = image_size(raw)
    if size and size[0] * size[1] > MAX_PIXELS:
        raise UnreadableImage(f"{path}: its header claims {size[0]}x{size[1]} pixels, over the limit of {MAX_PIXELS}")
    try:
        unchanged = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # e.g. OpenCV's own size limit, for formats whose header is not read here
        raise UnreadableImage(f"{path}: OpenCV cannot decode it ({str(exc).strip().splitlines()[-1]})") from None
    if unchanged is None:
        raise UnreadableImage(f"{path}: not a decodable image")
    if unchanged.ndim == 3 and unchanged.shape[2] == 2:  # grayscale + alpha
        unchanged = np.concatenate([np.repeat(unchanged[:, :, :1], 3, axis=2), unchanged[:, :, 1:2]], axis=2)
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
