"""Blob encoding for stored sessions: JSON, zlib-compressed, SHA-256 checked.

The checksum covers the bytes as stored, so a flipped bit anywhere in a blob is
caught before decompression or parsing is even attempted. SQLite itself does not
checksum pages, which is why memlens adds one.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from memlens.core.digest import sha256_hex
from memlens.core.errors import StoreError

CODEC = "json+zlib"


def checksum(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return sha256_hex(data)


def encode(obj: Any) -> tuple[bytes, str]:
    """Serialize ``obj`` to a compressed blob; return ``(blob, sha256)``."""
    raw = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8")
    # Level 6 is zlib's default trade-off; session JSON compresses ~5-10x.
    blob = zlib.compress(raw, 6)
    return blob, checksum(blob)


def decode(blob: bytes, expected_sha256: str, codec: str, what: str) -> Any:
    """Verify and decode a blob made by :func:`encode`.

    ``what`` names the blob in error messages ("session 2024… data").
    """
    if codec != CODEC:
        raise StoreError(f"{what} uses codec {codec!r}, which this memlens cannot read")
    if checksum(blob) != expected_sha256:
        raise StoreError(f"{what} is corrupted (checksum mismatch); other sessions are unaffected")
    try:
        return json.loads(zlib.decompress(blob).decode("utf-8"))
    except (zlib.error, UnicodeDecodeError, ValueError) as exc:
        raise StoreError(f"{what} cannot be decoded: {exc}") from exc
