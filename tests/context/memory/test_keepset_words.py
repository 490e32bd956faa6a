"""The keep-set's word and line shortcuts find exactly what the plain searches find:
paths and names searched in a text's candidate words only, error lines by a forward
search for their word, and the rule pre-check in one C pass."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from memlens.context.memory import keepset

_pieces = st.sampled_from(
    list("aAzZ_0.`()/-:,;'\" \n\t\r\x0b\x0c\x1c\xa0\u2028\u3000é")
    + ["É", "9", "foo", "Bar", "_x", "a.b(", "`x`", "getX", "HTTP", "ß", "ſ", "K"]
    + ["src/", "app.py", ".tar.gz", "./", "../", "x.md", "https://a.b/c.py", "lib.rs"]
)


@settings(max_examples=3000, deadline=None)
@given(text=st.lists(_pieces, max_size=18).map("".join))
def test_words_give_the_paths_and_names_of_the_whole_text(text: str) -> None:
    words = text.split()
    paths = [m.group(0) for m in keepset._paths_in(words)]
    assert paths == [m.group(0) for m in keepset._PATH.finditer(text)]
    names = [m.group(m.lastindex or 0) for m in keepset._names_in(text, words)]
    assert names == [m.group(m.lastindex or 0) for m in keepset._IDENT.finditer(text)]


_line_pieces = st.sampled_from(
    [" ", "\t", "\r", "x", ":", "[E0382]", "_", "é", "Ünicode", "9"]
    + ["error", "Error", "ValueError", "FAILED", "FAIL", "ERROR", "fatal", "Fatal", "panic"]
    + ["Traceback", "Exception", "MyException", "Failure", "xception", "rror", "anic"]
)


@settings(max_examples=3000, deadline=None)
@given(lines=st.lists(st.lists(_line_pieces, max_size=8).map("".join), max_size=5))
def test_error_word_picks_the_lines_the_error_pattern_matches(lines: list[str]) -> None:
    whole = keepset._ERROR.findall("\n".join(lines))
    assert [line for line in lines if keepset._ERROR_WORD.search(line)] == whole


def test_output_error_lines_are_kept_whole() -> None:
    text = "ok 1\n  File x.py\nE   ValueError: bad value\nerrors: none\nfatal: no repo\n"
    errors = [k.text for k in keepset._extract_uncached(text, False) if k.kind == "error"]
    assert errors == ["E   ValueError: bad value", "fatal: no repo"]


_rule_pieces = st.sampled_from(
    list(keepset._RULE_WORDS)
    + [w.upper() for w in keepset._RULE_WORDS]
    + [" ", "\n", ".", "x", "mus", "t", "do", "not", "é", "Ünicode"]
)


@settings(max_examples=1500, deadline=None)
@given(text=st.lists(_rule_pieces, max_size=10).map("".join))
def test_rule_precheck_in_c_agrees_with_the_plain_one(text: str) -> None:
    assert keepset._textscan() is not None  # the built extension is what runs here
    plain = not text.isascii() or any(w in text.lower() for w in keepset._RULE_WORDS)
    assert keepset._may_hold_rule(text) == plain
