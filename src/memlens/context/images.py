"""Token cost of images, from their pixel size read out of the first bytes.

Anthropic documents ``tokens ≈ width × height / 750`` after the image is scaled to a
long edge of at most 1568 px (about 1.15 megapixels); OpenAI documents 85 tokens for
``detail: low`` and ``85 + 170 × tiles`` of 512 px otherwise, after fitting into
2048 × 2048 and scaling the short side to 768. When the size cannot be read (a URL, a
truncated payload), a typical cost is used and the item is labelled an estimate.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct

#: Costs used when an image's pixel size is unknown.
ANTHROPIC_UNKNOWN_IMAGE = 1600
OPENAI_UNKNOWN_IMAGE = 765


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, GIF, JPEG or WebP from its leading bytes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return int(w), int(h)
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            w = 1 + int.from_bytes(data[24:27], "little")
            h = 1 + int.from_bytes(data[27:30], "little")
            return w, h
        if chunk == b"VP8 ":
            w, h = struct.unpack("<HH", data[26:30])
            return w & 0x3FFF, h & 0x3FFF
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                i += 1 if marker == 0xFF else 2
                continue
            length = struct.unpack(">H", data[i + 2 : i + 4])[0]
            if marker in (
                0xC0,
                0xC1,
                0xC2,
                0xC3,
                0xC5,
                0xC6,
                0xC7,
                0xC9,
                0xCA,
                0xCB,
                0xCD,
                0xCE,
                0xCF,
            ):
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(w), int(h)
            i += 2 + length
    return None


def size_from_base64(data: str, limit: int = 262_144) -> tuple[int, int] | None:
    """Pixel size from the head of a base64 payload (decodes at most ``limit`` chars)."""
    head = data[: limit - limit % 4]
    try:
        raw = base64.b64decode(head + "=" * (-len(head) % 4), validate=False)
    except (binascii.Error, ValueError):
        return None
    return image_size(raw)


def anthropic_image_tokens(size: tuple[int, int] | None) -> int:
    """Claude's documented image cost for an image of ``size`` pixels."""
    if size is None:
        return ANTHROPIC_UNKNOWN_IMAGE
    w, h = size
    if w <= 0 or h <= 0:
        return ANTHROPIC_UNKNOWN_IMAGE
    scale = min(1.0, 1568 / max(w, h), math.sqrt(1_150_000 / (w * h)))
    return max(1, math.ceil((w * scale) * (h * scale) / 750))


def openai_image_tokens(size: tuple[int, int] | None, detail: str = "auto") -> int:
    """OpenAI's documented tile-based image cost."""
    if detail == "low":
        return 85
    if size is None:
        return OPENAI_UNKNOWN_IMAGE
    w, h = (float(v) for v in size)
    if w <= 0 or h <= 0:
        return OPENAI_UNKNOWN_IMAGE
    fit = min(1.0, 2048 / max(w, h))
    w, h = w * fit, h * fit
    short = min(w, h)
    if short > 768:
        w, h = w * 768 / short, h * 768 / short
    tiles = math.ceil(w / 512) * math.ceil(h / 512)
    return 85 + 170 * tiles
