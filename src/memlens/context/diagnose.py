"""Diagnoses with recommendations: why a window is full and what to cut.

Three symptoms are examined, each with its own checks:

* **high working memory** – items over 10K tokens, items not accessed for an hour,
  context leaks (growing or repeated items), and access patterns (items used once);
* **low cache hit rate** – idle gaps past the prompt cache's 5-minute TTL (or a short
  TTL of a service's own cache), eviction / invalidation rate, access randomness, and
  how often cache writes are read back (preload effectiveness);
* **token budget exhaustion** – layers over their allocation (imbalance), layers at
  their allocation (exhausted), poor compression, and too-frequent cleanup.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from memlens.context.layers import Layer
from memlens.context.monitor import Alert, Thresholds, check, metrics
from memlens.context.profile import ContextProfile
from memlens.context.session import utcnow
from memlens.core import findings as core
from memlens.core.findings import SEVERITIES, TOKENS, Remedy, worst
from memlens.core.units import format_tokens

LARGE_ITEM_TOKENS = 10_000
INACTIVE_AFTER = timedelta(hours=1)
#: Anthropic's default prompt-cache lifetime.
PROMPT_CACHE_TTL = timedelta(minutes=5)


@dataclass(init=False)
class Finding(core.Finding):
    """One problem found in a window: what, how many tokens, why, and the fix.

    The shared vocabulary of :mod:`memlens.core.findings` in tokens: ``category`` is
    the check's kind (``large_items``), ``summary`` its title, ``amount`` the
    tokens concerned; ``symptom`` and ``count`` are the context diagnosis's own.
    """

    symptom: str = ""  # high_working_memory, low_cache_hit_rate, token_budget_exhaustion
    count: int = 0  # how many items, gaps or cleanups

    def __init__(
        self,
        symptom: str,
        kind: str,
        severity: str,
        title: str,
        recommendation: str,
        tokens: int = 0,
        count: int = 0,
        items: list[str] | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            category=kind,
            severity=severity,
            summary=title,
            amount=tokens,
            unit=TOKENS,
            items=list(items or []),
            remedies=[Remedy(recommendation, unit=TOKENS)] if recommendation else [],
            evidence=dict(evidence or {}),
        )
        self.symptom = symptom
        self.count = count

    @property
    def title(self) -> str:
        return self.summary

    @property
    def recommendation(self) -> str:
        return self.remedies[0].title if self.remedies else ""

    @property
    def tokens(self) -> int:
        return int(self.amount)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["items"] = out["items"][:20]
        return out

    @classmethod
    def _upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        # Version 1: kind, title, tokens and one recommendation string.
        if "category" not in data and "kind" in data:
            data["category"] = data.pop("kind")
            data["summary"] = data.pop("title", "")
            data["amount"] = data.pop("tokens", 0)
            data["unit"] = TOKENS
            rec = data.pop("recommendation", "")
            data["remedies"] = [{"title": rec, "unit": TOKENS}] if rec else []
        return data


@dataclass(init=False)
class ContextDiagnosis(core.Diagnosis[Finding]):
    """All findings for one profile, worst first, with the alerts it raises.

    ``verdict`` is the worst severity (``"none"`` when nothing was found).
    """

    alerts: list[Alert] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    finding_type: ClassVar[type[core.Finding]] = Finding

    def __init__(
        self,
        findings: list[Finding],
        alerts: list[Alert],
        metrics: dict[str, Any],
        duration_seconds: float,
        target: str = "",
    ) -> None:
        super().__init__(
            target=target,
            verdict=worst(f.severity for f in findings),
            findings=list(findings),
            duration=duration_seconds,
        )
        self.alerts = list(alerts)
        self.metrics = dict(metrics)

    @property
    def duration_seconds(self) -> float:
        return self.duration

    def by_symptom(self, symptom: str) -> list[Finding]:
        return [f for f in self.findings if f.symptom == symptom]

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["severity"] = self.severity
        out["alerts"] = [a.to_dict() for a in self.alerts]
        out["metrics"] = {
            k: (round(v, 4) if isinstance(v, float) else v)
            for k, v in self.metrics.items()
            if not isinstance(v, datetime)
        }
        return out

    @classmethod
    def _upgrade(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        if version < 2:  # severity was the verdict; duration was in milliseconds
            data.setdefault("verdict", data.get("severity", "none"))
            if "duration_ms" in data:
                data["duration"] = data.pop("duration_ms") / 1000
        data["alerts"] = [_alert(a) for a in data.get("alerts", [])]
        return data


def _alert(data: Any) -> Alert:
    if isinstance(data, Alert):
        return data
    when = data.get("timestamp")
    stamp = datetime.fromisoformat(when.replace("Z", "+00:00")) if when else utcnow()
    return Alert(
        data["severity"], data["metric"], data["value"], data["threshold"], data["message"], stamp
    )


def _working_memory(profile: ContextProfile, reference: datetime) -> list[Finding]:
    findings: list[Finding] = []
    symptom = "high_working_memory"
    wm = [i for i in profile.items if i.layer is Layer.WORKING_MEMORY]
    large = [i for i in wm if i.tokens > LARGE_ITEM_TOKENS]
    if large:
        total = sum(i.tokens for i in large)
        findings.append(
            Finding(
                symptom,
                "large_items",
                "high",
                f"{len(large)} working-memory item(s) over {LARGE_ITEM_TOKENS // 1000}K tokens "
                f"hold {format_tokens(total)}",
                "Read ranges instead of whole files, truncate long command output, or replace "
                "the item with a summary once it has been used.",
                tokens=total,
                count=len(large),
                items=[i.label for i in large],
            )
        )
    inactive = [i for i in wm if i.last_accessed and reference - i.last_accessed > INACTIVE_AFTER]
    if inactive:
        total = sum(i.tokens for i in inactive)
        findings.append(
            Finding(
                symptom,
                "inactive_items",
                "medium",
                f"{len(inactive)} working-memory item(s) not used for over an hour "
                f"({format_tokens(total)})",
                "Archive finished tasks and evict items nobody has touched for an hour.",
                tokens=total,
                count=len(inactive),
                items=[i.label for i in inactive],
            )
        )
    for leak in profile.leaks:
        heavy = leak.tokens_in_window >= 0.05 * profile.budget
        if not leak.tokens_in_window:
            severity = "low"  # already compacted away: a habit to fix, no cost now
        else:
            severity = "high" if heavy or leak.kind.startswith("growing") else "medium"
        findings.append(
            Finding(
                symptom,
                leak.kind,
                severity,
                f"{leak.kind.replace('_', ' ')}: {leak.label} ×{leak.occurrences} "
                f"({format_tokens(leak.tokens_in_window)} redundant in the window)",
                leak.recommendation,
                tokens=leak.tokens_in_window,
                count=leak.occurrences,
                items=leak.item_ids,
                evidence={
                    "sizes": leak.sizes[-10:],
                    "total_tokens": leak.total_tokens,
                    "first_turn": leak.first_turn,
                    "last_turn": leak.last_turn,
                },
            )
        )
    if len(wm) >= 10:
        once = [i for i in wm if i.access_count <= 1]
        ratio = len(once) / len(wm)
        if ratio >= 0.8:
            findings.append(
                Finding(
                    symptom,
                    "poor_access_pattern",
                    "low",
                    f"{ratio:.0%} of working-memory items were used once and never again",
                    "Consolidate more often: summarise tool results after use and keep only "
                    "the conclusions in the window.",
                    tokens=sum(i.tokens for i in once),
                    count=len(once),
                    evidence={"single_use_ratio": round(ratio, 3)},
                )
            )
    return findings


def _cache(profile: ContextProfile, t: Thresholds) -> list[Finding]:
    rate = profile.cache_hit_rate
    if rate is None or rate >= t.cache_hit_rate_min:
        return []
    symptom = "low_cache_hit_rate"
    findings: list[Finding] = []
    stats = profile.cache_stats
    calls = [c for c in profile.calls if c.context_tokens]
    gaps = 0
    invalidations = 0
    for prev, cur in zip(calls, calls[1:]):
        if prev.timestamp and cur.timestamp and cur.timestamp - prev.timestamp > PROMPT_CACHE_TTL:
            gaps += 1
        if cur.cache_read_tokens < 0.5 * (prev.cache_read_tokens + prev.cache_write_tokens):
            invalidations += 1
    ttl = stats.get("ttl_seconds")
    if gaps:
        findings.append(
            Finding(
                symptom,
                "short_ttl",
                "medium",
                f"{gaps} idle gap(s) longer than the 5-minute prompt-cache lifetime",
                "Use the 1-hour cache TTL for long pauses, or keep the cache warm before resuming.",
                count=gaps,
            )
        )
    elif ttl is not None and ttl < 12 * 3600:
        findings.append(
            Finding(
                symptom,
                "short_ttl",
                "medium",
                f"cache TTL is {ttl / 3600:.1f} h",
                "Increase the cache TTL for frequently used items.",
                evidence={"ttl_seconds": ttl},
            )
        )
    lookups = stats.get("hits", 0) + stats.get("misses", 0)
    eviction_rate = (
        (stats.get("evictions", 0) / lookups)
        if lookups
        else (invalidations / (len(calls) - 1) if len(calls) > 1 else 0.0)
    )
    if eviction_rate > 0.15:
        findings.append(
            Finding(
                symptom,
                "high_eviction_rate",
                "high",
                f"{eviction_rate:.0%} of cache lookups follow an eviction or invalidated prefix",
                "Keep the prompt prefix stable (no timestamps or reordered tools early in the "
                "prompt), and preload items you know will be needed.",
                evidence={"eviction_rate": round(eviction_rate, 3), "invalidations": invalidations},
            )
        )
    accesses = stats.get("accesses", 0)
    cache_items = [i for i in profile.items if i.layer is Layer.CACHE]
    if accesses and cache_items:
        distinct = sum(1 for i in cache_items if i.access_count > 1)
        randomness = 1 - distinct / len(cache_items)
        if randomness > 0.7:
            findings.append(
                Finding(
                    symptom,
                    "random_access",
                    "medium",
                    f"{randomness:.0%} of cached items were never reused",
                    "Profile access patterns and switch the eviction policy (LFU for skewed, "
                    "smaller cache for random access).",
                    evidence={"random_access_ratio": round(randomness, 3)},
                )
            )
    preloaded = stats.get("preloaded", 0)
    writes = sum(c.cache_write_tokens for c in profile.calls)
    reads = sum(c.cache_read_tokens for c in profile.calls)
    effectiveness = (
        (stats.get("preload_hits", 0) / preloaded)
        if preloaded
        else (reads / writes if writes else 1.0)
    )
    if effectiveness < 0.5:
        findings.append(
            Finding(
                symptom,
                "ineffective_preload",
                "low",
                f"cached content is read back only {effectiveness:.1f}× per write",
                "Review what is preloaded or marked for caching; cache only prefixes that repeat.",
                evidence={"preload_effectiveness": round(effectiveness, 3)},
            )
        )
    if not findings:
        findings.append(
            Finding(
                symptom,
                "low_cache_hit_rate",
                "medium",
                f"cache hit rate {rate:.0%}",
                "Review what invalidates the cache.",
                evidence={"cache_hit_rate": round(rate, 3)},
            )
        )
    return findings


def _largest_part(breakdown: dict[str, int]) -> str:
    """`` (largest: debug info, 21.0k)`` for the biggest non-empty sub-layer, or ""."""
    parts = [(tokens, name) for name, tokens in breakdown.items() if tokens > 0]
    if not parts:
        return ""
    tokens, name = max(parts)
    return f" (largest: {name.replace('_', ' ')}, {format_tokens(tokens)})"


def _budget(profile: ContextProfile, t: Thresholds) -> list[Finding]:
    symptom = "token_budget_exhaustion"
    findings: list[Finding] = []
    if profile.utilization >= t.token_budget_warning:
        left = profile.projection.turns_left
        largest = profile.layers[profile.largest_component]
        findings.append(
            Finding(
                symptom,
                "budget_usage",
                "critical" if profile.utilization >= t.token_budget_critical else "high",
                f"window at {profile.utilization:.0%} of {format_tokens(profile.budget)}"
                + (f", about {left} turn(s) left" if left is not None else ""),
                f"Cut the largest layer first ({largest.layer.label}, "
                f"{format_tokens(largest.tokens)}) or compact now.",
                tokens=profile.total_tokens,
            )
        )
    for layer, lp in profile.layers.items():
        cap = t.share(layer) * profile.budget
        if not lp.tokens or not cap:
            continue
        used = lp.tokens / cap
        if used > 1:
            findings.append(
                Finding(
                    symptom,
                    "layer_imbalance",
                    "high",
                    f"{layer.label} is {used - 1:.0%} over its {t.share(layer):.0%} allocation",
                    f"Reduce {layer.label}{_largest_part(lp.breakdown)} or raise "
                    "its allocation deliberately.",
                    tokens=int(lp.tokens - cap),
                    evidence={"utilization": round(used, 3)},
                )
            )
        elif used >= 0.95:
            findings.append(
                Finding(
                    symptom,
                    "exhausted_layer",
                    "critical",
                    f"{layer.label} has used {used:.0%} of its allocation",
                    f"Trigger a cleanup of {layer.label} before it spills into other layers.",
                    tokens=lp.tokens,
                    evidence={"utilization": round(used, 3)},
                )
            )
    if profile.compressions:
        original = sum(o for o, _ in profile.compressions)
        compressed = sum(c for _, c in profile.compressions)
        ratio = compressed / original if original else 0.0
        if ratio > 0.7:
            findings.append(
                Finding(
                    symptom,
                    "poor_compression",
                    "medium",
                    f"compression keeps {ratio:.0%} of the original tokens",
                    "Summarise harder: keep decisions and open tasks, drop transcripts of work done.",
                    evidence={"compression_ratio": round(ratio, 3)},
                )
            )
    if len(profile.cleanups) >= 2 and profile.first_timestamp and profile.last_timestamp:
        hours = max((profile.last_timestamp - profile.first_timestamp).total_seconds() / 3600, 1.0)
        rate = len(profile.cleanups) / hours
        if rate > 3:
            findings.append(
                Finding(
                    symptom,
                    "frequent_cleanup",
                    "high",
                    f"{len(profile.cleanups)} cleanups/compactions, {rate:.1f} per hour",
                    "Retain less history per turn (smaller tool outputs, fewer re-reads) so the "
                    "window needs compacting less often.",
                    count=len(profile.cleanups),
                    evidence={"per_hour": round(rate, 2)},
                )
            )
    return findings


def diagnose(
    profile: ContextProfile, thresholds: Thresholds | None = None, *, now: datetime | None = None
) -> ContextDiagnosis:
    """Diagnose ``profile``: findings with recommendations, worst first.

    Inactivity is judged against ``now`` (default: the transcript's last timestamp,
    so an old transcript is diagnosed as it was when it ended).
    """
    started = time.perf_counter()
    t = thresholds or Thresholds()
    reference = now or profile.last_timestamp or profile.profiled_at
    findings = _working_memory(profile, reference) + _cache(profile, t) + _budget(profile, t)
    findings.sort(key=lambda f: (SEVERITIES.index(f.severity), f.tokens), reverse=True)
    return ContextDiagnosis(
        findings, check(profile, t), metrics(profile, t), time.perf_counter() - started
    )
