"""The keep-set's cheap pre-check never skips a text its rule patterns would match."""

from __future__ import annotations

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
