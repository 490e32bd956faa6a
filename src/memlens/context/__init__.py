"""memlens.context: where an assistant's context tokens go, turn by turn, against a budget.

Small public API::

    from memlens.context import profile_file, diagnose
    profile = profile_file("session.jsonl", model="claude-sonnet-4-5")
    print(profile.summary())
    for finding in diagnose(profile).findings:
        print(finding.severity, finding.title, "->", finding.recommendation)

Build a session directly with :class:`ContextSession`; follow a growing transcript
with :class:`ContextProfiler`; check thresholds with :class:`ContextMonitor`.
"""

from __future__ import annotations

from memlens.context.budget import parse_budget, status_for
from memlens.context.diagnose import ContextDiagnosis, Finding, diagnose
from memlens.context.items import ContextItem
from memlens.context.layers import Layer
from memlens.context.leaks import ContextLeak, find_leaks
from memlens.context.models import ModelInfo, find_model, get_model, known_models, register_model
from memlens.context.monitor import Alert, ContextMonitor, Thresholds, check
from memlens.context.profile import ContextProfile, LayerProfile, UsageComparison
from memlens.context.profiler import ContextProfiler, profile_file
from memlens.context.session import ContextSession
from memlens.context.timeline import Projection, TurnStats
from memlens.context.tokens import CachedCounter, get_counter

__all__ = [
    "Alert",
    "CachedCounter",
    "ContextDiagnosis",
    "ContextItem",
    "ContextLeak",
    "ContextMonitor",
    "ContextProfile",
    "ContextProfiler",
    "ContextSession",
    "Finding",
    "Layer",
    "LayerProfile",
    "ModelInfo",
    "Projection",
    "Thresholds",
    "TurnStats",
    "UsageComparison",
    "check",
    "diagnose",
    "find_leaks",
    "find_model",
    "get_counter",
    "get_model",
    "known_models",
    "parse_budget",
    "profile_file",
    "register_model",
    "status_for",
]
