"""Knowledge transfer, access prediction with the hot cache, and lazy opening."""

from __future__ import annotations

import random
from types import ModuleType

import pytest

from memlens.context.shared import (
    AccessPredictor,
    DistributedMemoryManager,
    HotCache,
    Prefetcher,
    SessionKnowledgeTransfer,
    open_eager,
    open_lazy,
)
from memlens.core.errors import ConfigError, NotFoundError
from memlens.store import open_record_store
from memlens.store.records import CorruptRecordError
from tests.bench_module import load_benchmark


def _learned_session(url: str) -> DistributedMemoryManager:
    a = DistributedMemoryManager(url, writer_id="a")
    b = DistributedMemoryManager(url, writer_id="b")
    for manager in (a, b, a):  # the same preference, three writes, two writers
        manager.sync("src")  # up to date first: a write on top of the newest version
        manager.set("src", "prefs.tone", "terse")
        manager.sync("src")
    a.set("src", "prefs.lang", "en")  # written once: a hint, not a rule
    for i in range(6):
        a.set("src", "task.refund", {"run": i})
        a.sync("src")
    a.set("src", "task.invoice", {"run": 0})
    a.set("src", "scratch", "not knowledge")
    a.sync("src")
    return a


def test_extraction_finds_preferences_tasks_and_patterns_with_evidence(record_url: str) -> None:
    manager = _learned_session(record_url)
    predictor = AccessPredictor()
    for _ in range(5):
        predictor.learn("src", ["open ticket", "read order", "issue refund"])
    items = SessionKnowledgeTransfer(manager, predictor).extract_transferable_knowledge("src")
    by_key = {(i.kind, i.key): i for i in items}
    tone = by_key[("preference", "prefs.tone")]
    assert tone.value == "terse" and tone.confidence > 0.8
    assert tone.evidence[0] == "3 of 3 writes set this value" and "2 writer" in tone.evidence[1]
    assert by_key[("preference", "prefs.lang")].confidence <= 0.8
    assert (
        by_key[("common_task", "task.refund")].confidence
        > by_key[("common_task", "task.invoice")].confidence
    )
    assert ("pattern", "read order -> issue refund") in by_key
    shortcut = by_key[("shortcut", "open ticket => issue refund")]
    assert shortcut.value["via"] == "read order" and shortcut.confidence > 0.6
    assert not any(i.key == "scratch" for i in items)
    assert [i.confidence for i in items] == sorted((i.confidence for i in items), reverse=True)


def test_transfer_strategies_conflicts_and_history(record_url: str) -> None:
    manager = _learned_session(record_url)
    transfer = SessionKnowledgeTransfer(manager)
    knowledge = transfer.extract_transferable_knowledge("src")
    selective = transfer.transfer_knowledge(knowledge, "dst", merge_strategy="selective")
    assert "knowledge/preference/prefs.tone" in selective.transferred
    assert "knowledge/preference/prefs.lang" in selective.skipped
    other = DistributedMemoryManager(record_url, writer_id="reader")
    stored = other.get("dst", "knowledge/preference/prefs.tone")
    assert stored["value"] == "terse" and stored["source"] == "src"
    # The target changes its mind; a weaker incoming value does not override it.
    manager.set("dst", "knowledge/preference/prefs.lang", {"value": "fr", "confidence": 0.95})
    full = transfer.transfer_knowledge(knowledge, "dst", merge_strategy="full")
    assert [c["key"] for c in full.conflicts] == ["knowledge/preference/prefs.lang"]
    assert full.conflicts[0]["kept"] == "incoming"  # "full" always writes, and says so
    chosen = transfer.transfer_knowledge(
        knowledge, "dst2", merge_strategy="manual", on_candidates=lambda c: c[:1]
    )
    assert len(chosen.transferred) == 1
    assert [h["strategy"] for h in transfer.history("dst")] == ["selective", "full"]
    with pytest.raises(ConfigError):
        transfer.transfer_knowledge(knowledge, "dst", merge_strategy="manual")
    with pytest.raises(ConfigError):
        transfer.transfer_knowledge(knowledge, "dst", merge_strategy="some")


def test_the_predictor_backs_off_to_shorter_contexts() -> None:
    predictor = AccessPredictor(max_order=3)
    for _ in range(10):
        predictor.learn("s", ["a", "b", "c", "d"])
    predictor.learn("s", ["x", "b"])  # a context never seen before "b"
    (top, confidence), *_ = predictor.predict_next_accesses("s", n=2)
    assert top == "c" and confidence > 0.6  # order 1 still knows what follows "b"
    ranked = predictor.predict_next_accesses("s", "c", n=3)
    assert ranked[0][0] == "d"
    assert all(0 <= c <= 1 for _, c in ranked)
    assert AccessPredictor().predict_next_accesses("empty") == []
    with pytest.raises(ConfigError):
        AccessPredictor(max_order=0)


