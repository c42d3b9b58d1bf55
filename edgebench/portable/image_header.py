"""Image dimensions from the file header, read before decoding, so that a file claiming a huge size is
skipped instead of decoded.

OpenCV refuses images over 2**30 pixels by raising (which aborted a whole evaluation), and below that
limit allocates the full image (3 GiB as RGB) before it finds out whether the data is there. PNG, JPEG,
BMP, WebP and PNM headers are read here (numpy/OpenCV have no header-only reader); other formats
(TIFF) rely on OpenCV's own limit.
"""

from __future__ import annotations

import re
import struct

MAX_PIXELS = 1 << 28  # 268 M pixels: 0.8 GB as RGB, and a file is decoded twice (alpha check, then colour)

_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers (not DHT, JPG, DAC)
_PNM = re.compile(rb"^P[1-7](?:\s+|#[^\n]*\n)*?(\d+)(?:\s+|#[^\n]*\n)+?(\d+)")


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, BMP, WebP or PNM header; None for other formats or a header cut short."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
        if data[:2] == b"BM":
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)  # a negative height is a top-down bitmap
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        found = _PNM.match(data[:512])
        if found:
            return int(found[1]), int(found[2])
    except struct.error:
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The frame header's size: walk the marker segments from SOI to the first SOFn."""
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":  # extended: 24-bit width-1 and height-1
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L":  # lossless: 14-bit width-1 and height-1 after the signature byte
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 ":  # lossy: 14-bit sizes after the frame tag and start code
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None
