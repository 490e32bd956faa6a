"""The keep-set's one-pass scans (``memlens._textscan``) equal the pure-Python ones.

``keepset._scan_output`` uses the C scans when the extension is built and the
``str.find``/``str.split`` versions otherwise; both must give the same keep-set on the
same text: checked on the benchmark's tool outputs and on random text made of the
characters the scans decide on.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memlens.context.memory import keepset
from tests.extensions import require_extension

ROOT = Path(__file__).resolve().parents[2]
_module, pytestmark = require_extension("_textscan")


def _python_keepset(text: str, monkeypatch: pytest.MonkeyPatch) -> list[keepset.Keep]:
    with monkeypatch.context() as patch:
        patch.setattr(keepset, "_scanner", [None])
        return keepset._extract_uncached(text, False)


def _python_runs(text: str) -> list[str]:
    words = [w for w in text.split() if "/" in w]
    pieces = " ".join(words).translate(keepset._NOT_IN_PATH).split()
    return [r for r in dict.fromkeys(pieces) if "/" in r]


def test_tool_outputs_give_the_same_keep_set(monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks" / "context"))
    try:
        from fit_sessions import generate
    finally:
        sys.path.remove(str(ROOT / "benchmarks" / "context"))
    messages, _ = generate(60, seed=4)
    outputs = [m["content"] for m in messages if m.get("role") == "tool"]
    assert len(outputs) > 50
    found = 0
    for text in outputs:
        fast = keepset._extract_uncached(text, False)
        assert fast == _python_keepset(text, monkeypatch)
        found += len(fast)
    assert found > 200


scan_text = st.lists(
    st.one_of(
        st.sampled_from(list("\n\r\t \x1c\u3000/._-:;,()[]'\"`é€日")),
        st.sampled_from(["def ", "class ", "fn ", "Error", "FAIL", "Traceback", "atal", "anic"]),
        st.sampled_from(["async def f", "  class A", "\tdef\tg", "\u00a0struct S", "x def y"]),
        st.sampled_from(["src/a.py", "x/y", "//", "http://h/p.md", "a_b.c", "xception"]),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=60,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(text=scan_text)
def test_random_text_scans_like_python(text: str) -> None:
    needles = keepset._ERROR_HINTS + keepset._DEFINES
    assert _module.lines_with(text, needles) == keepset._lines_with_any(text, needles, None)
    short = ("/", ":", "de", "x")  # one-character needles too
    assert _module.lines_with(text, short) == keepset._lines_with_any(text, short, None)
    # given starts, each line's start is checked first: the same lines as filtering
    # the lines that hold a needle by how they begin after their leading whitespace
    for defines, starts in ((keepset._DEFINES, keepset._DEFINITION_STARTS), (short, ("x", "/"))):
        every = keepset._lines_with_any(text, defines, None)
        begin = [line for line in every if line.lstrip().startswith(starts)]
        assert _module.lines_with(text, defines, starts) == begin
    # and the whole keep-set of the text as tool output, both ways
    fast = keepset._extract_uncached(text, False)
    saved = keepset._scanner[:]
    keepset._scanner[:] = [None]
    try:
        assert fast == keepset._extract_uncached(text, False)
    finally:
        keepset._scanner[:] = saved
    assert _module.path_runs(text) == _python_runs(text)


def test_bad_needles_are_refused() -> None:
    with pytest.raises(ValueError):
        _module.lines_with("x", ("",))
    with pytest.raises(ValueError):
        _module.lines_with("x", ("é",))
    with pytest.raises(TypeError):
        _module.path_runs(b"a/b")


def test_occurring_equals_one_substring_test_per_needle() -> None:
    rng = random.Random(5)
    for alphabet in ("ab \n", "abcdefgh/._- é€😀", "a"):
        for size in (0, 7, 8, 9, 300, 20_000):
            hay = "".join(rng.choice(alphabet) for _ in range(size))
            needles = [
                hay[i : i + k]
                for i, k in ((rng.randrange(size + 1), rng.randrange(40)) for _ in range(400))
            ]
            needles += [
                "".join(rng.choice(alphabet) for _ in range(rng.randrange(30))) for _ in range(400)
            ]
            needles += [hay, hay + "a", "", "é" * 9, hay[-9:], hay[:8]]
            assert _module.occurring(needles, hay) == {n for n in needles if n in hay}
    with pytest.raises(TypeError):
        _module.occurring(["a", 1], "abcdefghij")


@settings(max_examples=300, deadline=None)
@given(text=scan_text)
def test_error_lines_joined_match_as_one_search_per_line(text: str) -> None:
    # _scan_output runs _ERROR once over the candidate lines joined by newlines
    lines = keepset._lines_with_any(text, keepset._ERROR_HINTS, None)
    one_by_one = [m.group(0) for m in map(keepset._ERROR.search, lines) if m]
    assert keepset._ERROR.findall("\n".join(lines)) == one_by_one
