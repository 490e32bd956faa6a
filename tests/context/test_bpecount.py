"""The C token counter (``memlens._bpecount``) gives exactly tiktoken's counts.

Every check compares with tiktoken's own ``encode_ordinary`` on the same text, for
cl100k_base and o200k_base: the benchmark's generated sessions, the memory tests'
sessions, hand-picked edge cases of the two pre-tokenizer patterns, every code point the
class table knows (in contexts that expose its class), and random Unicode text. When the
extension is missing the tests fail if a C compiler is present (CI builds it) and skip
otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memlens.context import tokens
from tests.extensions import require_extension

from .memory.agent_sessions import openai_session

ROOT = Path(__file__).resolve().parents[2]
ENCODINGS = ("cl100k_base", "o200k_base")

_module, pytestmark = require_extension("_bpecount")
regex = pytest.importorskip("regex")  # tiktoken's own dependency: cuts the pieces in checks


def _encoding(name: str) -> Any:
    encoding = tokens.load_encoding(name)
    if encoding is None:
        pytest.skip(f"no offline BPE file or no tiktoken for {name}")
    return encoding


def _fresh(name: str) -> Any:
    """A new C counter for ``name`` (empty piece cache), from memlens's own ranks."""
    _encoding(name)
    assert tokens.native_counter(name) is not None
    return _module.Counter(tokens._ranks[name], tokens.NATIVE_PATTERNS[name][0])


def _want(name: str, texts: list[str]) -> list[int]:
    encode = _encoding(name).encode_ordinary
    return [len(encode(t)) for t in texts]


def _declines(name: str, text: str) -> bool:
    """Whether the C counter may leave ``text`` to tiktoken: a code point its table does
    not know (a one-character text it declines) or a piece longer than its limit (the
    pieces cut by the encoding's own pattern with the ``regex`` module tiktoken uses)."""
    native = tokens.native_counter(name)
    if any(native.count(ch) == -1 for ch in set(text)):
        return True
    pattern = regex.compile(_encoding(name)._pat_str)
    return any(len(p.encode("utf-8")) > LONG_PIECE for p in pattern.findall(text))


def _mismatches(name: str, texts: list[str], counter: Any | None = None) -> list[tuple]:
    """Texts the C counter counts otherwise than tiktoken (declining one it need not
    decline counts as a mismatch too)."""
    counter = counter if counter is not None else _fresh(name)
    got = counter.count_many(texts)
    return [
        (t, w, g)
        for t, w, g in zip(texts, _want(name, texts), got, strict=True)
        if w != g and not (g == -1 and _declines(name, t))
    ]


def _session_texts(messages: list[dict[str, Any]]) -> list[str]:
    texts: list[str] = []
    for m in messages:
        content = m.get("content")
        texts.append(content if isinstance(content, str) else str(content or ""))
        texts.extend(str(c["function"]["arguments"]) for c in m.get("tool_calls") or [])
    return texts


