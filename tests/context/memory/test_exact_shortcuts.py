"""The fit path's shortcuts give exactly what the slow, obvious computation gives.

* ``CachedCounter.count_concat`` (a summary's header + its already counted body) equals
  counting the joined text, for every line break of real texts, in both encodings.
* The fitted OpenAI list's size (copied messages at their original cost, only rewritten
  ones read again) equals the profiler's reader measuring the whole fitted list.
* The tool-output keep-set scan matches the regex run word by word.
* A :class:`RequestFitter` reused over many budgets gives what ``fit_messages`` gives
  for each, and the window a plan is rendered from is the one applying it leaves.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

import pytest

from memlens.context.memory import BudgetError, fit_messages, keepset
from memlens.context.memory.messages import OPENAI, RequestFitter, _view, measure
from memlens.context.tokens import CachedCounter, get_counter
from tests.context.memory.agent_sessions import anthropic_session, openai_session

TRICKY = (
    "a.\n/x y\n\n  z\r\nQ \n\n\tb\n/\n!\n#x\n1\n's\n\u00a0x\n\u3000y\n\x1cz\n"
    "def f():\n    return 1\n]\n[memlens]\n\n\nend"
)


@pytest.mark.parametrize("encoding", ["cl100k_base", "o200k_base"])
def test_count_concat_equals_counting_the_join(encoding: str) -> None:
    counter = CachedCounter(encoding)
    texts = [m["content"] for m in openai_session(12) if isinstance(m.get("content"), str)]
    checked = 0
    for text in [*texts, TRICKY]:
        for cut in [m.end() for m in re.finditer(r"[\r\n]", text)][:60]:
            head, tail = text[:cut], text[cut:]
            fresh = CachedCounter(encoding)
            assert counter.count_concat(head, tail) == fresh.count(text), (head[-8:], tail[:8])
            # the joined text's count is cached too, and is the exact one
            assert counter.count(text) == fresh.count(text)
            checked += 1
    assert checked > 200
    assert counter.count_concat("", "abc") == counter.count("abc")
    assert counter.count_concat("abc", "") == counter.count("abc")


def test_approximate_counter_counts_the_join_whole() -> None:
    counter = CachedCounter("approximate")
    assert counter.count_concat("ab\n", "cde") == counter.count("ab\ncde") == 2


@pytest.mark.parametrize("share", [0.9, 0.5, 0.25, 0.1])
@pytest.mark.parametrize("with_tools", [False, True])
def test_fitted_size_equals_a_full_reader_measure(share: float, with_tools: bool) -> None:
    messages = openai_session(30, seed=11)
    tools = (
        [{"type": "function", "function": {"name": "read_file", "parameters": {}}}]
        if with_tools
        else None
    )
    counter = get_counter("cl100k_base")
    full = measure(messages, OPENAI, model=None, system=None, tools=tools, counter=counter)
    result = fit_messages(messages, budget=int(full * share), tools=tools, pinned=[1])
    again = measure(result.messages, OPENAI, model=None, system=None, tools=tools, counter=counter)
    assert result.tokens_after == again <= int(full * share)
    assert result.tokens_before == full


def test_path_scan_matches_word_by_word_regex() -> None:
    keepset.clear_cache()
    outputs = [m["content"] for m in openai_session(20, seed=4) if m.get("role") == "tool"]
    outputs.append("see ./a/b.py, x/y.txt:12 and /etc/z.conf; not/a_path but a/b/c.md.")
    # punctuation around and inside words (the scan cuts words at it), repeats
    outputs.append(
        "(src/a-b/c.py) 'x/y.json' [lib/z.ts]:3 -q/r.md a-/b.py x::y/z.rs é/ü.py "
        "src/a.b/c.tar.gz--x/y.js=k/v.md {m/n.h};o/p.c|q/r.go@s/t.rb+u/v.kt "
        "tests/t.py::test_x tests/t.py::test_y `w/x.sh` a/b.py:1:2: a/b.py,a/c.py"
    )
    for text in outputs:
        expected: dict[str, None] = {}
        for word in text.split():
            for match in keepset._PATH_FAST.finditer(word):
                expected.setdefault(keepset._clip(match.group(0)), None)
        keeps = keepset.extract(text, prose=False)
        found = [k.text for k in keeps if k.kind == "path"]
        # a path inside a kept error line needs no entry of its own; all others are there
        errors = "\n".join(k.text for k in keeps if k.kind == "error")
        assert found == [p for p in expected if p not in errors]


def _fingerprint(result: Any) -> tuple[Any, ...]:
    return (
        json.dumps(result.messages, sort_keys=True),
        result.tokens_after,
        result.report.to_dict(),
    )


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
def test_a_reused_fitter_gives_what_fit_messages_gives(fmt: str) -> None:
    if fmt == "openai":
        messages, system = openai_session(30, seed=8), None
    else:
        messages, system = anthropic_session(30, seed=9), "Be brief."
    fitter = RequestFitter(messages, system=system, pinned=[0])
    rng = random.Random(5)
    budgets = [rng.randrange(fitter.tokens_before // 6, fitter.tokens_before) for _ in range(6)]
    for budget in [*budgets, budgets[0]]:  # and the first again, after the others
        reused = fitter.fit(budget)
        once = fit_messages(messages, system=system, pinned=[0], budget=budget)
        assert _fingerprint(reused) == _fingerprint(once)
        fmt_name = "openai-chat" if fmt == "openai" else "anthropic-messages"
        counter = get_counter("cl100k_base")
        assert reused.tokens_after == measure(
            reused.messages, fmt_name, model=None, system=system, tools=None, counter=counter
        )
        # the memory a reused fit builds on demand is the one fit_messages applied
        assert reused.memory.archive.ids() == once.memory.archive.ids()
        assert sorted(reused.memory.entries) == sorted(once.memory.entries)
        assert reused.memory.tokens == once.memory.tokens


def test_the_planned_view_is_the_applied_window() -> None:
    messages = openai_session(30, seed=12)
    fitter = RequestFitter(messages, pinned=[1])
    for share in (0.6, 0.3, 0.12):
        budget = int(fitter.tokens_before * share)
        memory = fitter.new_memory(budget)
        plan = memory.planner().solve(budget)
        planned = _view(memory, plan)
        memory.carry_out(plan)
        applied = _view(memory)
        # a summary's payload (what it covers) is the memory's bookkeeping, not shown
        assert [(v.seq, v.kind, v.content, v.summarized) for v in planned] == [
            (v.seq, v.kind, v.content, v.summarized) for v in applied
        ]
        assert [v.payload for v in planned if v.kind != "summary"] == [
            v.payload for v in applied if v.kind != "summary"
        ]
        assert memory.tokens == plan.after


def test_a_refused_budget_leaves_the_fitter_usable_and_the_input_unchanged() -> None:
    messages = openai_session(20, seed=3)
    before = json.dumps(messages, sort_keys=True)
    fitter = RequestFitter(messages, pinned=[1])
    with pytest.raises(BudgetError, match="cannot fit"):
        fitter.fit(50)
    budget = fitter.tokens_before // 3
    assert _fingerprint(fitter.fit(budget)) == _fingerprint(
        fit_messages(messages, pinned=[1], budget=budget)
    )
    assert json.dumps(messages, sort_keys=True) == before


def test_occurring_equals_one_substring_test_per_needle() -> None:
    rng = random.Random(11)
    alphabet = "ab/._- \nxyzé€"
    for size in (0, 7, 8, 9, 400, 5_000, 60_000):
        haystack = "".join(rng.choice(alphabet) for _ in range(size))
        needles = [
            haystack[i : i + n]
            for i, n in ((rng.randrange(size + 1), rng.randrange(1, 30)) for _ in range(300))
        ]
        needles += [
            "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 20))) for _ in range(300)
        ]
        needles += [haystack[:8], haystack[-8:], haystack, haystack + "a", "", "z" * 9]
        assert keepset.occurring(needles, haystack) == {n for n in needles if n in haystack}


def _odd_lines(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    starts = ["", "  x = 1", "/usr/lib/a.so", "\tTab", "Error: bad", "é ü", "}", "1.5", " "]
    ends = ["", " tail", "/x", "\r", "  ", "."]
    return [rng.choice(starts) + rng.choice(ends) for _ in range(n)]


@pytest.mark.parametrize("block", [1, 16, 512])
@pytest.mark.parametrize("encoding", ["cl100k_base", "o200k_base"])
def test_counts_from_blocks_equal_counting_whole(
    encoding: str, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memlens.context import tokens

    # small blocks put a block start at (nearly) every break where counts add up
    monkeypatch.setattr(tokens, "BLOCK_CHARS", block)
    outputs = [m["content"] for m in openai_session(16, seed=5) if m.get("role") == "tool"]
    outputs += ["\n".join(_odd_lines(3, 3_000)), "\r\n".join(_odd_lines(4, 600)), TRICKY * 30]
    blocks = CachedCounter(encoding, native=False)  # the C counter counts whole texts
    blocks.count_in_blocks(outputs)
    rng = random.Random(block)
    checked = 0
    for text in outputs:
        assert blocks.count(text) == CachedCounter(encoding).count(text)
        breaks = [m.end() for m in re.finditer("\n", text)]
        for _ in range(25):
            head = rng.choice([0, *breaks])
            later = [b for b in breaks if b > head]
            start = rng.choice(later) if later and rng.random() < 0.8 else len(text)
            tail = len(text) - start
            middle = rng.choice(["[… 3 lines elided by memlens …]", "[m]\n  a | b", "x"])
            cut = tokens.count_cut(blocks, text, head, middle, tail)
            assert cut is not None
            expected = text[:head] + middle + ("\n" + text[start:] if tail else "")
            assert cut == CachedCounter(encoding).count(expected), (head, tail, middle)
            checked += 1
    assert checked > 100
    assert tokens.count_cut(blocks, "ab\ncd", 1, "x", 0) is None  # head not at a break
    assert tokens.count_cut(blocks, "ab\ncd", 3, " x", 0) is None  # middle starts with a space


def test_trims_counted_from_blocks_equal_trims_counted_whole() -> None:
    from memlens.context.memory import summarize

    outputs = [m["content"] for m in openai_session(30, seed=6) if m.get("role") == "tool"]
    outputs += ["\n".join(_odd_lines(7, 2_000))]
    primed = CachedCounter("cl100k_base", native=False)
    primed.count_in_blocks(outputs)
    fresh = CachedCounter("cl100k_base")
    for text in outputs:
        total = fresh.count(text)
        for share in (0.6, 0.3, 0.1):
            target = max(20, int(total * share))
            a = summarize.trim_output(text, target, count=primed.count)
            b = summarize.trim_output(text, target, count=lambda t: fresh.count(t))
            assert (a.text, a.kept, a.dropped, a.method) == (b.text, b.kept, b.dropped, b.method)
            assert fresh.count(a.text) <= target or a.method == "verbatim"


def test_count_concat_with_the_joined_text_counts_and_caches_it() -> None:
    counter = CachedCounter("cl100k_base")
    for head, tail in (("[memlens: m1 summarised]\n", "body text\nmore"), ("ab ", "cd"), ("", "x")):
        joined = head + tail
        assert counter.count_concat(head, tail, joined) == CachedCounter("cl100k_base").count(
            joined
        )
        assert counter.count(joined) == counter.count_concat(head, tail)


_MARK_ALPHABET = "ab /_.9\u0669\u00b2\u2460x\u00e9\u3000\n"


def _marked_plainly(sentence: str) -> bool:
    return any(map(str.isdigit, sentence)) or "/" in sentence or "_" in sentence


def test_marked_equals_the_per_character_test() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from memlens.context.memory.summarize import _marked

    for sentence in ["", "abc", "a1", "x/y", "a_b", "\u0669", "\u00b2", "\u2460", "é9", "é"]:
        assert _marked(sentence) == _marked_plainly(sentence), sentence

    @settings(max_examples=400, deadline=None)
    @given(st.text(alphabet=_MARK_ALPHABET) | st.text())
    def check(sentence: str) -> None:
        assert _marked(sentence) == _marked_plainly(sentence)

    check()


def test_shared_keeps_are_the_keeps_made_afresh() -> None:
    texts = [m["content"] for m in openai_session(12) if isinstance(m.get("content"), str)]
    keepset.clear_cache()
    first = [keepset.extract(t, prose=p) for t in texts for p in (True, False)]
    keepset.clear_cache()
    keepset._KEEPS.clear()  # not even the per-kind tables: made the first time
    keepset._KEEPS.update({kind: {} for kind in keepset.KINDS})
    again = [keepset.extract(t, prose=p) for t in texts for p in (True, False)]
    assert first == again
    assert any(first)
    # a kept string appearing in two texts is one object, equal to one made directly
    shared = [k for ks in again for k in ks]
    assert all(k == keepset.Keep(k.text, k.kind) for k in shared)
