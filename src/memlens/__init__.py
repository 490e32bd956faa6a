"""memlens: watch, explain and manage the memory of long-running Python services.

The public API is small; everything here is re-exported lazily so that
``import memlens`` stays cheap inside the services it watches.
"""

from __future__ import annotations

from typing import Any

from memlens.core.errors import MemlensError

__version__ = "0.1.0"

_LAZY: dict[str, tuple[str, str]] = {}

__all__ = ["MemlensError", "__version__"]


def __getattr__(name: str) -> Any:
    entry = _LAZY.get(name)
    if entry is None:
        raise AttributeError(f"module 'memlens' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(entry[0]), entry[1])
    globals()[name] = value
    return value
