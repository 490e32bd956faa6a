"""Alert thresholds and diagnoses with recommendations."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from memlens.context import (
    ContextMonitor,
    ContextSession,
    Layer,
    Thresholds,
    check,
    diagnose,
    profile_file,
)
from memlens.core.errors import ConfigError

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def budget_session(tokens: int, budget: int = 1000):
    s = ContextSession()
    s.add(Layer.CONVERSATION, tokens=tokens)
    return s.profile(budget=budget)


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [(840, None), (850, "warning"), (949, "warning"), (950, "critical")],
)
def test_token_budget_alerts(tokens: int, expected: str | None) -> None:
    alerts = [a for a in check(budget_session(tokens)) if a.metric == "token_budget_usage"]
    assert [a.severity for a in alerts] == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("share", "expected"), [(0.70, None), (0.75, "warning"), (0.85, "critical")]
)
def test_working_memory_alerts(share: float, expected: str | None) -> None:
    s = ContextSession()
    s.add_working("files", tokens=int(share * 400))  # allocation: 40 % of 1000
    alerts = [a for a in check(s.profile(budget=1000)) if a.metric == "working_memory_utilization"]
    assert [a.severity for a in alerts] == ([expected] if expected else [])


def test_cache_hit_rate_alert_and_monitor() -> None:
    s = ContextSession()
    s.add_cache("hot", tokens=10)
    s.record_cache(hits=60, misses=40)
    seen = []
    monitor = ContextMonitor(on_alert=seen.append)
    alerts = monitor.observe(s.profile(budget=1000))
    assert [a.metric for a in alerts] == ["cache_hit_rate"] and seen == alerts
    assert monitor.metrics_history[-1]["cache_hit_rate"] == 0.6
    s.record_cache(hits=100)
    assert monitor.observe(s.profile(budget=1000)) == []


def test_thresholds_validation() -> None:
    with pytest.raises(ConfigError, match="working_memory_warning"):
        Thresholds(working_memory_warning=0.9, working_memory_critical=0.8)
    with pytest.raises(ConfigError, match="0..1"):
        Thresholds(cache_hit_rate_min=1.5)
    assert Thresholds().token_budget_warning == 0.85


def test_working_memory_diagnosis() -> None:
    s = ContextSession()
    s.add_working("files", tokens=12_000, label="huge.py", created=T0)
    for i in range(10):
        s.add_working("debug_info", tokens=100, label=f"old {i}", created=T0)
    s.add_message("user", "recent", created=T0 + timedelta(hours=2))
    d = diagnose(s.profile(budget=200_000))
    kinds = {f.kind: f for f in d.by_symptom("high_working_memory")}
    assert kinds["large_items"].items == ["huge.py"] and kinds["large_items"].tokens == 12_000
    assert kinds["inactive_items"].count == 11
    assert kinds["poor_access_pattern"].severity == "low"
    assert all(f.recommendation for f in d.findings)


def test_cache_diagnosis_for_a_service_cache() -> None:
    s = ContextSession()
    for i in range(10):
        s.add_cache("warm", tokens=50, id=f"c{i}")
    s.touch("c0")
    s.record_cache(hits=20, misses=80, evictions=30, ttl_seconds=600, preloaded=10, preload_hits=2)
    kinds = {f.kind for f in diagnose(s.profile()).by_symptom("low_cache_hit_rate")}
    assert kinds == {"short_ttl", "high_eviction_rate", "random_access", "ineffective_preload"}


def test_cache_diagnosis_for_a_transcript(uncompacted: Path) -> None:
    p = profile_file(uncompacted)
    p.cache_hit_rate = 0.5  # force the symptom; the checks read the calls themselves
    d = diagnose(p)
    kinds = {f.kind for f in d.by_symptom("low_cache_hit_rate")}
    assert "short_ttl" in kinds  # the fixture has a 10-minute idle gap


def test_budget_diagnosis() -> None:
    s = ContextSession()
    s.add_system_prompt("x", tokens=150)  # allocation 10 % of 1000: over
    s.add_tool({"name": "t"}, tokens=96)  # 96 % of its allocation: exhausted
    s.add_message("user", "q", tokens=700)
    now = datetime.now(timezone.utc)
    for n in range(5):
        s.record_cleanup(now - timedelta(minutes=10 * n))
    s.record_compression(1000, 800)
    d = diagnose(s.profile(budget=1000))
    kinds = {f.kind: f for f in d.by_symptom("token_budget_exhaustion")}
    assert kinds["budget_usage"].severity == "high"
    assert "system prompt" in kinds["layer_imbalance"].title
    assert "tool definitions" in kinds["exhausted_layer"].title
    assert kinds["poor_compression"].evidence["compression_ratio"] == 0.8
    assert kinds["frequent_cleanup"].count == 5
    assert d.severity == "critical" and d.findings[0].severity == "critical"
    assert d.to_dict()["findings"]


def test_healthy_session_has_no_findings() -> None:
    s = ContextSession()
    s.add_system_prompt("You are helpful.")
    s.add_message("user", "hi")
    d = diagnose(s.profile())
    assert d.findings == [] and d.severity == "none" and d.alerts == []
