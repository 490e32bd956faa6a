"""memlens.context.memory: keep an agent's context inside its budget without losing what matters.

::

    from memlens.context.memory import ContextMemory, fit_messages
    fitted = fit_messages(messages, budget="50k", model="gpt-4o")
    client.chat.completions.create(model="gpt-4o", messages=fitted.messages)

    memory = ContextMemory("200k", model="claude-sonnet-4-5")
    memory.add_system("You are ...")
    memory.add_message("user", "Fix the failing test")
    report = memory.fit()            # compress -> summarize -> evict, archived
    memory.expand(report.evicted[0]) # the original, checksum verified

See ``docs/context.md`` ("Managing the context") for the levels, invariants and figures.
"""

from __future__ import annotations

from memlens.context.memory.archive import Archive, ArchivedItem, InMemoryArchive, SQLiteArchive
from memlens.context.memory.entries import MemoryEntry, Priority
from memlens.context.memory.keepset import Keep, extract
from memlens.context.memory.levels import LevelRules
from memlens.context.memory.llm import AnthropicSummarizer, LLMSummarizer, OpenAISummarizer
from memlens.context.memory.memory import BudgetError, ContextMemory, FitReport, MemoryEvent
from memlens.context.memory.messages import (
    FitResult,
    RequestFitter,
    fit_messages,
    memory_from_file,
    memory_from_messages,
)
from memlens.context.memory.summarize import ExtractiveSummarizer, Summarizer, Summary, trim_output

__all__ = [
    "AnthropicSummarizer",
    "Archive",
    "ArchivedItem",
    "BudgetError",
    "ContextMemory",
    "ExtractiveSummarizer",
    "FitReport",
    "FitResult",
    "InMemoryArchive",
    "Keep",
    "LLMSummarizer",
    "LevelRules",
    "MemoryEntry",
    "MemoryEvent",
    "OpenAISummarizer",
    "Priority",
    "RequestFitter",
    "SQLiteArchive",
    "Summarizer",
    "Summary",
    "extract",
    "fit_messages",
    "memory_from_file",
    "memory_from_messages",
    "trim_output",
]
