"""The lifecycle loop and the monitor driving it: thresholds, actions, events, cache."""

from __future__ import annotations

from datetime import datetime, timezone

from memlens.context import ContextMonitor
from memlens.context.layers import Layer
from memlens.context.memory import ContextMemory, MemoryEvent
from memlens.context.monitor import ActionEvent, metrics
from memlens.core.clock import ManualClock

HOUR = 3600.0


def _log(n: int, tag: str) -> str:
    return "\n".join(f"{tag}: worker {i} finished batch {i * 7} in 0.{i % 10}s" for i in range(n))


def _old(clock: ManualClock, hours: float) -> datetime:
    return datetime.fromtimestamp(clock.wall() - hours * HOUR, timezone.utc)


def test_tick_compresses_at_80_percent() -> None:
    clock = ManualClock()
    memory = ContextMemory(20_000, clock=clock, keep_last_turns=0)
    events: list[MemoryEvent] = []
    memory.subscribe(events.append)
    for i in range(16):
        memory.add_debug(_log(60, f"job{i}"), created=_old(clock, 30 + i))
    assert memory.utilization >= 0.8
    before = memory.tokens
    produced = memory.tick()
    assert memory.tokens < before
    assert [e.action for e in produced][:1] == ["compress"]
    assert events == produced


def test_tick_below_80_percent_does_nothing() -> None:
    clock = ManualClock()
    memory = ContextMemory(200_000, clock=clock)
    memory.add_debug(_log(60, "job"), created=_old(clock, 100))
    assert memory.tick() == []


def test_inactive_memory_is_archived_after_24h() -> None:
    clock = ManualClock()
    memory = ContextMemory(200_000, clock=clock)
    memory.add_system("rules")
    note = memory.add_task("ship the release notes")
    clock.advance(23 * HOUR)
    assert memory.tick() == []
    clock.advance(2 * HOUR)
    events = memory.tick()
    assert [e.action for e in events] == ["archive_session"]
    assert note.id not in memory.entries and "system_prompt:1" in memory.entries
    assert memory.expand(note.id)[0].content == "ship the release notes"


def test_cache_ttl_hits_and_misses() -> None:
    clock = ManualClock()
    memory = ContextMemory(200_000, clock=clock)
    memory.cache_put("docs:api", "GET /v1/items returns 200", tier="hot", ttl=60)
    memory.cache_put("docs:old", "legacy notes", tier="cold")
    assert memory.cache_get("docs:api") == "GET /v1/items returns 200"
    assert memory.cache_get("docs:missing") is None
    clock.advance(61)
    assert memory.cache_get("docs:api") is None  # expired: a miss, archived
    assert memory.cache_get("docs:old") == "legacy notes"
    profile = memory.profile()
    assert profile.cache_stats["hits"] == 2 and profile.cache_stats["misses"] == 2
    assert profile.cache_hit_rate == 0.5
    assert profile.cache_stats["evictions"] == 1
    # the hit on the cold entry made it hot
    assert profile.layers[Layer.CACHE].breakdown == {
        "hot": profile.layers[Layer.CACHE].tokens,
        "warm": 0,
        "cold": 0,
    }
    assert any(
        a.item_id.startswith("cache") for a in (memory.archive.get(i) for i in memory.archive.ids())
    )


def test_monitor_reads_memory_and_runs_critical_actions_now() -> None:
    clock = ManualClock()
    memory = ContextMemory(10_000, clock=clock, keep_last_turns=0)
    i = 0
    while memory.utilization < 0.96:
        memory.add_debug(_log(40, f"job{i}"), created=_old(clock, 2))
        i += 1
    actions: list[ActionEvent] = []
    events: list[MemoryEvent] = []
    memory.subscribe(events.append)
    monitor = ContextMonitor(on_action=actions.append)
    m = metrics(memory.profile())
    assert m["working_memory_utilization"] > 0.85 and m["token_budget_usage"] > 0.95
    alerts = monitor.watch(memory)
    assert {(a.metric, a.severity) for a in alerts} >= {
        ("working_memory_utilization", "critical"),
        ("token_budget_usage", "critical"),
    }
    assert [a.when for a in actions] == ["now", "now"]
    assert {a.action for a in actions} == {"cleanup_working_memory", "aggressive_cleanup"}
    assert {"cleanup_working_memory", "aggressive_cleanup"} <= {e.action for e in events}
    after = metrics(memory.profile())
    assert after["token_budget_usage"] <= 0.6
    assert after["cleanup_count"] >= 2
    assert after["compression_ratio"] is not None and after["compression_ratio"] < 0.5
    assert monitor.watch(memory) == [] or all(
        a.severity != "critical" for a in monitor.watch(memory)
    )


