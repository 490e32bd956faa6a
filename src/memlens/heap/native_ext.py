"""Optional C accelerators, and the switch that turns them off.

``pip install`` builds ``memlens._heapgraph`` (the doctor's reverse reference graph)
and ``memlens._sampler`` (the sampling allocation tracer) when a compiler is
available; every caller has a pure-Python path for when they are missing. Set
``MEMLENS_NO_EXTENSIONS=1`` to force the pure-Python paths (tests use it to cover
the fallback; users can use it to rule the extensions out when diagnosing a crash).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

DISABLE_ENV = "MEMLENS_NO_EXTENSIONS"

_cache: dict[str, ModuleType | None] = {}


def extensions_disabled() -> bool:
    """True when ``MEMLENS_NO_EXTENSIONS`` asks for the pure-Python paths."""
    return os.environ.get(DISABLE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def load_extension(name: str) -> ModuleType | None:
    """``memlens.<name>`` if it was built and is not disabled, else ``None``."""
    if extensions_disabled():
        return None
    if name not in _cache:
        try:
            _cache[name] = importlib.import_module(f"memlens.{name}")
        except ImportError:
            _cache[name] = None
    return _cache[name]