EDGE = [
    "",
    " ",
    "  ",
    "\n",
    "\n\n",
    " \n",
    "\n ",
    "a \n b",
    "a  \n\n  b",
    "x   ",
    "x\t\t",
    "x \t\n \t",
    "\r\n\r\n",
    "line1\r\nline2\r\n",
    "word\n/path",
    "end.\n/next",
    "a.\n\n/b/c//d",
    "   word",
    "\tword\t\tword",
    "\u00a0word\u3000word\u2003x",
    "\x85x\u2028y\u2029z",
    "\x1c\x1d\x1e\x1f letters",  # str.isspace() but not Unicode White_Space
    "\x0b\x0c vertical",
    "don't I'LL we've THEY'RE she'd he's it'S 'm 't",
    "'s'd'm't'll've're",
    "'S'D'M'T'LL'VE'RE",
    "'ſ 'ſx ſ's Kelvin'\u212a",
    "DON'T Don'T dOn't",
    "l'homme qu'il aujourd'hui",
    "''' ' 's",
    "1 12 123 1234 12345 123456 1234567",
    "x1234y 3.14159 -2e10 0x1F",
    "\u0661\u0662\u0663\u0664 \u0966\u0967\u0968\u0969\u096a",  # Arabic-Indic, Devanagari
    "\u2160\u2161\u2162 \u00bd\u00bc \u2460\u2461",  # Nl, No
    "e\u0301 cafe\u0301 \u0301abc a\u0301\u0302\u0303b",
    "\u0915\u094d\u0937 \u0928\u092e\u0938\u094d\u0924\u0947",  # Devanagari with marks
    "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",  # Hebrew, Arabic
    "日本語のテキスト、漢字とカタカナ。中文文本：你好，世界！",
    "한국어 텍스트 안녕하세요",
    "😀 😀😀 👍🏽 👨‍👩‍👧‍👦 🇫🇷🇩🇪 ❤️ 1️⃣",
    "ǅungla ǈ ǋ Ǆ ǲ",  # Lt
    "ʰʲʷ ᵃᵇ ꜰ ß ẞ Σσς",  # Lm, Ll/Lu
    "ABCdef AbcDEF aBCDe ÀÉÎõü ÆØÅ",
    "HTTPServer XMLHttpRequest getHTTPResponseCode",
    "$$$ !!! ... --- === *** ### ``` ~~~",
    "    if x == 1:\n        return {'a': [1, 2]}\n",
    "\x00\x01\x7f\ufeff\u200b\u200d\u2060",
    "\ue000\uf8ff \U000f0000",  # private use
    "a" * 256,  # the longest piece the C counter counts
    "=" * 256,
    " " * 255 + "x",
    "é" * 128,
]

#: one piece longer than the C counter's limit: tiktoken counts these texts
LONG = [
    "a" * 3000,
    "ab" * 1000,
    "-" * 2000,
    " " * 1000 + "x",
    "\n" * 500 + "x",
    "é" * 400,
    "😀" * 300,
    "x" + "\u0301" * 400,
    "=" * 40_000,
    "ok " * 50 + "a" * 257,
]

LONG_PIECE = 256


@pytest.mark.parametrize("name", ENCODINGS)
def test_edge_cases_count_like_tiktoken(name: str) -> None:
    assert _mismatches(name, EDGE) == []
    # and in every pair, so each case also meets the start and end of another
    pairs = [a + b for a in EDGE[:40] for b in EDGE[:40]]
    assert _mismatches(name, pairs) == []


@pytest.mark.parametrize("name", ENCODINGS)
def test_texts_with_a_long_piece_are_counted_by_tiktoken(name: str) -> None:
    native = _fresh(name)
    assert [native.count(t) for t in LONG] == [-1] * len(LONG)
    assert [native.count(t) for t in EDGE[-4:]] == _want(name, EDGE[-4:])  # at the limit
    counter = tokens.CachedCounter(name)
    assert [counter.count(t) for t in LONG] == _want(name, LONG)
    assert counter.tokenize_batch(LONG) == _want(name, LONG)


@pytest.mark.parametrize("name", ENCODINGS)
def test_generated_sessions_count_like_tiktoken(name: str) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks" / "context"))
    try:
        from fit_sessions import generate
    finally:
        sys.path.remove(str(ROOT / "benchmarks" / "context"))
    messages, _ = generate(120, seed=3)
    texts = _session_texts(messages) + _session_texts(openai_session(40, seed=2))
    counter = _fresh(name)
    assert _mismatches(name, texts, counter) == []
    # a second pass is answered from the piece cache, with the same counts
    assert _mismatches(name, texts, counter) == []
    assert counter.stats()["hits"] > counter.stats()["misses"]


#: contexts that put a code point where each class decides the cut
CONTEXTS = ["x{}x", "X{}'s", " {}1", "1{}1", "{}a", "A{}b", "!{}!", " {} ", "{}\n", "'{}", "{}{}"]


