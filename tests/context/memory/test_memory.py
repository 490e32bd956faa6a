"""ContextMemory: the four levels, overflow invariants, archive and expand."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from memlens.context import diagnose
from memlens.context.layers import Layer
from memlens.context.memory import (
    BudgetError,
    ContextMemory,
    InMemoryArchive,
    LevelRules,
    SQLiteArchive,
    memory_from_file,
)
from memlens.core.clock import ManualClock
from memlens.core.errors import ConfigError, NotFoundError, StoreError

HOUR = 3600.0


def _prose(n: int, tag: str) -> str:
    return " ".join(
        f"Step {i} of {tag}: the worker in services/{tag}/worker_{i}.py retries the queue "
        f"after a timeout and logs the result for later review."
        for i in range(n)
    )


def _memory(clock: ManualClock, **kw: object) -> ContextMemory:
    return ContextMemory(kw.pop("budget", 100_000), clock=clock, **kw)  # type: ignore[arg-type]


def _aged(memory: ContextMemory, clock: ManualClock, hours: float, **kw: object) -> str:
    created = datetime.fromtimestamp(clock.wall() - hours * HOUR, timezone.utc)
    entry = memory.add(
        _prose(12, f"h{hours:g}"),
        layer=Layer.WORKING_MEMORY,
        sublayer="tasks",
        created=created,
        **kw,
    )  # type: ignore[arg-type]
    return entry.id


def test_levels_follow_age_and_priority() -> None:
    clock = ManualClock()
    memory = _memory(clock, keep_last_turns=0)
    young = _aged(memory, clock, 0.5)
    critical_old = _aged(memory, clock, 500, priority="critical")
    high_old = _aged(memory, clock, 500, priority="high")
    day = _aged(memory, clock, 5)
    week = [_aged(memory, clock, 48 + i) for i in range(3)]
    cold = [_aged(memory, clock, 400 + i) for i in range(3)]
    originals = {i: memory.entries[i].content for i in memory.entries}
    report = memory.compress()
    assert memory.entries[young].level == 1 and memory.entries[young].content == originals[young]
    assert memory.entries[critical_old].content == originals[critical_old]
    assert memory.entries[high_old].level == 2
    assert memory.entries[day].level == 2
    for item in week + cold:
        assert item not in memory.entries  # folded into a group / cold summary
    levels = report.per_level
    assert set(levels) == {"summary", "grouped", "cold"}
    # measured ratios sit at or under each level's target (plus a small header)
    for name, row in levels.items():
        assert row["ratio"] <= row["target"] + 0.1, (name, row)
    for item_id, text in originals.items():
        assert "".join(a.content for a in memory.expand(item_id)) == text


def test_rules_are_configurable_and_validated() -> None:
    with pytest.raises(ConfigError):
        LevelRules(verbatim_age=10, summary_age=5)
    with pytest.raises(ConfigError):
        LevelRules(ratios={2: 0.5, 3: 0.0, 4: 0.05})
    clock = ManualClock()
    memory = _memory(
        clock,
        rules=LevelRules(
            verbatim_age=10 * 24 * HOUR, summary_age=20 * 24 * HOUR, grouped_age=30 * 24 * HOUR
        ),
        keep_last_turns=0,
    )
    item = _aged(memory, clock, 48)
    memory.compress()
    assert memory.entries[item].level == 1


def _conversation(memory: ContextMemory, turns: int) -> None:
    memory.add_system("You are the release agent. Never deploy on Fridays.")
    memory.add_message("user", "Project rule: all migrations must be reversible.", pinned=True)
    for t in range(turns):
        memory.add_message("user", f"Turn {t}: check build {t} in ci/jobs/build_{t}.yaml")
        memory.add_tool_call(f"c{t}", "shell", f'{{"cmd": "make test-{t}"}}')
        log = "\n".join(f"tests/unit/test_{t}_{i}.py PASSED" for i in range(60))
        memory.add_tool_result(f"c{t}", log + f"\nE   AssertionError: build {t} differs")
        memory.add_message("assistant", _prose(4, f"turn{t}"))


def test_overflow_keeps_invariants() -> None:
    clock = ManualClock()
    memory = _memory(clock, budget=25_000, keep_last_turns=2)
    _conversation(memory, 30)
    before = {i: (e.content, e.group) for i, e in memory.entries.items()}
    assert memory.utilization > 0.9
    report = memory.handle_overflow()
    assert report is not None and report.fits
    assert memory.tokens <= 25_000 * 0.8
    assert report.actions and report.actions[0] == "compress"
    # system prompt and pinned items untouched
    for entry_id in ("system_prompt:1", "conversation_history:2"):
        assert memory.entries[entry_id].content == before[entry_id][0]
    # the last two turns verbatim
    last_turns = [i for i, e in memory.entries.items() if e.turn >= memory._turn - 1 and e.turn]
    assert last_turns
    for entry_id in last_turns:
        assert memory.entries[entry_id].content == before[entry_id][0]
    # groups are whole: a call and its result are both live or both gone
    live_groups: dict[str, set[str]] = {}
    for entry_id, (_, group) in before.items():
        live_groups.setdefault(group, set()).add("live" if entry_id in memory.entries else "gone")
    assert all(len(states) == 1 for states in live_groups.values())
    # every original is recoverable, byte for byte
    for entry_id, (text, _) in before.items():
        assert memory.expand(entry_id)[0].content == text
    # the profiler reads the managed memory as it reads any window
    profile = memory.profile()
    assert profile.total_tokens == memory.tokens
    assert profile.compressions and sum(c for _, c in profile.compressions) < sum(
        o for o, _ in profile.compressions
    )
    assert diagnose(profile) is not None


def test_fit_fails_loudly_and_changes_nothing() -> None:
    clock = ManualClock()
    memory = _memory(clock, budget=60_000, keep_last_turns=2)
    _conversation(memory, 10)
    snapshot = {i: e.content for i, e in memory.entries.items()}
    with pytest.raises(BudgetError, match="cannot fit") as info:
        memory.fit(200)
    assert "pinned" in str(info.value) and "last 2 turns" in str(info.value)
    assert {i: e.content for i, e in memory.entries.items()} == snapshot
    assert memory.archive.ids() == []


def test_dry_run_previews_without_changing() -> None:
    clock = ManualClock()
    memory = _memory(clock, budget=60_000)
    _conversation(memory, 20)
    snapshot = {i: e.content for i, e in memory.entries.items()}
    preview = memory.fit(8000, dry_run=True)
    assert preview.dry_run and preview.after <= 8000
    assert {i: e.content for i, e in memory.entries.items()} == snapshot
    real = memory.fit(8000)
    assert real.after == memory.tokens <= 8000
    assert (preview.summarized, preview.grouped, preview.evicted) == (
        real.summarized,
        real.grouped,
        real.evicted,
    )


def test_same_input_same_output() -> None:
    outputs = []
    for _ in range(2):
        clock = ManualClock()
        memory = _memory(clock, budget=60_000)
        _conversation(memory, 25)
        memory.fit(6000)
        outputs.append([(e.id, e.content) for e in memory.ordered()])
    assert outputs[0] == outputs[1]


def test_eviction_archives_and_expand_recovers(tmp_path: Path) -> None:
    clock = ManualClock()
    archive = SQLiteArchive(tmp_path / "archive.db")
    memory = _memory(clock, budget=60_000, archive=archive, keep_last_turns=1)
    _conversation(memory, 20)
    originals = {i: e.content for i, e in memory.entries.items()}
    report = memory.fit(1500)
    assert report.evicted, "a tight budget evicts"
    assert memory.tokens <= 1500
    archive.close()
    reopened = SQLiteArchive(tmp_path / "archive.db")
    memory.archive = reopened
    for entry_id in report.evicted:
        assert reopened.get(entry_id).content == originals[entry_id]
    for summary_id in report.summaries:
        for item in memory.expand(summary_id):
            assert item.content == originals[item.item_id]
    with pytest.raises(NotFoundError):
        memory.expand("nope")


def test_archives_check_their_checksums(tmp_path: Path) -> None:
    for archive in (InMemoryArchive(), SQLiteArchive(tmp_path / "a.db")):
        checksum = archive.put("x", "héllo wörld " * 100, {"k": 1})
        item = archive.get("x")
        assert (item.content, item.meta, item.checksum) == (
            "héllo wörld " * 100,
            {"k": 1},
            checksum,
        )
        assert archive.put("x", "héllo wörld " * 100, {}) == checksum  # idempotent
        with pytest.raises(StoreError, match="different"):
            archive.put("x", "something else", {})
        assert archive.ids() == ["x"] and "x" in archive
    db = sqlite3.connect(tmp_path / "a.db")
    db.execute("UPDATE memlens_archive SET checksum = 'bad' WHERE item_id = 'x'")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="checksum"):
        SQLiteArchive(tmp_path / "a.db").get("x")


def test_bad_items_are_refused() -> None:
    memory = ContextMemory(10_000)
    memory.add_message("user", "hi", id="a")
    with pytest.raises(ConfigError, match="duplicate"):
        memory.add_message("user", "again", id="a")
    with pytest.raises(ConfigError, match="priority"):
        memory.add_message("user", "x", priority="urgent")
    with pytest.raises(ConfigError, match="text"):
        memory.add({"not": "text"})  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        ContextMemory("-5")
    _ = timedelta  # keep import for type checkers in older pythons


def test_memory_from_any_profiled_file() -> None:
    from tests.context.conftest import ANTHROPIC, CLAUDE_CODE, OPENAI

    for path in (ANTHROPIC, CLAUDE_CODE, OPENAI):
        memory = memory_from_file(path, budget="200k", keep_last_turns=0)
        assert memory.entries and memory.tokens == memory.profile().total_tokens
        assert any(e.pinned for e in memory.entries.values()) or path == CLAUDE_CODE
        report = (
            memory.fit(max(1, memory.tokens // 2), dry_run=True) if memory.tokens > 4000 else None
        )
        assert report is None or report.dry_run


def test_in_memory_archive_compresses_in_batches_and_stays_lossless() -> None:
    archive = InMemoryArchive(compress_after=1000)
    texts = {f"t{i}": f"line {i} ünïcode\n" * (20 + i) for i in range(8)}
    for key, text in texts.items():
        archive.put(key, text, {"n": key})
    # past 1000 waiting characters everything written so far was compressed
    assert any(isinstance(row[0], bytes) for row in archive._rows.values())
    archive.put("late", "short", {})
    assert isinstance(archive._rows["late"][0], str)  # still waiting
    archive.compact()
    assert all(isinstance(row[0], bytes) for row in archive._rows.values())
    for key, text in {**texts, "late": "short"}.items():
        item = archive.get(key)
        assert item.content == text
    with pytest.raises(StoreError, match="different"):
        archive.put("t0", "changed", {})


def test_in_memory_archive_checks_texts_not_compressed_yet() -> None:
    archive = InMemoryArchive()
    archive.put("x", "original", {})
    body, checksum, meta = archive._rows["x"]
    archive._rows["x"] = ("tampered", checksum, meta)
    with pytest.raises(StoreError, match="checksum"):
        archive.get("x")


@pytest.mark.parametrize("compress_after", [10**9, 100])
def test_deferred_puts_give_the_records_puts_give(compress_after: int) -> None:
    eager, deferred = InMemoryArchive(compress_after), InMemoryArchive(compress_after)
    texts = {f"t{i}": f"line {i} ünïcode \ud800\n" * (3 + i) for i in range(6)}
    for key, text in texts.items():
        checksum = eager.put(key, text, {"n": key})
        assert deferred.put_deferred(key, text, {"n": key}) is None
        assert eager._rows[key][1] == checksum
    # a known id: the same text is accepted, another refused, as by put
    deferred.put_deferred("t1", texts["t1"], {})
    assert deferred.put("t2", texts["t2"], {}) == eager.get("t2").checksum
    with pytest.raises(StoreError, match="different"):
        deferred.put_deferred("t3", "changed", {})
    with pytest.raises(StoreError, match="different"):
        deferred.put("t4", "changed", {})
    assert deferred.ids() == eager.ids()
    for key in texts:
        assert deferred.get(key) == eager.get(key)
    deferred.compact()
    eager.compact()
    assert deferred._rows == eager._rows
    for key in texts:
        assert deferred.get(key) == eager.get(key)


def test_a_memory_archives_through_put_when_the_archive_has_no_deferred_put() -> None:
    class Plain:
        def __init__(self) -> None:
            self.inner = InMemoryArchive()
            self.puts: list[str] = []

        def put(self, item_id: str, content: str, meta: dict) -> str:
            self.puts.append(item_id)
            return self.inner.put(item_id, content, meta)

        def get(self, item_id: str):
            return self.inner.get(item_id)

        def __contains__(self, item_id: object) -> bool:
            return item_id in self.inner

        def ids(self) -> list[str]:
            return self.inner.ids()

    archive = Plain()
    memory = ContextMemory(10_000, archive=archive, keep_last_turns=0)
    entry = memory.add_message("user", "remember the retry limit of 7421 ms " * 40)
    memory.add_message("user", "short")
    memory.fit(60)
    assert entry.id in archive.puts and archive.puts == archive.ids()
    assert memory.expand(entry.id)[0].content == entry.content
