"""SHA-256 without loading OpenSSL, for checksums on the always-on monitor's path.

``import hashlib`` loads OpenSSL's libcrypto: about 3.7 MiB of resident memory in
every process that persists monitor history, for a checksum of a few kilobytes.
CPython's built-in SHA-256 module (``_sha2`` from 3.12, ``_sha256`` before) costs a
few dozen kilobytes and gives the same digest; ``hashlib`` is the fallback on builds
without it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def _builtin_sha256() -> Callable[[bytes], Any]:
    for name in ("_sha2", "_sha256"):  # Python >= 3.12, then older
        try:
            return importlib.import_module(name).sha256
        except (ImportError, AttributeError):
            continue
    import hashlib  # a build without the built-in module

    return hashlib.sha256


_sha256 = _builtin_sha256()


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``, identical to ``hashlib.sha256(data).hexdigest()``."""
    return str(_sha256(data).hexdigest())
