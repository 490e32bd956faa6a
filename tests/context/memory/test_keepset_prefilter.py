"""The keep-set's shortcuts change nothing: the pre-check never skips a text its rule
patterns would match, and the possessive identifier pattern finds what the plain one does."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from memlens.context.memory import keepset

_pieces = st.sampled_from(
    [w.upper() for w in keepset._RULE_WORDS]
    + [w.title() for w in keepset._RULE_WORDS]
    + list(keepset._RULE_WORDS)
    + ["mustn't", "Shouldn't", "REQUIRED", "switched to", "We'll Use", "ſ", "K", "é"]
    + [" ", "\n", ".", "x", "do", "not", "we", "use", "at", "no more"]
)


@settings(max_examples=800, deadline=None)
@given(text=st.lists(_pieces, max_size=12).map("".join))
def test_prefilter_passes_every_text_a_rule_pattern_matches(text: str) -> None:
    if keepset._CONSTRAINT.search(text) or keepset._DECISION.search(text):
        assert keepset._may_hold_rule(text)


def test_prefilter_skips_plain_ascii_text() -> None:
    assert not keepset._may_hold_rule("Read src/app.py and ran the tests: 3 passed.")
    assert keepset._may_hold_rule("You MUST keep the API.")
    assert keepset._may_hold_rule("naïve text is always searched")


#: the identifier pattern as first written (backtracking): the possessive one in
#: keepset must find exactly its matches
_IDENT_PLAIN = re.compile(
    r"`([^`\n]{2,80})`"
    r"|\b([A-Za-z_][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+)\b"
    r"|\b([A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)+)\b"
    r"|\b([a-z]+[A-Z][A-Za-z0-9]*)\b"
    r"|\b([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)\(\)?"
)

_ident_pieces = st.sampled_from(
    list("aAzZ_0.`() \n\t-/é") + ["É", "9", "foo", "Bar", "_x", "a.b(", "`x`", "getX", "HTTP", "ß"]
)


@settings(max_examples=3000, deadline=None)
@given(text=st.lists(_ident_pieces, max_size=16).map("".join))
def test_possessive_identifier_pattern_finds_the_same_matches(text: str) -> None:
    def spans(pattern: re.Pattern[str]) -> list[tuple[tuple[int, int], int | None]]:
        return [(m.span(), m.lastindex) for m in pattern.finditer(text)]

    assert spans(keepset._IDENT) == spans(_IDENT_PLAIN)
