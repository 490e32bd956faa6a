"""Alert thresholds and a monitor that checks profiles against them.

Defaults: working memory warning 0.75 / critical 0.85 (of its allocation of the
budget), prompt-cache hit rate minimum 0.65, token budget warning 0.85 / critical
0.95. A layer's *allocation* is the share of the budget it is expected to stay under
(:data:`DEFAULT_ALLOCATION`); the imbalance diagnosis uses the same table.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from memlens.context.layers import Layer
from memlens.context.profile import ContextProfile
from memlens.context.session import utcnow
from memlens.core.errors import ConfigError

#: Share of the budget each layer is expected to stay under (caps, not a partition).
DEFAULT_ALLOCATION: dict[Layer, float] = {
    Layer.SYSTEM_PROMPT: 0.10,
    Layer.TOOL_DEFINITIONS: 0.10,
    Layer.MEMORY_FILES: 0.05,
    Layer.WORKING_MEMORY: 0.40,
    Layer.LONG_TERM_MEMORY: 0.10,
    Layer.CACHE: 0.10,
    Layer.AGENT_STATES: 0.15,
    Layer.CONVERSATION: 0.40,
}


@dataclass(frozen=True)
class Thresholds:
    """Alert thresholds (fractions in 0..1)."""

    working_memory_warning: float = 0.75
    working_memory_critical: float = 0.85
    cache_hit_rate_min: float = 0.65
    token_budget_warning: float = 0.85
    token_budget_critical: float = 0.95
    allocation: dict[Layer, float] = field(default_factory=lambda: dict(DEFAULT_ALLOCATION))

    def __post_init__(self) -> None:
        for name in (
            "working_memory_warning",
            "working_memory_critical",
            "cache_hit_rate_min",
            "token_budget_warning",
            "token_budget_critical",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ConfigError(f"invalid threshold {name}={value!r}: expected a number in 0..1")
        for low, high in (
            ("working_memory_warning", "working_memory_critical"),
            ("token_budget_warning", "token_budget_critical"),
        ):
            if getattr(self, low) > getattr(self, high):
                raise ConfigError(f"invalid thresholds: {low} must not exceed {high}")
        for layer, share in self.allocation.items():
            if not 0 < share <= 1:
                raise ConfigError(f"invalid allocation for {Layer.parse(layer).value}: {share!r}")

    def share(self, layer: Layer) -> float:
        return self.allocation.get(layer, DEFAULT_ALLOCATION[layer])


@dataclass
class Alert:
    """One threshold crossed."""

    severity: str
    metric: str
    value: float
    threshold: float
    message: str
    timestamp: datetime = field(default_factory=utcnow)

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "metric": self.metric,
            "value": round(self.value, 4),
            "threshold": self.threshold,
            "message": self.message,
            "timestamp": self.timestamp.isoformat().replace("+00:00", "Z"),
        }


def metrics(profile: ContextProfile, thresholds: Thresholds | None = None) -> dict[str, Any]:
    """The monitored metrics of a profile."""
    t = thresholds or Thresholds()
    wm = profile.layers[Layer.WORKING_MEMORY].tokens
    wm_cap = t.share(Layer.WORKING_MEMORY) * profile.budget
    originals = sum(o for o, _ in profile.compressions)
    compressed = sum(c for _, c in profile.compressions)
    return {
        "working_memory_utilization": wm / wm_cap if wm_cap else 0.0,
        "cache_hit_rate": profile.cache_hit_rate,
        "token_budget_usage": profile.utilization,
        "compression_ratio": compressed / originals if originals else None,
        "cleanup_count": len(profile.cleanups),
    }


def check(profile: ContextProfile, thresholds: Thresholds | None = None) -> list[Alert]:
    """Alerts for every threshold ``profile`` crosses (``>=`` for upper limits)."""
    t = thresholds or Thresholds()
    m = metrics(profile, t)
    alerts: list[Alert] = []
    wm = m["working_memory_utilization"]
    if wm >= t.working_memory_critical:
        alerts.append(
            Alert(
                "critical",
                "working_memory_utilization",
                wm,
                t.working_memory_critical,
                "Working memory is critically high: evict or summarise tool results now.",
            )
        )
    elif wm >= t.working_memory_warning:
        alerts.append(
            Alert(
                "warning",
                "working_memory_utilization",
                wm,
                t.working_memory_warning,
                "Working memory is approaching its allocation: clean up soon.",
            )
        )
    rate = m["cache_hit_rate"]
    if rate is not None and rate < t.cache_hit_rate_min:
        alerts.append(
            Alert(
                "warning",
                "cache_hit_rate",
                rate,
                t.cache_hit_rate_min,
                "Cache hit rate is below target: review what invalidates the cache.",
            )
        )
    usage = m["token_budget_usage"]
    if usage >= t.token_budget_critical:
        alerts.append(
            Alert(
                "critical",
                "token_budget_usage",
                usage,
                t.token_budget_critical,
                "Token budget is almost exhausted: compact or cut context now.",
            )
        )
    elif usage >= t.token_budget_warning:
        alerts.append(
            Alert(
                "warning",
                "token_budget_usage",
                usage,
                t.token_budget_warning,
                "Token budget is approaching its limit: plan a cleanup.",
            )
        )
    return alerts


class ManagedMemory(Protocol):
    """What :meth:`ContextMonitor.watch` needs of a managed memory (``ContextMemory``)."""

    def profile(self) -> ContextProfile: ...

    def run(self, action: str, reason: str, **options: Any) -> None: ...

    def schedule(self, action: str, reason: str, **options: Any) -> None: ...


#: The seed's responses: each alert's action on a managed memory. Critical alerts run
#: it now, warnings schedule it for the memory's next lifecycle tick.
ACTIONS: dict[tuple[str, str], str] = {
    ("working_memory_utilization", "critical"): "cleanup_working_memory",
    ("working_memory_utilization", "warning"): "cleanup_working_memory",
    ("token_budget_usage", "critical"): "aggressive_cleanup",
    ("token_budget_usage", "warning"): "cleanup",
}


@dataclass
class ActionEvent:
    """An action the monitor ran (``now``) or scheduled on a managed memory."""

    when: str
    action: str
    alert: Alert

    def to_dict(self) -> dict[str, Any]:
        return {"when": self.when, "action": self.action, "alert": self.alert.to_dict()}


class ContextMonitor:
    """Checks each new profile against thresholds and keeps a bounded history.

    ``on_alert`` is called for every alert raised, ``on_action`` for every action
    :meth:`watch` runs or schedules on a managed memory.
    """

    def __init__(
        self,
        thresholds: Thresholds | None = None,
        *,
        history: int = 1000,
        on_alert: Callable[[Alert], None] | None = None,
        on_action: Callable[[ActionEvent], None] | None = None,
    ) -> None:
        self.thresholds = thresholds or Thresholds()
        self.metrics_history: collections.deque[dict[str, Any]] = collections.deque(maxlen=history)
        self.alert_history: collections.deque[Alert] = collections.deque(maxlen=history)
        self.on_alert = on_alert
        self.on_action = on_action
        self.action_history: collections.deque[ActionEvent] = collections.deque(maxlen=history)

    def observe(self, profile: ContextProfile) -> list[Alert]:
        """Record ``profile``'s metrics and return the alerts it raises."""
        m = metrics(profile, self.thresholds)
        m["timestamp"] = utcnow()
        self.metrics_history.append(m)
        alerts = check(profile, self.thresholds)
        for alert in alerts:
            self.alert_history.append(alert)
            if self.on_alert is not None:
                self.on_alert(alert)
        return alerts

    def watch(self, memory: ManagedMemory) -> list[Alert]:
        """Check a managed memory and respond: critical alerts run their action now,
        warnings schedule it (see :data:`ACTIONS`)."""
        profile = memory.profile()
        alerts = self.observe(profile)
        t = self.thresholds
        for alert in alerts:
            action = ACTIONS.get((alert.metric, alert.severity))
            if action is None:
                continue
            options: dict[str, Any] = {}
            if action == "cleanup_working_memory":
                # back under the warning line, with a margin so it does not flap
                cap = t.share(Layer.WORKING_MEMORY) * profile.budget
                options["target_tokens"] = int(cap * t.working_memory_warning * 0.9)
            if alert.severity == "critical":
                memory.run(action, alert.message, **options)
                event = ActionEvent("now", action, alert)
            else:
                memory.schedule(action, alert.message, **options)
                event = ActionEvent("scheduled", action, alert)
            self.action_history.append(event)
            if self.on_action is not None:
                self.on_action(event)
        return alerts
