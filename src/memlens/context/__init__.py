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

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below, for type checkers and IDEs
    from memlens.context.budget import parse_budget, status_for
    from memlens.context.diagnose import ContextDiagnosis, Finding, diagnose
    from memlens.context.items import ContextItem
    from memlens.context.layers import Layer
    from memlens.context.leaks import ContextLeak, find_leaks
    from memlens.context.models import (
        ModelInfo,
        find_model,
        get_model,
        known_models,
        register_model,
    )
    from memlens.context.monitor import Alert, ContextMonitor, Thresholds, check
    from memlens.context.profile import ContextProfile, LayerProfile, UsageComparison
    from memlens.context.profiler import ContextProfiler, profile_file
    from memlens.context.session import ContextSession
    from memlens.context.timeline import Projection, TurnStats
    from memlens.context.tokens import CachedCounter, get_counter

# Each name loads its module on first use: importing one context module (a reader,
# the token counter) no longer loads the diagnosis and the monitor with it (#15).
_LAZY: dict[str, str] = {
    "parse_budget": "memlens.context.budget",
    "status_for": "memlens.context.budget",
    "ContextDiagnosis": "memlens.context.diagnose",
    "Finding": "memlens.context.diagnose",
    "diagnose": "memlens.context.diagnose",
    "ContextItem": "memlens.context.items",
    "Layer": "memlens.context.layers",
    "ContextLeak": "memlens.context.leaks",
    "find_leaks": "memlens.context.leaks",
    "ModelInfo": "memlens.context.models",
    "find_model": "memlens.context.models",
    "get_model": "memlens.context.models",
    "known_models": "memlens.context.models",
    "register_model": "memlens.context.models",
    "Alert": "memlens.context.monitor",
    "ContextMonitor": "memlens.context.monitor",
    "Thresholds": "memlens.context.monitor",
    "check": "memlens.context.monitor",
    "ContextProfile": "memlens.context.profile",
    "LayerProfile": "memlens.context.profile",
    "UsageComparison": "memlens.context.profile",
    "ContextProfiler": "memlens.context.profiler",
    "profile_file": "memlens.context.profiler",
    "ContextSession": "memlens.context.session",
    "Projection": "memlens.context.timeline",
    "TurnStats": "memlens.context.timeline",
    "CachedCounter": "memlens.context.tokens",
    "get_counter": "memlens.context.tokens",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """``memlens.context.diagnose`` is both a submodule and the function it defines.

    Importing the submodule makes the import system set the package's ``diagnose``
    to the module; the function keeps the name, as it did when this package
    imported everything eagerly.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "diagnose" and isinstance(value, types.ModuleType):
            value = value.diagnose
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

# The profile module registers the builder behind ContextSession.profile() (the
# session, a meter, may not import it): it loads with the package, as before.
importlib.import_module("memlens.context.profile")


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
