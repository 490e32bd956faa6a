"""Shared agent memory: many workers, one memory (see docs/shared-memory.md).

- :class:`DistributedMemoryManager`: a local cache per session, versioned sync with a
  record store on Redis or SQLite (compare-and-set, per-key conflict strategies,
  background sync, degraded local-only mode);
- :class:`SharedContextMemory`: a ``ContextMemory`` whose items are one manager
  session, so every worker sees one window (archive: :class:`RecordArchive`);
- :func:`check_memory` / :func:`recover_corrupted_memory`: checksums, last good
  snapshot + journal, validation, rebuild;
- :class:`SessionKnowledgeTransfer`: preferences, patterns, shortcuts and common tasks
  carried from one session to another, with confidence, evidence and history;
- :class:`AccessPredictor` / :class:`Prefetcher`: variable-order Markov prediction of
  the next accesses and a hot cache that prefetches above a confidence;
- :func:`open_lazy`: records that load on first use, through ``lazy-object-proxy``.
"""

from __future__ import annotations

from memlens.context.shared.knowledge import KnowledgeItem, SessionKnowledgeTransfer, TransferResult
from memlens.context.shared.lazy import LazyMemory, lazy_record, open_eager, open_lazy
from memlens.context.shared.manager import DistributedMemoryManager, MemoryEvent
from memlens.context.shared.memory import SharedContextMemory, open_shared_memory
from memlens.context.shared.prefetch import AccessPredictor, HotCache, Prefetcher
from memlens.context.shared.recovery import (
    CheckReport,
    Problem,
    RecoveryResult,
    check_memory,
    recover_corrupted_memory,
)
from memlens.context.shared.sync import Conflict, SyncResult

__all__ = [
    "AccessPredictor",
    "CheckReport",
    "Conflict",
    "DistributedMemoryManager",
    "HotCache",
    "KnowledgeItem",
    "LazyMemory",
    "MemoryEvent",
    "Prefetcher",
    "Problem",
    "RecoveryResult",
    "SessionKnowledgeTransfer",
    "SharedContextMemory",
    "SyncResult",
    "TransferResult",
    "check_memory",
    "lazy_record",
    "open_eager",
    "open_lazy",
    "open_shared_memory",
    "recover_corrupted_memory",
]
