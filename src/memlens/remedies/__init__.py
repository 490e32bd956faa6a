"""Remedies: instrumented building blocks that fix what the doctor finds.

Caches that cannot grow without bound or keep their owners alive
(:class:`WeakReferenceCache`, :func:`memoize`), bounded pools that report what was
never returned (:class:`MemoryPool`, :class:`ResourceManager`), GC tuning measured on
your workload (:class:`GarbageCollectionOptimizer`), block and call measurement
(:func:`memory_efficient_context`, :func:`monitor_function_memory`) and the
recovery ladder the monitor runs when memory stays high (:class:`RecoveryLadder`,
:mod:`memlens.remedies.recycle`). Every cache and pool registers with
:mod:`memlens.remedies.registry`, which the monitor's exporters read. See
``docs/remedies.md``.
"""

from __future__ import annotations

from memlens.remedies.blocks import (
    BlockMemory,
    FunctionMemoryStats,
    memory_efficient_context,
    monitor_function_memory,
)
from memlens.remedies.caches import CacheStats, Memo, WeakReferenceCache, memoize
from memlens.remedies.collection import ShortPauseCollector, ShortPauseResult, freeze_long_lived
from memlens.remedies.gc_tuning import (
    CollectionResult,
    GarbageCollectionOptimizer,
    GcMeasurement,
    GcSettings,
    GcTuningReport,
)
from memlens.remedies.ladder import LadderRun, RecoveryLadder, StepResult
from memlens.remedies.pools import Buffer, MemoryPool, PoolLeak, ResourceManager
from memlens.remedies.readings import MemoryReading, Reclaimed, read_memory
from memlens.remedies.registry import register_cache_clearer
from memlens.remedies.sizing import deep_sizeof

__all__ = [
    "BlockMemory",
    "Buffer",
    "CacheStats",
    "CollectionResult",
    "FunctionMemoryStats",
    "GarbageCollectionOptimizer",
    "GcMeasurement",
    "GcSettings",
    "GcTuningReport",
    "LadderRun",
    "Memo",
    "MemoryPool",
    "MemoryReading",
    "PoolLeak",
    "Reclaimed",
    "RecoveryLadder",
    "ResourceManager",
    "ShortPauseCollector",
    "ShortPauseResult",
    "StepResult",
    "WeakReferenceCache",
    "deep_sizeof",
    "freeze_long_lived",
    "memoize",
    "memory_efficient_context",
    "monitor_function_memory",
    "read_memory",
    "register_cache_clearer",
]
