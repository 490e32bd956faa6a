"""memlens: watch, explain and manage the memory of long-running Python services.

The public API is small; everything here is re-exported lazily so that
``import memlens`` stays cheap inside the services it watches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memlens.core.errors import MemlensError
from memlens.core.version import __version__

if TYPE_CHECKING:  # the names below, for type checkers and IDEs
    from memlens.context import (
        ContextMonitor,
        ContextProfile,
        ContextProfiler,
        ContextSession,
    )
    from memlens.context import diagnose as diagnose_context
    from memlens.context import profile_file as profile_context
    from memlens.context.memory import ContextMemory, fit_messages
    from memlens.context.shared import DistributedMemoryManager, SyncResult
    from memlens.core.config import Config, load_config
    from memlens.core.session import Session
    from memlens.core.units import parse_size
    from memlens.heap.doctor import LeakFound, doctor
    from memlens.heap.objects import objects
    from memlens.line_decorator import lines
    from memlens.profiling import Profiler, profile, session
    from memlens.remedies import (
        GarbageCollectionOptimizer,
        MemoryPool,
        RecoveryLadder,
        ResourceManager,
        WeakReferenceCache,
        memoize,
        memory_efficient_context,
        monitor_function_memory,
    )
    from memlens.service import monitor
    from memlens.service.monitor import Monitor

_LAZY: dict[str, tuple[str, str]] = {
    "session": ("memlens.profiling", "session"),
    "profile": ("memlens.profiling", "profile"),
    "Profiler": ("memlens.profiling", "Profiler"),
    "Session": ("memlens.core.session", "Session"),
    "Config": ("memlens.core.config", "Config"),
    "load_config": ("memlens.core.config", "load_config"),
    "parse_size": ("memlens.core.units", "parse_size"),
    "doctor": ("memlens.heap.doctor", "doctor"),
    "LeakFound": ("memlens.heap.doctor", "LeakFound"),
    "lines": ("memlens.line_decorator", "lines"),
    "objects": ("memlens.heap.objects", "objects"),
    "Monitor": ("memlens.service.monitor", "Monitor"),
    "monitor": ("memlens.service", "monitor"),
    "ContextSession": ("memlens.context", "ContextSession"),
    "ContextProfiler": ("memlens.context", "ContextProfiler"),
    "ContextProfile": ("memlens.context", "ContextProfile"),
    "ContextMonitor": ("memlens.context", "ContextMonitor"),
    "profile_context": ("memlens.context", "profile_file"),
    "diagnose_context": ("memlens.context", "diagnose"),
    "ContextMemory": ("memlens.context.memory", "ContextMemory"),
    "fit_messages": ("memlens.context.memory", "fit_messages"),
    "WeakReferenceCache": ("memlens.remedies", "WeakReferenceCache"),
    "memoize": ("memlens.remedies", "memoize"),
    "MemoryPool": ("memlens.remedies", "MemoryPool"),
    "ResourceManager": ("memlens.remedies", "ResourceManager"),
    "GarbageCollectionOptimizer": ("memlens.remedies", "GarbageCollectionOptimizer"),
    "memory_efficient_context": ("memlens.remedies", "memory_efficient_context"),
    "monitor_function_memory": ("memlens.remedies", "monitor_function_memory"),
    "RecoveryLadder": ("memlens.remedies", "RecoveryLadder"),
    "DistributedMemoryManager": ("memlens.context.shared", "DistributedMemoryManager"),
    "SyncResult": ("memlens.context.shared", "SyncResult"),
}

__all__ = ["MemlensError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    entry = _LAZY.get(name)
    if entry is None:
        raise AttributeError(f"module 'memlens' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(entry[0]), entry[1])
    globals()[name] = value
    return value