def test_prefetching_beats_lru_on_a_repeating_workflow() -> None:
    loads: list[str] = []
    flows = [[f"f{n}-{i}" for i in range(6)] for n in range(6)]  # 36 items, cache of 8
    trace = [item for _ in range(20) for flow in flows for item in flow]

    def run(prefetch: bool) -> Prefetcher:
        p = Prefetcher(lambda k: loads.append(str(k)) or k, capacity=8, prefetch=prefetch)
        for key in trace:
            assert p.access("s", key) == key
        return p

    lru, smart = run(False), run(True)
    assert lru.stats.hit_rate == 0.0  # a cycle longer than the cache defeats LRU
    assert smart.stats.hit_rate > 0.7 and smart.stats.precision > 0.9
    assert smart.stats.prefetch_loads > 0
    cache = HotCache(2)
    cache.put("a", 1, prefetched=True)
    cache.put("b", 2, prefetched=True)
    cache.put("c", 3)  # evicts "a" unused
    assert cache.stats.prefetch_wasted == 1 and cache.get("b") == (True, 2)
    assert cache.stats.prefetch_used == 1


def _bench_prefetch() -> ModuleType:
    return load_benchmark("bench_prefetch")


def test_prefetching_learns_a_real_code_base_and_stays_quiet_on_random_accesses() -> None:
    bench = _bench_prefetch()
    modules, imports, tests = bench.module_graph()
    # The graph is memlens's own: the shared manager imports the store protocol.
    assert "memlens.store.records" in imports["memlens.context.shared.manager"]
    assert "tests/store/test_shared_memory.py" in tests["memlens.context.shared"]

    def hit_rates(trace: list[str], prefetch: bool) -> tuple[float, float]:
        p = Prefetcher(lambda k: k, capacity=32, predictor=AccessPredictor(3), prefetch=prefetch)
        for key in trace:
            p.access("s", key)
        return p.stats.hit_rate, p.stats.precision

    structured = bench.repository_trace(6000)
    (lru, _), (smart, precision) = hit_rates(structured, False), hit_rates(structured, True)
    assert smart - lru >= 0.15 and precision >= 0.8, (lru, smart, precision)
    rng = random.Random(3)
    noise = [f"item:{rng.randrange(100)}" for _ in range(6000)]
    (lru, _), (smart, precision) = hit_rates(noise, False), hit_rates(noise, True)
    assert abs(smart - lru) < 0.03  # nothing to learn: no gain, and next to no cost


def test_lazy_values_load_on_first_use_only(record_url: str) -> None:
    store = open_record_store(record_url)
    for i in range(50):
        store.put("big", f"k{i:02d}", {"text": f"value {i}", "n": i})
    store.delete("big", "k07")
    lazy = open_lazy(store, "big")
    assert len(lazy) == 49 and "k07" not in lazy and lazy.loaded() == 0
    value = lazy["k10"]
    assert lazy.loaded() == 0  # handing out the proxy reads nothing
    assert value["n"] == 10 and value == {"text": "value 10", "n": 10}
    assert lazy.loaded() == 1
    assert open_eager(store, "big") == {k: lazy[k] for k in lazy}
    with pytest.raises(KeyError):
        lazy["k07"]
    store.put("big", "gone", 1)
    stale = open_lazy(store, "big")
    proxy = stale["gone"]
    store.delete("big", "gone")
    with pytest.raises(NotFoundError):
        proxy + 1  # noqa: B018 - first use raises where the value is needed
    from tests.store.test_memory_faults import _raw_get, _raw_set

    _raw_set(store, "big", "k11", _raw_get(store, "big", "k11").replace("value", "valuE"))
    with pytest.raises(CorruptRecordError):
        len(open_lazy(store, "big")["k11"])


def test_context_memory_archives_originals_in_the_shared_store(record_url: str) -> None:
    from memlens.context.memory import ContextMemory
    from memlens.context.shared.archive import RecordArchive
    from memlens.core.clock import ManualClock
    from memlens.core.errors import StoreError

    archive = RecordArchive(open_record_store(record_url), "user-42", writer="worker-1")
    memory = ContextMemory(60_000, clock=ManualClock(), archive=archive, keep_last_turns=1)
    memory.add_system("You are the release agent.")
    for i in range(20):
        memory.add_message("user", f"Turn {i}: check build {i} in ci/jobs/build_{i}.yaml")
        log = "\n".join(f"tests/unit/test_{i}_{j}.py PASSED" for j in range(60))
        memory.add_tool_call(f"c{i}", "shell", f'{{"cmd": "make test-{i}"}}')
        memory.add_tool_result(f"c{i}", log)
    originals = {i: e.content for i, e in memory.entries.items()}
    report = memory.fit(1500)
    assert report.evicted or report.summaries
    # Another worker, with its own connection, reads every original back, verified.
    elsewhere = RecordArchive(open_record_store(record_url), "user-42")
    assert elsewhere.ids() and set(elsewhere.ids()) <= set(originals)
    for item_id in elsewhere.ids():
        assert elsewhere.get(item_id).content == originals[item_id]
        assert elsewhere.lazy(item_id)["content"] == originals[item_id]
    first = elsewhere.ids()[0]
    assert elsewhere.put(first, originals[first], {}) == elsewhere.get(first).checksum
    with pytest.raises(StoreError, match="different content"):
        elsewhere.put(first, "something else", {})
    from memlens.context.shared import check_memory

    assert check_memory(elsewhere.store, "user-42").ok


