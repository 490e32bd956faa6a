"""Every public remedies name is importable, documented and exported lazily from memlens."""

from __future__ import annotations

import inspect
import subprocess
import sys

import memlens
import memlens.remedies as remedies
from memlens.core.errors import CacheError, GCError, MemlensError, PoolError, ResourceError

TOP_LEVEL = (
    "WeakReferenceCache",
    "memoize",
    "MemoryPool",
    "ResourceManager",
    "GarbageCollectionOptimizer",
    "memory_efficient_context",
    "monitor_function_memory",
    "RecoveryLadder",
)


def test_every_public_name_is_documented() -> None:
    for name in remedies.__all__:
        obj = getattr(remedies, name)
        assert inspect.getdoc(obj), f"{name} has no docstring"


def test_memlens_exports_them_lazily() -> None:
    for name in TOP_LEVEL:
        assert getattr(memlens, name) is getattr(remedies, name)
        assert name in memlens.__all__
    code = "import sys, memlens; print('memlens.remedies' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # import memlens stays cheap


def test_errors_are_memlens_errors_with_their_own_names() -> None:
    for cls in (PoolError, ResourceError, GCError, CacheError):
        assert issubclass(cls, MemlensError)
    assert issubclass(CacheError, TypeError)  # what weakref itself raises