def test_monitor_schedules_warnings_for_the_next_tick() -> None:
    clock = ManualClock()
    memory = ContextMemory(10_000, clock=clock, keep_last_turns=0)
    while memory.utilization < 0.86:
        memory.add_message("user", "Plan: " + _log(3, "step"), created=_old(clock, 3))
    monitor = ContextMonitor()
    alerts = monitor.watch(memory)
    assert ("token_budget_usage", "warning") in {(a.metric, a.severity) for a in alerts}
    assert [a.when for a in monitor.action_history] == ["scheduled"]
    assert memory.scheduled and memory.scheduled[0][0] == "cleanup"
    before = memory.tokens
    events = memory.tick()
    assert "cleanup" in [e.action for e in events]
    assert memory.tokens < before and not memory.scheduled


def test_monitor_raises_low_cache_hit_rate_from_the_memory() -> None:
    clock = ManualClock()
    memory = ContextMemory(100_000, clock=clock)
    memory.cache_put("a", "alpha", ttl=10)
    for key in ("a", "b", "c", "d"):
        memory.cache_get(key)
    alerts = ContextMonitor().watch(memory)
    low = [a for a in alerts if a.metric == "cache_hit_rate"]
    assert low and low[0].value == 0.25 and low[0].severity == "warning"


def test_cache_tiers_move_by_recency() -> None:
    clock = ManualClock()
    memory = ContextMemory(100_000, clock=clock)
    entry = memory.cache_put("k", "cached text", tier="hot")
    other = memory.cache_put("j", "other text", tier="hot")
    clock.advance(2 * HOUR)
    events = memory.tick()
    assert "cache_retier" in [e.action for e in events]
    assert memory.entries[entry.id].sublayer == "warm"
    assert memory.cache_get("k") == "cached text"
    assert memory.entries[entry.id].sublayer == "hot"  # a hit makes it hot again
    clock.advance(25 * HOUR)
    memory.retier_cache()
    assert memory.entries[other.id].sublayer == "cold"
    assert memory.profile().layers[Layer.CACHE].breakdown["cold"] > 0


def test_working_memory_warning_schedules_its_cleanup_for_the_next_tick() -> None:
    clock = ManualClock()
    memory = ContextMemory(100_000, clock=clock, keep_last_turns=0)
    i = 0
    while metrics(memory.profile())["working_memory_utilization"] < 0.77:
        memory.add_debug(_log(30, f"job{i}"), created=_old(clock, 2))
        i += 1
    m = metrics(memory.profile())
    assert m["working_memory_utilization"] < 0.85 and m["token_budget_usage"] < 0.85
    monitor = ContextMonitor()
    alerts = monitor.watch(memory)
    assert {(a.metric, a.severity) for a in alerts} == {("working_memory_utilization", "warning")}
    assert [(a.action, a.when) for a in monitor.action_history] == [
        ("cleanup_working_memory", "scheduled")
    ]
    assert [s[0] for s in memory.scheduled] == ["cleanup_working_memory"]  # not run yet
    before = memory.tokens
    events = memory.tick()
    assert "cleanup_working_memory" in [e.action for e in events]
    assert metrics(memory.profile())["working_memory_utilization"] < 0.75
    assert memory.tokens < before and not memory.scheduled
    # what the cleanup removed is archived, not lost
    assert memory.archive.ids()