def test_the_prefetch_benchmark_bounds_what_a_trace_allows() -> None:
    bench = _bench_prefetch()
    # Worked by hand: a b a b with room for one item. Every access but the first two
    # could be a hit; only the last "b" had followed "a" before (LRU holds none).
    assert bench.ceiling(["a", "b", "a", "b"]) == 0.5
    assert bench.learnable(["a", "b", "a", "b"], 1) == 0.25
    assert bench.learnable(["a", "a", "b"], 1) == 1 / 3  # the second "a" is an LRU hit
    trace = bench.fit_quality_trace([(1, 0.1)], turns=40)
    assert len(trace) > 80 and trace[0].startswith("read_file:src/shop/")
    assert {key.split(":")[0] for key in trace} == {"read_file", "run_tests", "grep", "bash"}


def _turn(command: str) -> dict[str, str]:
    return {"role": "assistant", "content": f"THOUGHT: next.\n\n```bash\n{command}\n```"}


def test_the_trace_extractor_reads_the_files_each_shell_command_touches() -> None:
    extract = load_benchmark("prefetch_traces/extract")
    turns = [
        {"role": "system", "content": "```bash\ncat not/run.py\n```"},
        _turn("find . -name validators.py | grep auth"),  # the root is not an item
        _turn("nl -ba ./django/core/validators.py | sed -n '10,20p'"),
        _turn('grep -nC 5 "def escape(text):" /testbed/django/utils/html.py 2>&1'),
        _turn("cat <<'EOF' > repro.py\nimport django\ncat fake.py\nEOF\npython3 -u repro.py"),
        _turn("sed -i 's/a/b/' django/utils/html.py && python -c 'print(1)'"),
        _turn("cd tests && ./runtests.py auth_tests.test_validators --parallel 1"),
        _turn("python -m pytest tests/test_x.py::TestX::test_y -k 'not slow' -q"),
        {"role": "assistant", "content": "```bash\ncat a.py\n```\n```bash\ncat b.py\n```"},
        {"role": "user", "content": "```bash\ncat user/typed.py\n```"},
    ]
    assert extract.extract({"messages": turns}) == [
        ("read", "django/core/validators.py"),
        ("search", "django/utils/html.py"),
        ("write", "repro.py"),  # the here-document's lines are data, not commands
        ("run", "repro.py"),
        ("edit", "django/utils/html.py"),
        ("run", "tests/runtests.py"),
        ("test", "tests/auth_tests/test_validators"),
        ("test", "tests/test_x.py"),
    ]  # a turn with two blocks did not run (mini-swe-agent rejects it)
    with pytest.raises(ValueError, match="no 'messages' list"):
        extract.extract({"trajectory": []})


def test_the_recorded_agent_traces_load_as_one_session_per_task() -> None:
    bench = _bench_prefetch()
    sessions = bench.real_agent_sessions()
    assert len(sessions) == 500 and [task for task, _ in sessions] == sorted(t for t, _ in sessions)
    assert len({task.rsplit("-", 1)[0] for task, _ in sessions}) == 12
    assert all(files for _task, files in sessions)
    where: dict[str, set[str]] = {}
    for task, items in sessions:
        for item in items:
            where.setdefault(item, set()).add(task)
    # A project's files are shared by its tasks; a file a task wrote first is its own.
    assert len(where["django__django:django/db/models/sql/query.py"]) > 10
    assert all(len(tasks) == 1 for item, tasks in where.items() if item.split(":")[0] in tasks)
    assert any(item == f"{task}:reproduce_issue.py" for task, items in sessions for item in items)
    keys, owners = bench.real_agent_trace()
    assert len(keys) == len(owners) == sum(len(files) for _task, files in sessions)
    # A pair seen only across a session boundary is not a learnable transition.
    assert bench.learnable(["a", "b", "a", "b"], 1) == 0.25
    assert bench.learnable(["a", "b", "a", "b"], 1, ["x", "y", "y", "z"]) == 0.0