@pytest.mark.parametrize("name", ENCODINGS)
def test_every_known_code_point_counts_like_tiktoken(name: str) -> None:
    counter = _fresh(name)
    encode = _encoding(name).encode_ordinary
    known = [
        chr(cp)
        for cp in range(0x110000)
        if unicodedata.category(chr(cp)) not in ("Cn", "Cs") and counter.count(chr(cp)) >= 0
    ]
    assert len(known) > 140_000  # the table knows Unicode's assigned characters
    bad: list[tuple[str, str]] = []
    for context in CONTEXTS:
        for start in range(0, len(known), 256):
            chunk = known[start : start + 256]
            text = "\n".join(context.format(ch, ch) for ch in chunk)
            if counter.count(text) != len(encode(text)):
                bad += [
                    (f"U+{ord(ch):04X}", context)
                    for ch in chunk
                    if counter.count(context.format(ch, ch)) != len(encode(context.format(ch, ch)))
                ]
    assert bad == []


unicode_text = st.text(
    alphabet=st.one_of(
        st.characters(),  # anything, surrogates included
        st.sampled_from(list(" \t\n\r\u00a0\u3000'sStTlLvVeEdDmMrR0123456789aA.,/!-_ſ\u0301é日😀")),
    ),
    max_size=80,
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=unicode_text)
def test_random_unicode_counts_like_tiktoken(text: str) -> None:
    for name in ENCODINGS:
        encode = _encoding(name).encode_ordinary
        native = tokens.native_counter(name)
        got = native.count(text)
        assert got == len(encode(text)) or (got == -1 and _declines(name, text)), (name, text)
        # the counter memlens uses answers the rest through tiktoken
        assert tokens.CachedCounter(name).count(text) == len(encode(text)), (name, text)


def test_texts_the_table_cannot_count_go_to_tiktoken() -> None:
    for name in ENCODINGS:
        encode = _encoding(name).encode_ordinary
        native = tokens.native_counter(name)
        counter = tokens.CachedCounter(name)
        for text in ["lone \ud800 surrogate", "pair \ud83d\ude00 joined", "unassigned \u0378 x"]:
            assert native.count(text) == -1
            assert counter.count(text) == len(encode(text))
            assert counter.tokenize_batch([text, "plain"]) == [len(encode(text)), 1]


def test_patterns_are_not_interchangeable() -> None:
    """The edge cases tell the two pre-tokenizers apart: the comparison can fail."""
    ranks = tokens.native_counter("cl100k_base") and tokens._ranks["cl100k_base"]
    wrong = _module.Counter(ranks, "o200k")
    assert _mismatches("cl100k_base", EDGE, wrong) != []


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown pattern"):
        _module.Counter({bytes([b]): b for b in range(256)}, "p50k")
    with pytest.raises(ValueError, match="single-byte"):
        _module.Counter({b"a": 0}, "cl100k")
    with pytest.raises(TypeError):
        _module.Counter({"a": 0}, "cl100k")
    counter = _module.Counter({bytes([b]): b for b in range(256)}, "cl100k")
    assert counter.count("abc") == 3  # no merges: one token per byte
    with pytest.raises(TypeError):
        counter.count(b"abc")
    with pytest.raises(TypeError):
        counter.count_many(["a", 1])


def test_no_extensions_means_tiktoken_alone() -> None:
    code = (
        "from memlens.context import tokens;"
        "c = tokens.CachedCounter('cl100k_base');"
        "print(c.native, tokens.native_counter('o200k_base'), c.count(\"don't  stop\\n\"))"
    )
    env = {**os.environ, "MEMLENS_NO_EXTENSIONS": "1", "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    want = len(_encoding("cl100k_base").encode_ordinary("don't  stop\n"))
    assert out.stdout.split() == ["False", "None", str(want)]
    assert tokens.CachedCounter("cl100k_base").native
